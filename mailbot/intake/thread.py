"""The thread: a mail that answers one of our replies belongs to that reply's submission.

Applicants answer the bot's letter with what it asked for (Foxmail's
``回复：请修改后重新发送：…``, Outlook's ``RE:``, Gmail's ``Re:``): the subject
is then ours, not the call's form. A mail whose In-Reply-To or References
names the Message-ID of a reply we sent for a submission is that
submission's mail whatever its subject: its files are judged against the
submission's institution and PI, under the subject the call expects, so
``subject_format`` is not raised. This link comes before the institution+PI
match (mailbot.intake.submissions).

A mail in the thread of an accepted (or decided) submission that brings no
file, a thank-you or a question, is not a proposal: it gets no automatic
letter and is recorded for a person (info ``thread_followup``).
"""

from __future__ import annotations

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from mailbot.app import App
from mailbot.domain import DECIDED, SubmissionStatus
from mailbot.intake.attaching import judge_as_submission
from mailbot.intake.submissions import FOLLOWUP
from mailbot.judge.verdict import Problem, Severity, Status, Verdict
from mailbot.mail.bounces import our_reply_ids
from mailbot.mail.message import Message
from mailbot.store.models import Mail, Reply, Submission

# A submission in one of these states is settled: a mail without files in its thread
# is a person's business, not the bot's.
SETTLED = frozenset({SubmissionStatus.ACCEPTED, *DECIDED})


def answered_submission(session: Session, call_id: str, message: Message) -> Submission | None:
    """The submission of the newest of our replies this mail answers; None if it answers none."""
    ids = our_reply_ids([message.in_reply_to or "", *message.references])
    if not ids:
        return None
    submission_id = session.scalar(
        select(Reply.submission_id)
        .where(
            func.lower(Reply.message_id).in_(ids),
            Reply.submission_id.is_not(None),
            Reply.call_id == call_id,
        )
        .order_by(Reply.id.desc())
        .limit(1)
    )
    return session.get(Submission, submission_id) if submission_id is not None else None


def judge_in_thread(
    app: App, mail: Mail, message: Message, verdict: Verdict, submission: Submission
) -> tuple[Message, Verdict]:
    """The mail judged as ``submission``'s: a follow-up, or its files under the expected subject.

    A mail the checks never answer (an automatic reply, a bounce) stays as it was.
    """
    if verdict.status is Status.IGNORED:
        return message, verdict
    if submission.status in SETTLED and not message.attachments:
        return message, followup(verdict, submission)
    # Under the subject the call expects for the submission (the Mail row keeps its own),
    # so that a completion is judged together with the version before it the same way.
    return judge_as_submission(app, mail, submission) or (message, verdict)


def followup(verdict: Verdict, submission: Submission) -> Verdict:
    """A mail without files in a settled submission's thread: recorded, never answered."""
    problem = Problem(
        FOLLOWUP,
        Severity.INFO,
        f"这封邮件回复了申请 {submission.reference} 的往来邮件，没有附带文件，"
        "不自动答复，由工作人员阅读。",
        f"This mail answers a letter about application {submission.reference} and brings no "
        "file: it gets no automatic reply; a person reads it.",
    )
    return Verdict(
        Status.IGNORED,
        verdict.received_at,
        submission.institution,
        submission.pi,
        (problem,),
    )
