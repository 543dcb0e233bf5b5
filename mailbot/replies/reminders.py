"""Reminders before the deadline: one letter per submission that still needs correction,
at each point of ``[reminders] hours_before``, threaded to the submission's last mail.

A point is due from its time (the deadline less its hours) until the deadline; only
the latest due point is served, so a daemon that was down at 72 h and starts at 30 h
sends the 72 h reminder, and one started at 20 h the 24 h one, never both. A
``reminders`` row, unique per submission and point and committed with its letter,
keeps a restart (or a second daemon) from queueing one twice. The letter goes
through the outbox: its exactly-once sending and its per-address hourly limit.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from mailbot.calls import Call
from mailbot.config import ReplySettings
from mailbot.domain import SubmissionStatus
from mailbot.replies.outbox import Outgoing, queue_reply
from mailbot.replies.render import Renderer, call_context, expected_names
from mailbot.store.models import Mail, Reminder, Reply, Submission, Version

log = logging.getLogger(__name__)

REMINDER = "reminder"
PROPOSAL_ROLES = frozenset({"word", "pdf"})


def due_point(call: Call, hours_before: Sequence[int], now: datetime) -> int | None:
    """The latest point whose time has come, or None (none yet, or the deadline passed)."""
    deadline = call.deadline
    if now >= deadline:
        return None
    passed = [h for h in hours_before if deadline - timedelta(hours=h) <= now]
    return min(passed) if passed else None


def _wanting(session: Session, call: Call) -> list[tuple[Submission, Version | None]]:
    """Submissions that still need correction, or whose current version lacks a file."""
    rows = session.execute(
        select(Submission, Version)
        .outerjoin(
            Version,
            (Version.submission_id == Submission.id)
            & (Version.number == Submission.current_version),
        )
        .where(
            Submission.call_id == call.id,
            Submission.status.in_([SubmissionStatus.NEEDS_CORRECTION, SubmissionStatus.ACCEPTED]),
        )
        .order_by(Submission.seq)
    ).all()
    wanting: list[tuple[Submission, Version | None]] = []
    for submission, version in rows:
        roles = {str(f.get("role")) for f in (version.files if version else [])}
        if submission.status == SubmissionStatus.NEEDS_CORRECTION or PROPOSAL_ROLES - roles:
            wanting.append((submission, version))
    return wanting


def _last_mail(session: Session, submission: Submission) -> Mail | None:
    return session.scalar(
        select(Mail)
        .where(Mail.submission_id == submission.id)
        .order_by(Mail.received_at.desc(), Mail.id.desc())
        .limit(1)
    )


def _time_left(call: Call, now: datetime) -> tuple[str, str]:
    minutes = max(0, int((call.deadline - now).total_seconds() // 60))
    hours, minutes = divmod(minutes, 60)
    return f"{hours} 小时 {minutes} 分钟", f"{hours} h {minutes} min"


def _problems(submission: Submission, version: Version | None) -> list[dict[str, str]]:
    found = [
        {"zh": str(p.get("message_zh") or ""), "en": str(p.get("message_en") or "")}
        for p in (version.problems if version else [])
        if isinstance(p, dict) and p.get("severity") == "error"
    ]
    found = [p for p in found if p["zh"].strip() and p["en"].strip()]
    roles = {str(f.get("role")) for f in (version.files if version else [])}
    if not found and "word" not in roles:
        found.append({"zh": "缺少建议书 Word 文件。", "en": "The Word proposal is missing."})
    if not found and "pdf" not in roles:
        found.append(
            {
                "zh": "缺少签字盖章的 PDF 扫描件。",
                "en": "The signed and stamped PDF scan is missing.",
            }
        )
    return found


def reminder_context(
    call: Call, submission: Submission, version: Version | None, now: datetime
) -> dict[str, Any]:
    """The reminder templates' variables (templates/README.md)."""
    left_zh, left_en = _time_left(call, now)
    return {
        **call_context(call),
        **expected_names(call, submission.institution, submission.pi),
        "reference": submission.reference,
        "institution": submission.institution,
        "pi": submission.pi,
        "problems": _problems(submission, version),
        "time_left_zh": left_zh,
        "time_left_en": left_en,
    }


def queue_reminders(
    session: Session,
    *,
    call: Call,
    settings: ReplySettings,
    renderer: Renderer,
    hours_before: Sequence[int],
    now: datetime,
) -> list[Reply]:
    """Queue the due point's reminder to each submission wanting one and not yet reminded."""
    point = due_point(call, hours_before, now)
    if point is None:
        return []
    reminded = set(
        session.scalars(select(Reminder.submission_id).where(Reminder.hours_before == point))
    )
    queued = []
    for submission, version in _wanting(session, call):
        mail = _last_mail(session, submission)
        recipient = (mail.reply_to or mail.sender) if mail else None
        if submission.id in reminded or mail is None or not recipient:
            continue
        subject, body = renderer.render(REMINDER, reminder_context(call, submission, version, now))
        reply = queue_reply(
            session,
            Outgoing(
                to_address=recipient,
                template=REMINDER,
                subject=subject,
                body=body,
                in_reply_to=mail.message_id,
                references=[mail.message_id] if mail.message_id else [],
                submission_id=submission.id,
            ),
            settings=settings,
            call=call,
            now=now,
        )
        session.add(
            Reminder(
                submission_id=submission.id, hours_before=point, reply_id=reply.id, queued_at=now
            )
        )
        queued.append(reply)
    if queued:
        log.info("queued %d reminders, %d h before the deadline", len(queued), point)
    return queued
