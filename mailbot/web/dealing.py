"""Mail tied to no submission, dealt with at the desk: attached, answered, or marked handled.

Each act is a line in the audit trail. Attaching a mail as a version judges it
again as if its subject had named the submission's institution and PI, so its
files are held to that submission's names, then files it as the daemon would;
attaching it as supporting mail only ties it to the submission. Answering and
marking handled close the mail: the list of other mail shows open mail only.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from mailbot.app import App
from mailbot.intake.attaching import SUPPORTING, VERSION, judge_as_submission
from mailbot.intake.record import queue_answer
from mailbot.intake.submissions import judge_again, record
from mailbot.replies.outbox import Outgoing, queue_reply
from mailbot.replies.render import Renderer, call_context, expected_names
from mailbot.store.models import Mail, Reply, Submission
from mailbot.web.actions import Acting, ActionError, Entry, WrittenLetter, audit
from mailbot.web.labels import ANSWERS
from mailbot.web.letters import LETTER_PREFIX

# AuditEvent.action values.
ATTACH_VERSION = "attach_version"
ATTACH_SUPPORTING = "attach_supporting"
HANDLED = "mail_handled"
REOPENED = "mail_reopened"
ANSWER = "answer_mail"

ANSWERS_FOLDER = "other"  # templates/web/other/reply/NAME.{zh,en}.txt.j2
MAX_ID = 2**63 - 1  # a larger number is no row's id, and the database would refuse it


def answer_renderer(web_templates: Path) -> Renderer:
    """The letters that answer other mail: templates/web/other/reply/*.txt.j2."""
    return Renderer(web_templates / ANSWERS_FOLDER)


def answer_names(answers: Renderer) -> list[str]:
    folder = answers.templates_dir / "reply"
    names = {path.name.split(".", 1)[0] for path in folder.glob("*.txt.j2")}
    titled = list(ANSWERS)  # the titled ones in their order, then any other by name
    return sorted(
        (name for name in names if answers.languages_for(name)),
        key=lambda name: (titled.index(name) if name in titled else len(titled), name),
    )


def open_mail(session: Session, app: App, mail_id: int) -> Mail:
    """A mail of this call tied to no submission; refused otherwise."""
    mail = session.get(Mail, mail_id) if 0 < mail_id <= MAX_ID else None
    if mail is None or mail.call_id != app.call.id:
        raise LookupError(mail_id)
    if mail.submission_id is not None:
        reference = mail.submission.reference if mail.submission else "-"
        raise ActionError("mail_taken", mail_id=mail.id, reference=reference)
    return mail


def _submission(session: Session, app: App, reference: str) -> Submission:
    wanted = reference.strip().upper()
    submission = session.scalar(
        select(Submission).where(Submission.call_id == app.call.id, Submission.reference == wanted)
    )
    if submission is None:
        raise ActionError("no_submission", reference=wanted or "-")
    return submission


def confirmed(form_value: str) -> None:
    if form_value != "yes":
        raise ActionError("not_confirmed")


@dataclass(frozen=True)
class AttachTo:
    """Where a person attaches an other mail: a submission's reference, as what, and whether
    a version's verdict is answered."""

    reference: str
    as_version: bool
    tell: bool = False


def attach(session: Session, app: App, mail: Mail, to: AttachTo, acting: Acting) -> Submission:
    """Tie an other mail to a submission, as a version of it or as a supporting mail.

    With ``to.tell``, a version's verdict is answered as the daemon answers one
    (the same reply template, in the applicant's thread, through the outbox).
    """
    acting = acting.checked()
    submission = _submission(session, app, to.reference)
    previous = mail.status
    detail: dict[str, Any] = {"reference": submission.reference}
    if to.as_version:
        detail.update(_file_as_version(session, app, mail, submission, tell=to.tell))
    else:
        mail.submission = submission
    mail.attached_as = VERSION if to.as_version else SUPPORTING
    session.flush()
    _close(mail, acting)
    entry = Entry(
        ATTACH_VERSION if to.as_version else ATTACH_SUPPORTING,
        submission=submission,
        mail=mail,
        previous_status=previous if to.as_version else None,
        new_status=mail.status if to.as_version else None,
        detail=detail,
    )
    audit(session, acting, entry)
    return submission


def _file_as_version(
    session: Session, app: App, mail: Mail, submission: Submission, *, tell: bool
) -> dict[str, Any]:
    """Judge the mail as if its subject named the submission; file the result as a version."""
    judged = judge_as_submission(app, mail, submission)
    if judged is None:
        raise ActionError("not_a_version")
    message, verdict = judged
    judge_again(mail, verdict)
    outcome = record(session, app.call, app.blobs, mail, message, verdict)
    if outcome.submission is None or outcome.submission.id != submission.id:
        raise ActionError("not_judged_as", reference=submission.reference)
    if tell:
        queue_answer(app, session, mail, message, outcome)
    return {
        "version": outcome.version.number if outcome.version else None,
        "codes": verdict.codes(),
        "told": tell,
    }


def _close(mail: Mail, acting: Acting) -> None:
    mail.handled_at = acting.now
    mail.handled_by = acting.actor.name
    mail.handled_reason = acting.reason


def mark_handled(session: Session, mail: Mail, acting: Acting) -> None:
    """Nothing more to do with this mail: it leaves the open list, with who, when and why."""
    acting = acting.checked()
    if mail.handled_at is not None:
        raise ActionError("mail_handled", mail_id=mail.id)
    _close(mail, acting)
    audit(session, acting, Entry(HANDLED, mail=mail))


def reopen(session: Session, mail: Mail, acting: Acting) -> None:
    """Put a handled mail back on the open list (handled by mistake)."""
    acting = acting.checked()
    if mail.handled_at is None:
        raise ActionError("mail_open", mail_id=mail.id)
    detail = {"handled_by": mail.handled_by, "handled_reason": mail.handled_reason}
    mail.handled_at = mail.handled_by = mail.handled_reason = None
    audit(session, acting, Entry(REOPENED, mail=mail, detail=detail))


def answer_context(app: App, mail: Mail) -> dict[str, Any]:
    """The variables of templates/web/other/reply/*: the call, the mail, the naming rule."""
    received_zh, received_en = app.call.local_text(mail.received_at)
    return {
        **call_context(app.call),
        **expected_names(app.call, None, None),
        "sender_name": mail.sender_name.strip(),
        "subject": mail.subject.strip(),
        "received_zh": received_zh,
        "received_en": received_en,
    }


def draft_answer(app: App, answers: Renderer, mail: Mail, name: str) -> tuple[str, str]:
    if name not in answer_names(answers):
        raise ActionError("no_template")
    return answers.render(name, answer_context(app, mail))


def answer(
    session: Session,
    app: App,
    answers: Renderer,
    mail: Mail,
    acting: Acting,
    letter: WrittenLetter,
) -> Reply:
    """Queue a letter a person wrote to the sender of an other mail, in its thread; close it."""
    acting = acting.checked()
    letter.check(answer_names(answers))
    to_address = mail.reply_to or mail.sender
    if not to_address:
        raise ActionError("no_sender_address", mail_id=mail.id)
    reply = queue_reply(
        session,
        Outgoing(
            to_address=to_address,
            template=LETTER_PREFIX + letter.template,
            subject=letter.subject,
            body=letter.text,
            in_reply_to=mail.message_id,
            mail_id=mail.id,
            by_person=True,
        ),
        settings=app.settings.replies,
        call=app.call,
        now=acting.now,
    )
    if mail.handled_at is None:
        _close(mail, acting)
    detail = {"template": letter.template, "to": to_address, "state": reply.state}
    audit(session, acting, Entry(ANSWER, mail=mail, reply=reply, detail=detail))
    return reply
