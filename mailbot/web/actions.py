"""What a person does at the desk, each act recorded with who, when and why.

Decisions change only Submission.status (to the two statuses below) and
leave the daemon's verdicts and versions as they were: the audit trail says
which status a person set over which verdict. Letters go through the same
outbox as the daemon's replies, so the daemon sends them.
"""

from __future__ import annotations

import email
import email.policy
from collections.abc import Sequence
from datetime import datetime
from email.message import EmailMessage
from typing import Any

from sqlalchemy import or_, select
from sqlalchemy.orm import Session

from mailbot.app import App
from mailbot.errors import MailbotError
from mailbot.replies.outbox import queue_reply
from mailbot.replies.render import Renderer, call_context, expected_names
from mailbot.store.models import AuditEvent, Mail, Reply, Submission
from mailbot.web.auth import Actor

# Submission statuses a person sets; the daemon sets the others.
ACCEPTED_BY_DECISION = "accepted_by_decision"
WITHDRAWN = "withdrawn"

# AuditEvent.action values.
ACCEPT = "accept_by_decision"
WITHDRAW = "withdraw"
NOTE = "note"
RESEND = "resend"
WRITE = "write"

MAX_REASON = 2000
MAX_LETTER = 20_000
LETTER_PREFIX = "desk/"  # Reply.template of a letter written at the desk


class ActionError(MailbotError):
    """An act the desk refuses: no reason given, nothing to resend, already so."""


def _reason(text: str) -> str:
    reason = text.strip()
    if not reason:
        raise ActionError("请说明理由 Please give a reason")
    if len(reason) > MAX_REASON:
        raise ActionError(f"理由过长 The reason is longer than {MAX_REASON} characters")
    return reason


def _event(
    session: Session,
    actor: Actor,
    action: str,
    reason: str,
    now: datetime,
    *,
    submission: Submission | None = None,
    mail: Mail | None = None,
    reply: Reply | None = None,
    previous_status: str | None = None,
    new_status: str | None = None,
    detail: dict[str, Any] | None = None,
) -> AuditEvent:
    event = AuditEvent(
        at=now,
        actor=actor.name,
        user_id=actor.user_id,
        action=action,
        submission_id=submission.id if submission else None,
        mail_id=mail.id if mail else None,
        reply_id=reply.id if reply else None,
        reason=reason,
        previous_status=previous_status,
        new_status=new_status,
        detail=detail or {},
    )
    session.add(event)
    session.flush()
    return event


def _set_status(
    session: Session,
    submission: Submission,
    status: str,
    action: str,
    actor: Actor,
    reason: str,
    now: datetime,
) -> AuditEvent:
    reason = _reason(reason)
    previous = submission.status
    if previous == status:
        raise ActionError(f"{submission.reference} is {status} already")
    submission.status = status
    submission.updated_at = now
    return _event(
        session,
        actor,
        action,
        reason,
        now,
        submission=submission,
        previous_status=previous,
        new_status=status,
    )


def accept_by_decision(
    session: Session, submission: Submission, actor: Actor, reason: str, now: datetime
) -> AuditEvent:
    """Accept a submission whatever its verdict said, because a person decided so."""
    return _set_status(session, submission, ACCEPTED_BY_DECISION, ACCEPT, actor, reason, now)


def withdraw(
    session: Session, submission: Submission, actor: Actor, reason: str, now: datetime
) -> AuditEvent:
    """Mark a submission withdrawn (the applicant asked, or it was sent by mistake)."""
    return _set_status(session, submission, WITHDRAWN, WITHDRAW, actor, reason, now)


def add_note(
    session: Session,
    actor: Actor,
    text: str,
    now: datetime,
    *,
    submission: Submission | None = None,
    mail: Mail | None = None,
) -> AuditEvent:
    """A note on a submission or on a mail, kept in the trail."""
    return _event(session, actor, NOTE, _reason(text), now, submission=submission, mail=mail)


def replies_of(session: Session, submission: Submission) -> Sequence[Reply]:
    """Every reply about a submission: to its mails, and letters written at the desk."""
    mail_ids = [mail.id for mail in submission.mails]
    return session.scalars(
        select(Reply)
        .where(or_(Reply.submission_id == submission.id, Reply.mail_id.in_(mail_ids)))
        .order_by(Reply.id)
    ).all()


def reply_body(raw: bytes) -> str:
    """The text of a stored reply (they are all text/plain)."""
    message = email.message_from_bytes(raw, policy=email.policy.default)
    assert isinstance(message, EmailMessage)
    part = message.get_body(("plain",))
    return str(part.get_content()) if part is not None else ""


def resend_last_reply(
    session: Session, app: App, submission: Submission, actor: Actor, reason: str, now: datetime
) -> Reply:
    """Queue the submission's last reply again, in the same thread, under a new Message-ID."""
    reason = _reason(reason)
    replies = replies_of(session, submission)
    if not replies:
        raise ActionError(f"{submission.reference} 尚无回复 has no reply to resend")
    last = replies[-1]
    original = email.message_from_bytes(last.raw, policy=email.policy.default)
    reply = queue_reply(
        session,
        settings=app.settings.replies,
        call=app.call,
        to_address=last.to_address,
        template=last.template,
        subject=last.subject,
        body=reply_body(last.raw),
        in_reply_to=str(original.get("In-Reply-To") or "") or None,
        references=str(original.get("References") or "").split(),
        mail_id=last.mail_id,
        submission_id=submission.id,
        now=now,
    )
    _event(
        session,
        actor,
        RESEND,
        reason,
        now,
        submission=submission,
        reply=reply,
        detail={"resent_reply_id": last.id, "state": reply.state},
    )
    return reply


# --------------------------------------------------------------------------- letters


def letter_names(letters: Renderer) -> list[str]:
    """The letter templates there are: templates/web/reply/NAME.zh.txt.j2 and .en."""
    folder = letters.templates_dir / "reply"
    names = {path.name.split(".", 1)[0] for path in folder.glob("*.txt.j2")}
    return sorted(name for name in names if letters.languages_for(name))


def _latest_mail(submission: Submission) -> Mail | None:
    return next((m for m in reversed(submission.mails) if m.reply_to or m.sender), None)


def recipient(submission: Submission) -> str | None:
    """Where a letter about a submission goes: the latest mail's Reply-To, else its sender."""
    mail = _latest_mail(submission)
    return (mail.reply_to or mail.sender) if mail else None


def letter_context(app: App, submission: Submission) -> dict[str, Any]:
    """The letter templates' variables (listed in templates/web/README.md)."""
    current = next((v for v in reversed(submission.versions) if not v.superseded), None)
    problems = current.problems if current else []
    mail = _latest_mail(submission)
    received_zh, received_en = app.call.local_text(mail.received_at) if mail else (None, None)
    return {
        **call_context(app.call),
        **expected_names(app.call, submission.institution, submission.pi),
        "reference": submission.reference,
        "institution": submission.institution,
        "pi": submission.pi,
        "status": submission.status,
        "version": submission.current_version,
        "received_zh": received_zh,
        "received_en": received_en,
        "problems": [
            {
                "code": p.get("code", ""),
                "zh": p.get("message_zh", ""),
                "en": p.get("message_en", ""),
            }
            for p in problems
            if p.get("severity") == "error"
        ],
    }


def draft_letter(app: App, letters: Renderer, submission: Submission, name: str) -> tuple[str, str]:
    """A letter's (subject, body) from its template, for a person to read and edit."""
    if name not in letter_names(letters):
        raise ActionError(f"没有这个模板 No letter template {name!r}")
    return letters.render(name, letter_context(app, submission))


def write_to_applicant(
    session: Session,
    app: App,
    letters: Renderer,
    submission: Submission,
    actor: Actor,
    *,
    template: str,
    subject: str,
    body: str,
    reason: str,
    now: datetime,
) -> Reply:
    """Queue a letter a person wrote (from a template) to the applicant, in their thread."""
    reason = _reason(reason)
    if template not in letter_names(letters):
        raise ActionError(f"没有这个模板 No letter template {template!r}")
    if not subject.strip() or not body.strip():
        raise ActionError("主题和正文不能为空 The subject and the text must not be empty")
    if len(body) > MAX_LETTER:
        raise ActionError(f"正文过长 The text is longer than {MAX_LETTER} characters")
    to_address = recipient(submission)
    if to_address is None:
        raise ActionError(f"{submission.reference} 没有发件人地址 has no address to write to")
    thread = _latest_mail(submission)
    reply = queue_reply(
        session,
        settings=app.settings.replies,
        call=app.call,
        to_address=to_address,
        template=LETTER_PREFIX + template,
        subject=subject,
        body=body.replace("\r\n", "\n"),
        in_reply_to=thread.message_id if thread else None,
        references=(),
        mail_id=None,
        submission_id=submission.id,
        now=now,
    )
    _event(
        session,
        actor,
        WRITE,
        reason,
        now,
        submission=submission,
        reply=reply,
        detail={"template": template, "to": to_address, "state": reply.state},
    )
    return reply
