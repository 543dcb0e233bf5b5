"""What happened lately: mail received, letters sent, what people did at the desk."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from mailbot.calls import Call
from mailbot.store.models import AuditEvent, Mail, Reply, Submission

RECENT = 12


@dataclass(frozen=True)
class Event:
    at: datetime
    kind: str  # mail, letter, desk
    what: str  # a mail's status, a letter's state, a desk action
    who: str  # the sender, the recipient, the person at the desk
    reference: str | None  # the submission it concerns, if any
    mail_id: int | None


def recent_activity(session: Session, call: Call, limit: int = RECENT) -> list[Event]:
    """The latest ``limit`` events of every kind, newest first."""
    mails = session.execute(
        select(Mail, Submission.reference)
        .outerjoin(Submission, Mail.submission_id == Submission.id)
        .where(Mail.call_id == call.id)
        .order_by(Mail.received_at.desc(), Mail.id.desc())
        .limit(limit)
    ).all()
    letters = session.execute(
        select(Reply, Submission.reference)
        .outerjoin(Submission, Reply.submission_id == Submission.id)
        .where(Reply.call_id == call.id, Reply.template != "digest")
        .order_by(Reply.queued_at.desc(), Reply.id.desc())
        .limit(limit)
    ).all()
    actions = session.execute(
        select(AuditEvent, Submission.reference)
        .outerjoin(Submission, AuditEvent.submission_id == Submission.id)
        .order_by(AuditEvent.at.desc(), AuditEvent.id.desc())
        .limit(limit)
    ).all()
    events = [Event(m.received_at, "mail", m.status, m.sender or "", ref, m.id) for m, ref in mails]
    events += [
        Event(r.sent_at or r.queued_at, "letter", r.state, r.to_address, ref, r.mail_id)
        for r, ref in letters
    ]
    events += [Event(a.at, "desk", a.action, a.actor, ref, a.mail_id) for a, ref in actions]
    events.sort(key=lambda e: e.at, reverse=True)
    return events[:limit]
