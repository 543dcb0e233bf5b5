"""The intake's loop: fetch each watched folder's new mail, record it, file it.

Each fetched batch is recorded in one transaction (mailbot.intake.batch)
after its mails' bytes are safely in the blob store, and only then are they
moved or flagged in the mailbox (mailbot.intake.filing), so a crash at any
point loses nothing and a rerun finds nothing to do twice.

A mail that cannot be stored (the disk, the database) is left where it is in
the mailbox, neither moved nor flagged; the poll stops and says why in its
report, and the caller logs it once and tries again later.
"""

from __future__ import annotations

import logging
import threading
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

from sqlalchemy import select

from mailbot.app import App
from mailbot.intake.batch import record_batch
from mailbot.intake.filing import load_cursor, mark_settled, settle_pending
from mailbot.intake.record import Known, NotStored, Processed, Recorded
from mailbot.judge.processes import Judged
from mailbot.ledger.counting import count
from mailbot.sources.base import Fetched, Filing, Mailbox
from mailbot.store.leases import Lease
from mailbot.store.models import Mail

log = logging.getLogger(__name__)

PROGRESS_EVERY = 50


@dataclass
class PollReport:
    """What one poll did, for the log and for `run --once`."""

    new: int = 0
    known: int = 0
    failed: int = 0
    duplicates: int = 0
    statuses: Counter[str] = field(default_factory=Counter)
    # Why the last mail could not be stored (the poll stopped there), for the caller's log.
    fault: BaseException | None = None
    # Mail fetched but left in the mailbox when the poll stopped (at least this many wait).
    waiting: int = 0
    # Replies recorded but not sent, over an hourly limit (mailbot.replies.limits).
    suppressed: int = 0

    def summary(self) -> str:
        parts = ", ".join(f"{k} {v}" for k, v in sorted(self.statuses.items()))
        duplicates = f", {count(self.duplicates, 'duplicate')}" if self.duplicates else ""
        return (
            f"{self.new} new ({parts or 'none'}), {self.known} already recorded, "
            f"{self.failed} failed{duplicates}"
        )

    def tally(self, outcome: Processed) -> None:
        """Count what became of one mail."""
        if isinstance(outcome, Recorded):
            self.new += 1
            self.statuses[outcome.status] += 1
            self.duplicates += outcome.duplicate
            self.suppressed += outcome.suppressed
        elif isinstance(outcome, Known):
            self.known += 1
        else:
            self.failed += 1
            self.fault = outcome.reason


def poll(
    app: App,
    mailbox: Mailbox,
    stop: threading.Event | None = None,
    on_mail: Callable[[Mail], None] | None = None,
    lease: Lease | None = None,
) -> PollReport:
    """Process every new mail in every watched folder; return what was done.

    A mail that cannot be stored ends the poll (``report.fault`` says why):
    it and the mails after it stay in the mailbox for the next poll. With a
    lease, a lost lease raises LeaseLost.
    """
    run = _Poll(app, mailbox, stop, on_mail, lease)
    for folder in mailbox.folders():
        if not run.folder(folder):
            break
    return run.report


@dataclass
class _Poll:
    """One poll over a mailbox: what stays the same for every mail, and its report."""

    app: App
    mailbox: Mailbox
    stop: threading.Event | None
    on_mail: Callable[[Mail], None] | None
    lease: Lease | None
    report: PollReport = field(default_factory=PollReport)

    def folder(self, folder: str) -> bool:
        """Record and file the folder's new mail; False when the poll stopped in it."""
        mailbox = self.mailbox
        settle_pending(self.app, mailbox, folder)
        cursor = load_cursor(self.app, mailbox.name, folder)
        now_validity = mailbox.uidvalidity(folder)
        if cursor.uidvalidity is not None and now_validity != cursor.uidvalidity:
            log.warning(
                "%s %s: UIDVALIDITY changed from %s to %s; resynchronising by Message-ID and hash",
                mailbox.name,
                folder,
                cursor.uidvalidity,
                now_validity,
            )
        # The judging processes are forked before the mail is fetched: one forked
        # after would carry a copy of the batch for as long as it lives.
        for batch in mailbox.fetch_new(folder, cursor, self.app.judges.start):
            done, halted = self.batch(batch)
            if done:
                mailbox.settle(folder, done)
                mark_settled(self.app, mailbox.name, done)
            if halted:
                return False
        return True

    def batch(self, batch: list[Fetched]) -> tuple[list[tuple[str, Filing]], bool]:
        """Record a batch's mails in one transaction: how to file each recorded one, and
        whether it stopped.

        It stops at a stop request and at a mail that could not be stored,
        which stays in the mailbox with the mails after it.
        """
        known = _known(self.app, self.mailbox.name, batch)
        fresh = [item for item in batch if item.location not in known]
        # The judging processes work ahead while each mail before is made ready. A big
        # mail they store first is let go of here at once (read back if needed).
        judged = self.app.judges.judge_all(
            ((item.raw, item.received_at) for item in fresh),
            lambda index, sha256: fresh[index].release(sha256),
        )
        try:
            outcomes = dict(
                (item.location, outcome)
                for item, outcome in record_batch(
                    self.app, self.mailbox.name, self._feed(fresh, judged), self.on_mail, self.lease
                )
            )
        finally:
            judged.close()
        return self._file(batch, known, outcomes)

    def _feed(
        self, fresh: list[Fetched], judged: Iterator[Judged | Exception]
    ) -> Iterator[tuple[Fetched, Judged | Exception]]:
        """The new mails with their judgements, up to a stop request."""
        for item in fresh:
            if self.stop is not None and self.stop.is_set():
                return
            yield item, next(judged)

    def _file(
        self, batch: list[Fetched], known: dict[str, str], outcomes: dict[str, Processed]
    ) -> tuple[list[tuple[str, Filing]], bool]:
        """Count each mail in order and say how to file it, up to the first not stored."""
        done: list[tuple[str, Filing]] = []
        for position, item in enumerate(batch):
            outcome: Processed | None = outcomes.get(item.location)
            if item.location in known:
                outcome = Known(known[item.location])
            if outcome is None:  # a stop request came before it
                return done, True
            self.report.tally(outcome)
            if isinstance(outcome, NotStored):  # left in the mailbox for the next poll
                self.report.waiting = len(batch) - position
                return done, True
            done.append((item.location, self.app.filing(outcome.status)))
            if isinstance(outcome, Recorded) and self.report.new % PROGRESS_EVERY == 0:
                log.info("backlog: %s so far", self.report.summary())
        return done, False


def _known(app: App, source: str, batch: list[Fetched]) -> dict[str, str]:
    """The batch's mails already recorded (before a stop, or by another daemon): their status."""
    locations = [item.location for item in batch]
    with app.db.transaction() as session:
        rows = session.execute(
            select(Mail.location, Mail.status).where(
                Mail.source == source, Mail.location.in_(locations)
            )
        )
        return {location: status for location, status in rows}
