"""What a person does at the desk, each act recorded with who, when and why.

Decisions change only Submission.status (to the two statuses below) and
leave the daemon's verdicts and versions as they were: the audit trail says
which status a person set over which verdict. Letters go through the same
outbox as the daemon's replies, so the daemon sends them.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any

from sqlalchemy import or_, select
from sqlalchemy.orm import Session

from mailbot.app import App
from mailbot.domain import SubmissionStatus
from mailbot.errors import MailbotError
from mailbot.replies.outbox import Outgoing, queue_reply
from mailbot.store.models import AuditEvent, Mail, Reply, Submission
from mailbot.web.auth import Actor
from mailbot.web.labels import ACTS, REFUSALS, STATUSES, label
from mailbot.web.letters import (
    LETTER_PREFIX,
    Letters,
    letter_context,
    recipient,
    status_letter,
    thread,
)

# AuditEvent.action values.
ACCEPT = "accept_by_decision"
WITHDRAW = "withdraw"
NOTE = "note"
RESEND = "resend"
WRITE = "write"

MAX_REASON = 2000
MAX_LETTER = 20_000

# What a person can do at the desk (labels.ACTS names them), and for which
# statuses a decision makes sense: the one place the desk checks, for the
# buttons it shows and for the forms it takes.
ACCEPT_ACT, WITHDRAW_ACT, RESEND_ACT, WRITE_ACT, NOTE_ACT = (
    "accept",
    "withdraw",
    "resend",
    "write",
    "note",
)
DECISIONS: dict[str, frozenset[str]] = {
    ACCEPT_ACT: frozenset(
        {
            SubmissionStatus.NEEDS_CORRECTION,
            SubmissionStatus.LATE,
            SubmissionStatus.WITHDRAWN,
        }
    ),
    WITHDRAW_ACT: frozenset(
        {
            SubmissionStatus.ACCEPTED,
            SubmissionStatus.ACCEPTED_BY_DECISION,
            SubmissionStatus.NEEDS_CORRECTION,
            SubmissionStatus.LATE,
        }
    ),
}


class ActionError(MailbotError):
    """An act the desk refuses, with its reason as a code (labels.REFUSALS says it in words)."""

    def __init__(self, code: str, **params: object) -> None:
        self.code = code
        self.params = params
        zh, en = refusal(code, **params)
        super().__init__(f"{zh} {en}")


def refusal(code: str, **params: object) -> tuple[str, str]:
    """(Chinese, English) for a refusal code, its blanks filled from params."""
    zh, en = REFUSALS.get(code, REFUSALS["refused"])
    values = {"max_reason": MAX_REASON, "max_letter": MAX_LETTER, **params}
    return zh.format_map(_Blanks(values)), en.format_map(_Blanks(values))


class _Blanks(dict[str, object]):
    def __missing__(self, key: str) -> str:
        return "-"


def status_words(status: str) -> dict[str, str]:
    zh, en = label(STATUSES, status)
    return {"status_zh": zh, "status_en": en or zh}


def act_words(act: str) -> dict[str, str]:
    zh, en = label(ACTS, act)
    return {"act_zh": zh, "act_en": en or zh}


def allowed_acts(submission: Submission, resendable: Reply | None, to: str | None) -> set[str]:
    """The acts that make sense for this submission now (a person's role may narrow them)."""
    acts = {NOTE_ACT}
    acts |= {act for act, statuses in DECISIONS.items() if submission.status in statuses}
    if resendable is not None:
        acts.add(RESEND_ACT)
    if to is not None:
        acts.add(WRITE_ACT)
    return acts


def require_decision(act: str, submission: Submission) -> None:
    if submission.status not in DECISIONS[act]:
        raise ActionError("not_now", **act_words(act), **status_words(submission.status))


def given_reason(text: str) -> str:
    """The reason a person gave, stripped; refused when empty or too long."""
    reason = text.strip()
    if not reason:
        raise ActionError("no_reason")
    if len(reason) > MAX_REASON:
        raise ActionError("reason_too_long")
    return reason


@dataclass(frozen=True)
class Acting:
    """Who acts at the desk, when, and the reason they give: what every act writes in the trail.

    For a note, the reason is the note's text.
    """

    actor: Actor
    reason: str
    now: datetime

    def checked(self) -> Acting:
        """The same act with its reason stripped; refused when the reason is empty or too long."""
        return replace(self, reason=given_reason(self.reason))


@dataclass(frozen=True)
class Entry:
    """What one line of the audit trail records besides who, when and why."""

    action: str  # AuditEvent.action
    submission: Submission | None = None
    mail: Mail | None = None
    reply: Reply | None = None
    previous_status: str | None = None
    new_status: str | None = None
    detail: dict[str, Any] = field(default_factory=dict)


def audit(session: Session, acting: Acting, entry: Entry) -> AuditEvent:
    """Write one line of the audit trail: ``acting`` did ``entry``."""
    event = AuditEvent(
        at=acting.now,
        actor=acting.actor.name,
        user_id=acting.actor.user_id,
        action=entry.action,
        submission_id=entry.submission.id if entry.submission else None,
        mail_id=entry.mail.id if entry.mail else None,
        reply_id=entry.reply.id if entry.reply else None,
        reason=acting.reason,
        previous_status=entry.previous_status,
        new_status=entry.new_status,
        detail=entry.detail,
    )
    session.add(event)
    session.flush()
    return event


@dataclass(frozen=True)
class WrittenLetter:
    """A letter as a person wrote it at the desk: the template it began from, subject, text."""

    template: str
    subject: str
    body: str

    def check(self, templates: Collection[str]) -> None:
        """Refused unless it names one of ``templates``, has a subject and a text, not too long."""
        if self.template not in templates:
            raise ActionError("no_template")
        if not self.subject.strip() or not self.body.strip():
            raise ActionError("empty_letter")
        if len(self.body) > MAX_LETTER:
            raise ActionError("letter_too_long")

    @property
    def text(self) -> str:
        """The body with the browser's CRLF line ends made plain newlines."""
        return self.body.replace("\r\n", "\n")


def _set_status(
    session: Session, submission: Submission, acting: Acting, *, act: str, status: str, action: str
) -> AuditEvent:
    require_decision(act, submission)
    acting = acting.checked()
    previous = submission.status
    submission.status = status
    submission.updated_at = acting.now
    entry = Entry(action, submission=submission, previous_status=previous, new_status=status)
    return audit(session, acting, entry)


def accept_by_decision(session: Session, submission: Submission, acting: Acting) -> AuditEvent:
    """Accept a submission whatever its verdict said, because a person decided so."""
    return _set_status(
        session,
        submission,
        acting,
        act=ACCEPT_ACT,
        status=SubmissionStatus.ACCEPTED_BY_DECISION,
        action=ACCEPT,
    )


def withdraw(session: Session, submission: Submission, acting: Acting) -> AuditEvent:
    """Mark a submission withdrawn (the applicant asked, or it was sent by mistake)."""
    return _set_status(
        session,
        submission,
        acting,
        act=WITHDRAW_ACT,
        status=SubmissionStatus.WITHDRAWN,
        action=WITHDRAW,
    )


def add_note(
    session: Session,
    acting: Acting,
    *,
    submission: Submission | None = None,
    mail: Mail | None = None,
) -> AuditEvent:
    """A note on a submission or on a mail, kept in the trail (the note is the act's reason)."""
    entry = Entry(NOTE, submission=submission, mail=mail)
    return audit(session, acting.checked(), entry)


def replies_of(session: Session, submission: Submission) -> Sequence[Reply]:
    """Every reply about a submission: to its mails, and letters written at the desk."""
    mail_ids = [mail.id for mail in submission.mails]
    return session.scalars(
        select(Reply)
        .where(or_(Reply.submission_id == submission.id, Reply.mail_id.in_(mail_ids)))
        .order_by(Reply.id)
    ).all()


def resendable(session: Session, letters: Letters, submission: Submission) -> Reply | None:
    """The reply "resend" sends again: the latest that tells the submission's current status."""
    return status_letter(letters, list(replies_of(session, submission)), submission.status)


def resend_last_reply(
    session: Session, app: App, letters: Letters, submission: Submission, acting: Acting
) -> Reply:
    """Queue again the letter that tells the current status, in its thread, under a new Message-ID.

    After a decision that is the decision's letter, never an older verdict's:
    if none was written yet, the resend is refused and says which to write.
    """
    last = resendable(session, letters, submission)
    if last is None:
        raise ActionError("no_letter", **status_words(submission.status))
    acting = acting.checked()
    reply = queue_reply(
        session,
        Outgoing.again(
            last,
            submission_id=submission.id,
            by_person=last.template.startswith(LETTER_PREFIX),
        ),
        settings=app.settings.replies,
        call=app.call,
        now=acting.now,
    )
    detail = {"resent_reply_id": last.id, "state": reply.state}
    audit(session, acting, Entry(RESEND, submission=submission, reply=reply, detail=detail))
    return reply


def draft_letter(app: App, letters: Letters, submission: Submission, name: str) -> tuple[str, str]:
    """A letter's (subject, body) from its template, for a person to read and edit."""
    if name not in letters.names():
        raise ActionError("no_template")
    return letters.renderer.render(name, letter_context(app, submission))


def write_to_applicant(
    session: Session,
    app: App,
    letters: Letters,
    submission: Submission,
    acting: Acting,
    letter: WrittenLetter,
) -> Reply:
    """Queue a letter a person wrote (from a template) to the applicant, in their thread.

    It goes out as a person's mail (no Auto-Submitted), through the outbox.
    """
    letter.check(letters.names())
    acting = acting.checked()
    to_address = recipient(submission)
    if to_address is None:
        raise ActionError("no_address")
    in_reply_to, references = thread(app, submission)
    title_zh, title_en = letters.title(letter.template)
    reply = queue_reply(
        session,
        Outgoing(
            to_address=to_address,
            template=LETTER_PREFIX + letter.template,
            subject=letter.subject,
            body=letter.text,
            in_reply_to=in_reply_to,
            references=references,
            submission_id=submission.id,
            by_person=True,
        ),
        settings=app.settings.replies,
        call=app.call,
        now=acting.now,
    )
    detail = {
        "template": letter.template,
        "title_zh": title_zh,
        "title_en": title_en,
        "to": to_address,
        "state": reply.state,
    }
    audit(session, acting, Entry(WRITE, submission=submission, reply=reply, detail=detail))
    return reply
