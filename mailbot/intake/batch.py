"""A fetched batch recorded in one transaction, with one commit.

First each mail is made ready outside the database: judged (the judging
processes may have stored its files), its raw bytes and attachments put in
the blob store. Then one transaction records them in order
(mailbot.intake.record.store) and the folder's cursor past them. A mail that
fails rolls the transaction back, and the mails before it are recorded again
without it, in a new transaction: the batch stops there, the mails before it
are committed, it and the mails after it stay in the mailbox for the next poll. When the daemon
holds a lease on the mailbox (mailbot.store.leases) the transaction confirms
it just before the commit, so a daemon that lost its lease records nothing
more. Only after the commit does anything leave the transaction: the log
lines of each mail, the on_mail callbacks, and then (mailbot.intake.poll)
the filing in the mailbox.

A mail that another daemon recorded meanwhile (another copy of it) fails on
the database's unique index: the batch is done again, the mail is looked up
again and becomes that mail's duplicate, as before.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from sqlalchemy.exc import IntegrityError

from mailbot.app import App
from mailbot.intake.index import Index
from mailbot.intake.record import (
    Arrival,
    Known,
    NotStored,
    Processed,
    Recorded,
    Stored,
    arrival_of,
    raw_mail,
    store,
    wanted,
)
from mailbot.judge.processes import Judged
from mailbot.service.faults import fault_point
from mailbot.sources.base import Fetched
from mailbot.store.blobs import StoreError
from mailbot.store.leases import Lease, LeaseLost
from mailbot.store.models import Mail

log = logging.getLogger(__name__)


@dataclass
class _Run:
    """What a batch made so far: each mail handled, in order, and how it ended."""

    source: str
    outcomes: list[tuple[Fetched, Processed]]
    stored: list[tuple[Fetched, Stored]]
    failure: tuple[Fetched, NotStored] | None = None


def record_batch(
    app: App,
    source: str,
    arrivals: Iterable[tuple[Fetched, Judged | Exception]],
    on_mail: Callable[[Mail], None] | None = None,
    lease: Lease | None = None,
) -> list[tuple[Fetched, Processed]]:
    """Record these fetched, judged mails in one transaction; what became of each, in order.

    The list ends early at the first mail that could not be stored (it is
    NotStored, with the exception) or where ``arrivals`` ended (a stop). A
    lost lease raises LeaseLost and records nothing of the batch.
    """
    run = _Run(source, [], [])
    ready = _prepare(app, run, arrivals)
    if ready:
        try:
            _record(app, run, ready, lease)
        except LeaseLost:
            raise
        except Exception as exc:  # the database: nothing of the batch is recorded
            log.debug("%s: the batch is not stored", source, exc_info=True)
            run.stored, run.failure = [], (ready[0].item, NotStored(exc))
    return _after_commit(run, on_mail)


def _prepare(
    app: App, run: _Run, arrivals: Iterable[tuple[Fetched, Judged | Exception]]
) -> list[Arrival]:
    """Each mail judged and its files in the blob store, up to the first that cannot be."""
    ready: list[Arrival] = []
    for item, judged in arrivals:
        fault_point("after_fetch")
        if isinstance(judged, StoreError):
            # The disk refused the judging process: the mail stays for the next poll.
            log.debug("%s %s: not stored", run.source, item.location, exc_info=judged)
            run.failure = (item, NotStored(judged))
            break
        try:
            arrival = arrival_of(app, run.source, item, judged)  # may read the mail back
            if arrival.stored:  # in the store: the daemon holds no copy while it records
                item.release(arrival.raw_sha256)
            else:  # the judging process did not write them
                with app.blobs.batch() as blobs:
                    blobs.put(raw_mail(app, item), arrival.raw_sha256)
                    for attachment in arrival.message.attachments:
                        blobs.put(attachment.data, attachment.sha256)
        except Exception as exc:  # the disk: the mail stays
            log.debug("%s %s: not stored", run.source, item.location, exc_info=True)
            run.failure = (item, NotStored(exc))
            break
        fault_point("after_store")
        ready.append(arrival)
    return _named_on_disk(app, run, ready)


def _named_on_disk(app: App, run: _Run, ready: list[Arrival]) -> list[Arrival]:
    """Flush the folders naming the ready mails' blobs, once for the batch, before the commit.

    The judging processes flush each file but leave its folder to this one
    flush (mailbot.store.blobs). If the disk refuses it, no mail is ready.
    """
    try:
        app.blobs.sync_folders(
            sha256
            for arrival in ready
            for sha256 in (arrival.raw_sha256, *(a.sha256 for a in arrival.message.attachments))
        )
    except StoreError as exc:
        log.debug("%s: the batch's folders cannot be flushed", run.source, exc_info=True)
        if ready:
            run.failure = (ready[0].item, NotStored(exc))
        return []
    return ready


def _record(app: App, run: _Run, ready: list[Arrival], lease: Lease | None) -> None:
    """Record the ready mails in one transaction; after a mail fails, the ones before it.

    A mail that fails rolls the transaction back; it is done again without
    that mail and the ones after it (a rare path: the common one has no
    savepoints to pay for). A mail another daemon recorded meanwhile is looked
    up once more instead: it becomes that mail's duplicate.
    """
    again: set[str] = set()
    while ready:
        failed = _transaction(app, run, ready, lease)
        if failed is None:
            return
        position, exc = failed
        item = ready[position].item
        if isinstance(exc, IntegrityError) and item.location not in again:
            # Another daemon recorded the same mail (another copy of it) meanwhile:
            # looking again finds it, and this copy becomes its duplicate.
            log.info(
                "%s %s: recorded elsewhere meanwhile; looking again", run.source, item.location
            )
            again.add(item.location)
            continue
        # The database or a fault of ours: the mail stays. The caller logs it, once
        # for a whole outage (Daemon._fault).
        log.debug("%s %s: not stored", run.source, item.location, exc_info=exc)
        run.failure, ready = (item, NotStored(exc)), ready[:position]


def _transaction(
    app: App, run: _Run, ready: list[Arrival], lease: Lease | None
) -> tuple[int, Exception] | None:
    """One transaction for the ready mails, one commit; the mail that failed, if one did.

    A failure that is no mail's (the commit, the lease's database) is raised.
    """
    failed: tuple[int, Exception] | None = None
    run.stored = []
    try:
        with app.db.transaction() as session:
            index = Index(run.source, app.call.id)
            index.load(session, [wanted(arrival) for arrival in ready])
            for position, arrival in enumerate(ready):
                try:
                    stored = store(app, session, arrival, index)
                    session.flush()  # its failure is its own, not the next mail's
                except LeaseLost:
                    raise
                except Exception as exc:
                    failed = (position, exc)
                    raise
                run.stored.append((arrival.item, stored))
            for item, _stored in run.stored:
                index.advance(session, item)
            if lease is not None:
                lease.confirm(session)
    except LeaseLost:
        raise
    except Exception:
        run.stored = []
        if failed is None:
            raise
    return failed


def _after_commit(
    run: _Run, on_mail: Callable[[Mail], None] | None
) -> list[tuple[Fetched, Processed]]:
    """What the log says of each committed mail, its on_mail call; then what became of each."""
    for item, stored in run.stored:
        fault_point("after_verdict")
        try:
            if on_mail is not None and stored.fresh:
                on_mail(stored.mail)
        except Exception as exc:  # recorded; filed by the next poll (mailbot.intake.filing)
            log.debug("%s %s: not filed", run.source, item.location, exc_info=True)
            run.outcomes.append((item, NotStored(exc)))
            return run.outcomes
        stored.tell()
        run.outcomes.append((item, _processed(stored)))
    if run.failure is not None:
        run.outcomes.append(run.failure)
    return run.outcomes


def _processed(stored: Stored) -> Processed:
    if not stored.fresh:
        return Known(stored.status)
    return Recorded(
        stored.mail.id,
        stored.status,
        duplicate=stored.mail.duplicate_of_id is not None,
        suppressed=stored.held is not None,
    )
