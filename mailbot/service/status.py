"""How the service stands: the daemon records what it did; `mailbot status` and the desk read it.

The daemon writes one ``daemon_states`` row per mailbox (at its start, at
each poll, at each renewal of its lease, at each fault and at a clean exit).
``read_status`` joins that with the leases, the outbox and the digest's
schedule into the figures a secretariat asks for first: is it running, when
did it last fetch, is mail waiting, are replies stuck, what went wrong last,
when does the next digest go.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from apscheduler.triggers.cron import CronTrigger
from sqlalchemy import func, or_, select
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session

from mailbot.domain import ReplyState
from mailbot.store.db import Database, DatabaseError
from mailbot.store.models import DaemonState, Lease, Reply

log = logging.getLogger(__name__)

# Reply states counted as waiting to go out (see mailbot.replies.sender).
_WAITING = (ReplyState.PENDING, ReplyState.SENDING, ReplyState.HANDED)


# -- written by the daemon ------------------------------------------------------------


class StateRecorder:
    """The daemon's side: keeps its mailbox's row up to date; never fails the daemon."""

    def __init__(
        self, db: Database, source: str, call_id: str, holder: str, clock: Callable[[], datetime]
    ) -> None:
        self.db = db
        self.source = source
        self.call_id = call_id
        self.holder = holder
        self.clock = clock

    def started(self) -> None:
        now = self.clock()
        self._update(holder=self.holder, started_at=now, heartbeat_at=now, stopped_at=None)

    def heartbeat(self) -> None:
        self._update(holder=self.holder, heartbeat_at=self.clock())

    def polled(self, summary: str, waiting: int, fault: str | None) -> None:
        now = self.clock()
        if fault is None:
            self._update(heartbeat_at=now, polled_at=now, poll_summary=summary, waiting=waiting)
        else:
            self._update(heartbeat_at=now, waiting=waiting, error=fault, error_at=now)

    def failed(self, error: str) -> None:
        self._update(error=error, error_at=self.clock())

    def stopped(self) -> None:
        now = self.clock()
        self._update(heartbeat_at=now, stopped_at=now)

    def _update(self, **values: object) -> None:
        try:
            with self.db.transaction() as session:
                row = session.get(DaemonState, self.source)
                if row is None:
                    now = self.clock()
                    row = DaemonState(
                        source=self.source,
                        call_id=self.call_id,
                        holder=self.holder,
                        started_at=now,
                        heartbeat_at=now,
                        poll_summary="",
                        waiting=0,
                    )
                    session.add(row)
                for key, value in values.items():
                    setattr(row, key, value)
        except (SQLAlchemyError, DatabaseError) as exc:
            # The database is what failed: the daemon's own outage log says so.
            log.debug("cannot record the daemon's state (%s)", exc)


# -- read by `mailbot status` and the desk ----------------------------------------------


@dataclass(frozen=True)
class MailboxStatus:
    """One mailbox as its daemon last recorded it."""

    source: str
    holder: str
    running: bool  # a lease is held and unexpired, and the daemon did not stop cleanly
    heartbeat_at: datetime
    polled_at: datetime | None
    poll_summary: str
    waiting: int
    error: str | None
    error_at: datetime | None
    stopped_at: datetime | None


@dataclass(frozen=True)
class ServiceStatus:
    """Every figure `mailbot status` prints and the desk's strip shows."""

    now: datetime
    mailboxes: tuple[MailboxStatus, ...]
    pending: int
    failed: int
    uncertain: int
    next_digest: datetime | None  # None: no [digest] to


def next_digest(at: str, to: list[str], tz: ZoneInfo, now: datetime) -> datetime | None:
    """When the daemon next sends the digest ([digest] at, in the call's time zone)."""
    if not to:
        return None
    hour, minute = (int(part) for part in at.split(":"))
    trigger = CronTrigger(hour=hour, minute=minute, timezone=tz)
    fire: datetime | None = trigger.get_next_fire_time(None, now.astimezone(tz))
    return fire


def read_status(
    session: Session, call_id: str, now: datetime, digest_at: datetime | None
) -> ServiceStatus:
    """The service's figures for one call, as of ``now``."""
    leases = {row.source: row for row in session.scalars(select(Lease))}
    mailboxes = []
    for row in session.scalars(
        select(DaemonState).where(DaemonState.call_id == call_id).order_by(DaemonState.source)
    ):
        lease = leases.get(row.source)
        held = lease is not None and lease.expires_at > now and row.stopped_at is None
        mailboxes.append(
            MailboxStatus(
                source=row.source,
                holder=lease.holder if lease is not None else row.holder,
                running=held,
                heartbeat_at=row.heartbeat_at,
                polled_at=row.polled_at,
                poll_summary=row.poll_summary,
                waiting=row.waiting,
                error=row.error,
                error_at=row.error_at,
                stopped_at=row.stopped_at,
            )
        )
    counts = dict(
        session.execute(
            select(Reply.state, func.count())
            .where(or_(Reply.call_id == call_id, Reply.call_id.is_(None)))
            .group_by(Reply.state)
        ).all()
    )
    return ServiceStatus(
        now=now,
        mailboxes=tuple(mailboxes),
        pending=sum(counts.get(state, 0) for state in _WAITING),
        failed=counts.get(ReplyState.FAILED, 0),
        uncertain=counts.get(ReplyState.UNCERTAIN, 0),
        next_digest=digest_at,
    )


def age(moment: datetime | None, now: datetime) -> str:
    """How long ago, in the largest unit that fits: "42 s ago", "3 min ago", "2 h ago"."""
    if moment is None:
        return "never"
    seconds = max(0, int((now - moment) / timedelta(seconds=1)))
    if seconds < 120:
        return f"{seconds} s ago"
    if seconds < 2 * 3600:
        return f"{seconds // 60} min ago"
    if seconds < 2 * 86400:
        return f"{seconds // 3600} h ago"
    return f"{seconds // 86400} days ago"


def plural(count: int, noun: str) -> str:
    return f"{count} {noun}" if count == 1 else f"{count} {noun}s"


def _when(moment: datetime, tz: ZoneInfo, now: datetime) -> str:
    return f"{moment.astimezone(tz):%Y-%m-%d %H:%M:%S %Z} ({age(moment, now)})"


def mailbox_lines(box: MailboxStatus, tz: ZoneInfo, now: datetime) -> list[tuple[str, str]]:
    """(label, text) pairs for one mailbox: daemon, last poll, waiting, last error."""
    if box.running:
        daemon = (
            f"running, lease held by {box.holder}; heartbeat {_when(box.heartbeat_at, tz, now)}"
        )
    elif box.stopped_at is not None:
        daemon = f"not running: stopped cleanly {_when(box.stopped_at, tz, now)}"
    else:
        daemon = (
            f"not running: no live lease; last heartbeat {_when(box.heartbeat_at, tz, now)} "
            f"from {box.holder}"
        )
    polled = (
        f"{_when(box.polled_at, tz, now)}: {box.poll_summary}"
        if box.polled_at is not None
        else "never"
    )
    error = (
        f"{box.error} ({_when(box.error_at, tz, now)})" if box.error and box.error_at else "none"
    )
    # The poll stops at the first mail it cannot record: later batches were not even listed.
    waiting = (
        f"at least {plural(box.waiting, 'mail')} in the mailbox not yet recorded "
        "(the last poll stopped there: see the last error)"
        if box.waiting
        else "0 mails in the mailbox not yet recorded"
    )
    return [
        ("mailbox", box.source),
        ("daemon", daemon),
        ("last poll", polled),
        ("waiting", waiting),
        ("last error", error),
    ]


def status_lines(status: ServiceStatus, tz: ZoneInfo) -> list[tuple[str, str]]:
    """Every figure as (label, text) pairs, in the order `mailbot status` prints them."""
    lines: list[tuple[str, str]] = []
    if not status.mailboxes:
        lines.append(("daemon", "has never run against this database"))
    for box in status.mailboxes:
        lines.extend(mailbox_lines(box, tz, status.now))
    lines.append(
        (
            "outbox",
            f"{status.pending} pending, {status.failed} failed, {status.uncertain} uncertain",
        )
    )
    digest = (
        f"{status.next_digest.astimezone(tz):%Y-%m-%d %H:%M %Z}"
        if status.next_digest is not None
        else "none: no addresses in [digest] to"
    )
    lines.append(("next digest", digest))
    return lines


def format_status(status: ServiceStatus, tz: ZoneInfo) -> str:
    return "\n".join(f"{label + ':':<12} {text}" for label, text in status_lines(status, tz))


def current_status(
    session: Session,
    call_id: str,
    tz: ZoneInfo,
    digest_at: str,
    digest_to: list[str],
    now: datetime,
) -> ServiceStatus:
    """read_status with the next digest worked out from the [digest] settings."""
    return read_status(session, call_id, now, next_digest(digest_at, digest_to, tz, now))
