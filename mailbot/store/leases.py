"""Leases: one daemon at a time serves a mailbox, and one sends a call's outbox.

A lease is a row in ``leases``: the mailbox's name, who holds it, and until
when. The holder renews it while it works (and within the transaction of
every mail it records, so a daemon that lost its lease records nothing
more), and deletes it on a clean exit. Another daemon takes it over once it
has expired, or at once when the holder was a process on this host that no
longer exists (a daemon killed and started again need not wait).

The times are the daemons' own clocks: daemons on several hosts sharing a
PostgreSQL database need clocks that agree within a small part of the
lease's time (NTP does that).
"""

from __future__ import annotations

import logging
import os
import re
import secrets
import socket
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, cast

from sqlalchemy import CursorResult, case, delete, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from mailbot.errors import MailbotError
from mailbot.store.db import Database
from mailbot.store.models import Lease as LeaseRow
from mailbot.store.models import utcnow

log = logging.getLogger(__name__)

LEASE_TTL = 60.0  # seconds a lease lasts unless renewed; renewed every third of that

_HOLDER = re.compile(r"^(?P<host>\S+) pid (?P<pid>\d+) ns (?P<ns>\S*) #\w+$")


class LeaseLost(MailbotError):
    """Another daemon holds the lease now: this one must stop recording mail."""


class LeaseHeld(MailbotError):
    """Another daemon serves this mailbox: nothing was done."""


@dataclass(frozen=True)
class Holder:
    """Who holds a lease: the host, the process and its PID namespace, and a token."""

    host: str
    pid: int
    namespace: str

    @classmethod
    def parse(cls, text: str) -> Holder | None:
        match = _HOLDER.match(text)
        if match is None:
            return None
        return cls(match["host"], int(match["pid"]), match["ns"])

    @property
    def gone(self) -> bool:
        """True only when this process is certainly gone: on this host, in our namespace."""
        me = Holder(socket.gethostname(), os.getpid(), _pid_namespace())
        if not me.namespace or (self.host, self.namespace) != (me.host, me.namespace):
            return False
        return not _alive(self.pid)


def _pid_namespace() -> str:
    try:
        return os.readlink("/proc/self/ns/pid").removeprefix("pid:").strip("[]")
    except OSError:
        return ""


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat", "rb") as stat:
            # The state follows the command name in brackets; Z and X are dead.
            state = stat.read().rpartition(b")")[2].split()[:1]
    except FileNotFoundError:
        return False
    except OSError:
        state = []
    if state in ([b"Z"], [b"X"]):
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def holder_name() -> str:
    """A name for one daemon: which host and process it is, and a token of its own."""
    return f"{socket.gethostname()} pid {os.getpid()} ns {_pid_namespace()} #{secrets.token_hex(4)}"


class Lease:
    """One lease, as one daemon sees it."""

    def __init__(
        self,
        db: Database,
        source: str,
        holder: str,
        *,
        ttl: float = LEASE_TTL,
        clock: Callable[[], datetime] = utcnow,
    ) -> None:
        self.db = db
        self.source = source
        self.holder = holder
        self.ttl = timedelta(seconds=ttl)
        self.clock = clock
        self.held = False
        # Who holds it when we do not, and until when: for the log line.
        self.other: str | None = None
        self.other_until: datetime | None = None

    def acquire(self) -> bool:
        """Take the lease or renew it; True when this daemon holds it now.

        Database errors reach the caller (the database is down: retry later).
        """
        now = self.clock()
        if self._update(
            (LeaseRow.holder == self.holder) | (LeaseRow.expires_at <= now),
            now,
        ):
            return self._taken()
        try:
            with self.db.transaction() as session:
                session.add(
                    LeaseRow(
                        source=self.source,
                        holder=self.holder,
                        acquired_at=now,
                        expires_at=now + self.ttl,
                    )
                )
            return self._taken()
        except IntegrityError:
            pass  # somebody holds it; whether they still live is read below
        with self.db.transaction() as session:
            row = session.get(LeaseRow, self.source)
            if row is None:
                return False  # released meanwhile: the next try takes it
            current, until = row.holder, row.expires_at
        holder = Holder.parse(current)
        gone = holder is not None and holder.gone
        # Compare and swap: only if nobody renewed or took it since the read.
        if gone and self._update(
            (LeaseRow.holder == current) & (LeaseRow.expires_at == until), now
        ):
            log.info("%s: took over the lease of %s, whose process is gone", self.source, current)
            return self._taken()
        self.held, self.other, self.other_until = False, current, until
        return False

    def _update(self, condition: Any, now: datetime) -> bool:
        with self.db.transaction() as session:
            result = cast(
                CursorResult[Any],
                session.execute(
                    update(LeaseRow)
                    .where(LeaseRow.source == self.source, condition)
                    .values(
                        holder=self.holder,
                        acquired_at=case(
                            (LeaseRow.holder == self.holder, LeaseRow.acquired_at), else_=now
                        ),
                        expires_at=now + self.ttl,
                    )
                ),
            )
            return result.rowcount == 1

    def _taken(self) -> bool:
        self.held, self.other, self.other_until = True, None, None
        return True

    def renew(self) -> bool:
        """Extend the lease this daemon holds; False (and no longer held) when it was lost."""
        with self.db.transaction() as session:
            self.held = self._extend(session)
        return self.held

    def confirm(self, session: Session) -> None:
        """Within the caller's transaction: extend the lease, or raise LeaseLost."""
        if not self._extend(session):
            self.held = False
            raise LeaseLost(f"{self.source}: another mailbot holds the lease now")

    def _extend(self, session: Session) -> bool:
        result = cast(
            CursorResult[Any],
            session.execute(
                update(LeaseRow)
                .where(LeaseRow.source == self.source, LeaseRow.holder == self.holder)
                .values(expires_at=self.clock() + self.ttl)
            ),
        )
        return result.rowcount == 1

    def release(self) -> None:
        """Give the lease up (a clean exit), so another daemon may take it at once."""
        with self.db.transaction() as session:
            session.execute(
                delete(LeaseRow).where(
                    LeaseRow.source == self.source, LeaseRow.holder == self.holder
                )
            )
        self.held = False

    def describe_other(self) -> str:
        """Who holds the lease instead of us, for a log line."""
        until = self.other_until.isoformat(timespec="seconds") if self.other_until else "?"
        return f"{self.other or 'another mailbot'} (lease until {until})"


def current_holder(db: Database, source: str) -> str | None:
    with db.transaction() as session:
        return session.scalar(select(LeaseRow.holder).where(LeaseRow.source == source))
