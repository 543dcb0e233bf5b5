"""The desk's overview, read from the ledger: counts, submissions per day, what needs a person."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from datetime import date, datetime, timedelta

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from mailbot.calls import Call
from mailbot.ledger.activity import Event, recent_activity
from mailbot.ledger.attention import Attention, needing_a_person, unmatched_counts
from mailbot.ledger.labels import STATUSES
from mailbot.ledger.log import focus_area_counts, status_counts
from mailbot.store.models import Mail, Submission, Version


def focus_areas(call: Call) -> dict[str, tuple[str, str]]:
    """Focus area codes to (Chinese, English) names, from the rules' [form] when it has one."""
    form = getattr(call, "form", None)  # the [form] section of the rules (issue 4)
    areas = getattr(form, "focus_areas", None) or []
    return {area.code: (area.zh, area.en) for area in areas}


def current_version(submission: Submission) -> Version | None:
    return next((v for v in reversed(submission.versions) if not v.superseded), None)


@dataclass(frozen=True)
class Overview:
    submissions: int
    by_status: list[tuple[str, int]]
    per_day: list[tuple[date, int]]
    by_focus_area: list[tuple[str, int]]
    mails: int
    unmatched: dict[str, int]
    deadline: datetime
    left: timedelta
    attention: Attention
    activity: list[Event]


MAX_DAYS = 62
STATUS_ORDER = {status: index for index, status in enumerate(STATUSES)}


def _per_day(session: Session, call: Call, now: datetime) -> list[tuple[date, int]]:
    first_mails = session.execute(
        select(Mail.submission_id, func.min(Mail.received_at))
        .where(Mail.call_id == call.id, Mail.submission_id.is_not(None))
        .group_by(Mail.submission_id)
    ).all()
    days = Counter(call.local(received).date() for _, received in first_mails)
    if not days:
        return []
    start = min(days)
    end = max(max(days), min(call.local(now).date(), call.local(call.deadline).date()))
    start = max(start, end - timedelta(days=MAX_DAYS - 1))
    return [
        (start + timedelta(days=n), days.get(start + timedelta(days=n), 0))
        for n in range((end - start).days + 1)
    ]


def overview(session: Session, call: Call, now: datetime) -> Overview:
    by_status = status_counts(session, call)
    mails = session.scalar(select(func.count(Mail.id)).where(Mail.call_id == call.id)) or 0
    return Overview(
        submissions=sum(by_status.values()),
        by_status=sorted(
            by_status.items(),
            key=lambda item: (STATUS_ORDER.get(item[0], len(STATUS_ORDER)), item[0]),
        ),
        per_day=_per_day(session, call, now),
        by_focus_area=focus_area_counts(session, call),
        mails=mails,
        unmatched=unmatched_counts(session, call),
        deadline=call.local(call.deadline),
        left=call.deadline - now,
        attention=needing_a_person(session, call),
        activity=recent_activity(session, call),
    )
