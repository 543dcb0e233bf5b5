"""The intake: fetch, parse, judge, store, queue the reply, file the mail.

One transaction per mail records the mail, its verdict, its submission
version, its reply in the outbox and the folder's cursor together, after the
raw bytes and attachments are safely in the blob store. Only then is the
mail moved or flagged in the mailbox, so a crash at any point loses nothing
and a rerun finds nothing to do twice.

A mail is recorded and answered once however often it shows up. The very
same bytes with the same Message-ID at a new place are the same delivery
seen again (the server renumbered its mail): the record moves there. A
second delivery (sent again, or to the mailbox and to an address that
forwards to it) differs only in its trace headers and is known by its
content hash (mailbot.store.content): it gets a row of its own, marked as a
duplicate of the first, filed as ignored and never answered. The database
keeps one original per content hash and call, so two daemons racing on two
copies cannot both record one as new.

When the daemon holds a lease on the mailbox (mailbot.store.leases), every
mail's transaction confirms it, so a daemon that lost its lease records
nothing more.

A mail that cannot be stored (the disk, the database) is left where it is in
the mailbox, neither moved nor flagged; the poll stops and says why in its
report, and the caller logs it once and tries again later.
"""

from __future__ import annotations

import dataclasses
import hashlib
import logging
import threading
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from sqlalchemy import Select, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from mailbot.app import App
from mailbot.intake.submissions import Outcome, problems_json, record
from mailbot.judge.processes import Judged
from mailbot.judge.verdict import Problem, Severity, Status, Verdict
from mailbot.ledger.counting import count
from mailbot.mail.message import Message
from mailbot.mail.parsing import parse_message
from mailbot.replies.bounced import mark_bounced
from mailbot.replies.context import reply_context
from mailbot.replies.outbox import queue_reply
from mailbot.service.faults import fault_point
from mailbot.sources.base import Cursor, Fetched, Mailbox
from mailbot.store.blobs import StoreError
from mailbot.store.content import content_sha256
from mailbot.store.leases import Lease, LeaseLost
from mailbot.store.models import Attachment, FolderState, Mail, Version, utcnow

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

    def summary(self) -> str:
        parts = ", ".join(f"{k} {v}" for k, v in sorted(self.statuses.items()))
        duplicates = f", {count(self.duplicates, 'duplicate')}" if self.duplicates else ""
        return (
            f"{self.new} new ({parts or 'none'}), {self.known} already recorded, "
            f"{self.failed} failed{duplicates}"
        )


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
    report = PollReport()
    for folder in mailbox.folders():
        settle_pending(app, mailbox, folder)
        cursor = load_cursor(app, mailbox.name, folder)
        now_validity = mailbox.uidvalidity(folder)
        if cursor.uidvalidity is not None and now_validity != cursor.uidvalidity:
            log.warning(
                "%s %s: UIDVALIDITY changed from %s to %s; resynchronising by Message-ID and hash",
                mailbox.name,
                folder,
                cursor.uidvalidity,
                now_validity,
            )
        for batch in mailbox.fetch_new(folder, cursor):
            done: list[tuple[str, str]] = []
            halted = False
            known = _known(app, mailbox.name, batch)
            fresh = [item for item in batch if item.location not in known]
            # The judging processes work ahead while each mail before is stored.
            judged = app.judges.judge_all((item.raw, item.received_at) for item in fresh)
            try:
                for position, item in enumerate(batch):
                    if stop is not None and stop.is_set():
                        halted = True
                        break
                    if item.location in known:
                        status: str | None = known[item.location]
                        report.known += 1
                    else:
                        outcome = next(judged)
                        status = process(app, mailbox.name, item, outcome, report, on_mail, lease)
                    if status is None:  # not stored: leave it in the mailbox for the next poll
                        report.waiting = len(batch) - position
                        halted = True
                        break
                    done.append((item.location, app.target_folder(status)))
                    if report.new and report.new % PROGRESS_EVERY == 0 and status:
                        log.info("backlog: %s so far", report.summary())
            finally:
                judged.close()
            if done:
                mailbox.settle(folder, done)
                mark_settled(app, mailbox.name, done)
            if halted:
                return report
    return report


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


def process(
    app: App,
    source: str,
    item: Fetched,
    judged: Judged | Exception,
    report: PollReport,
    on_mail: Callable[[Mail], None] | None = None,
    lease: Lease | None = None,
) -> str | None:
    """Record one fetched mail, judged already (Judges.judge_all); return its status.

    Returns None when it could not be stored: ``report.fault`` then holds
    the exception, for the caller to log once however often the mail is
    tried again.
    """
    fault_point("after_fetch")
    if isinstance(judged, StoreError):
        # The disk refused the judging process: the mail stays for the next poll.
        log.debug("%s %s: not stored", source, item.location, exc_info=judged)
        report.failed += 1
        report.fault = judged
        return None
    stored = False
    if isinstance(judged, Exception):
        # The per-mail boundary: keep the mail, let a person read it.
        log.error(
            "%s %s: cannot judge this mail; recorded for a person",
            source,
            item.location,
            exc_info=judged,
        )
        raw_sha256 = hashlib.sha256(item.raw).hexdigest()
        content = content_sha256(item.raw)
        message = parse_message(b"")
        verdict = _unjudged(app, item)
    else:
        message, verdict, stored = judged.message, judged.verdict, judged.stored
        raw_sha256, content = judged.raw_sha256, judged.content_sha256
    try:
        if not stored:  # else the judging process wrote them
            app.blobs.put(item.raw, raw_sha256)
            for attachment in message.attachments:
                app.blobs.put(attachment.data, attachment.sha256)
        fault_point("after_store")
        mail, fresh, status = _record(
            app, source, item, raw_sha256, content, message, verdict, lease
        )
        fault_point("after_verdict")
        if on_mail is not None and fresh:
            on_mail(mail)
    except LeaseLost:
        raise
    except Exception as exc:  # the disk, the database or a fault of ours: the mail stays
        # The caller logs it, once for a whole outage (Daemon._fault).
        log.debug("%s %s: not stored", source, item.location, exc_info=True)
        report.failed += 1
        report.fault = exc
        return None
    if not fresh:
        report.known += 1
        return status
    if mail.duplicate_of_id is not None:
        report.duplicates += 1
    report.new += 1
    report.statuses[status] += 1
    return status


def _unjudged(app: App, item: Fetched) -> Verdict:
    problem = Problem(
        "unjudged",
        Severity.INFO,
        "mailbot 无法判断这封邮件，需由工作人员阅读。",
        "mailbot could not judge this mail; a person must read it.",
    )
    return Verdict(Status.IGNORED, app.call.local(item.received_at), None, None, (problem,))


def _record(
    app: App,
    source: str,
    item: Fetched,
    raw_sha256: str,
    content: str,
    message: Message,
    verdict: Verdict,
    lease: Lease | None,
) -> tuple[Mail, bool, str]:
    """One transaction: confirm the lease, record the mail; True when it is new.

    The status returned is the one the mail is filed and counted under.
    """
    for attempt in range(2):
        try:
            with app.db.transaction() as session:
                if lease is not None:
                    lease.confirm(session)
                mail, fresh = _store(
                    app, session, source, item, raw_sha256, content, message, verdict
                )
                return mail, fresh, _filed_status(session, mail)
        except IntegrityError:
            # Another daemon recorded the same mail (another copy of it) meanwhile:
            # looking again finds it, and this copy becomes its duplicate.
            if attempt:
                raise
            log.info("%s %s: recorded elsewhere meanwhile; looking again", source, item.location)
    raise AssertionError("unreachable")


def _store(
    app: App,
    session: Session,
    source: str,
    item: Fetched,
    raw_sha256: str,
    content: str,
    message: Message,
    verdict: Verdict,
) -> tuple[Mail, bool]:
    """Record the mail unless it is already recorded; True when it is new."""
    _advance_cursor(session, source, item)
    here = session.scalar(select(Mail).where(Mail.source == source, Mail.location == item.location))
    if here is not None:
        return here, False
    # The same delivery seen again at a new place (the server renumbered its mail,
    # under a new UIDVALIDITY or not, or the same file came back): the very same
    # bytes and Message-ID. The record moves there; nothing is processed twice.
    if message.message_id is not None:
        twin = session.scalars(
            select(Mail)
            .where(
                Mail.source == source,
                Mail.raw_sha256 == raw_sha256,
                Mail.message_id == message.message_id,
            )
            .order_by(Mail.id)
            .limit(1)
        ).first()
        if twin is not None:
            log.info("%s %s: already recorded as mail %s", source, item.location, twin.id)
            twin.location, twin.uid, twin.uidvalidity = item.location, item.uid, item.uidvalidity
            twin.folder, twin.settled = item.folder, False
            return twin, False
    # Another delivery of a mail already recorded (the copies differ in their trace
    # headers alone): a row of its own, so every copy is accounted for; never answered.
    original = session.scalars(
        select(Mail).where(
            Mail.call_id == app.call.id,
            Mail.content_sha256 == content,
            Mail.duplicate_of_id.is_(None),
        )
    ).first()
    if original is not None:
        verdict = dataclasses.replace(
            verdict, status=Status.IGNORED, problems=(_duplicate(original),)
        )
    mail = Mail(
        call_id=app.call.id,
        source=source,
        folder=item.folder,
        location=item.location,
        uid=item.uid,
        uidvalidity=item.uidvalidity,
        message_id=message.message_id,
        raw_sha256=raw_sha256,
        content_sha256=content,
        duplicate_of_id=original.id if original is not None else None,
        raw_size=len(item.raw),
        sender=message.sender,
        sender_name=message.sender_name,
        reply_to=message.reply_to,
        subject=message.subject,
        received_at=item.received_at,
        status=str(verdict.status),
        problems=problems_json(verdict),
        institution=verdict.institution,
        pi=verdict.pi,
        form=verdict.form,
        pdf_pages=verdict.pdf_pages,
        attachments=[
            Attachment(
                filename=a.filename,
                content_type=a.content_type,
                size=a.size,
                sha256=a.sha256,
                role=str(role.role),
            )
            for a, role in zip(message.attachments, verdict.attachments, strict=True)
        ],
    )
    session.add(mail)
    session.flush()
    if original is not None:
        log.info(
            "%s %s from %s: another copy of mail %s (%s); recorded as its duplicate, not answered",
            item.folder,
            item.location,
            message.sender or "?",
            original.id,
            message.message_id or "no Message-ID",
        )
        return mail, True
    outcome = record(session, app.call, app.blobs, mail, message, verdict)
    queue_answer(app, session, mail, message, outcome)
    mark_bounced(session, app.call.id, mail, message, outcome.verdict, item.raw)
    log.info(
        "%s %s from %s %r: %s%s",
        item.folder,
        item.location,
        message.sender or "?",
        message.subject[:80],
        outcome.verdict.status,
        f" {outcome.submission.reference}" if outcome.submission else "",
    )
    return mail, True


def _duplicate(original: Mail) -> Problem:
    return Problem(
        "duplicate",
        Severity.INFO,
        f"与已记录的邮件 #{original.id} 相同（同一 Message-ID 和内容），不再重复处理和答复。",
        f"The same mail as mail #{original.id}, already recorded (same Message-ID and "
        "content): not processed or answered again.",
    )


def queue_answer(
    app: App, session: Session, mail: Mail, message: Message, outcome: Outcome
) -> None:
    status = outcome.verdict.status
    recipient = message.reply_to or message.sender
    if status is Status.IGNORED or recipient is None:
        return
    context = reply_context(app.call, message, outcome)
    subject, body = app.renderer.render(str(status), context)
    queue_reply(
        session,
        settings=app.settings.replies,
        call=app.call,
        to_address=recipient,
        template=str(status),
        subject=subject,
        body=body,
        in_reply_to=message.message_id,
        references=message.references,
        mail_id=mail.id,
        submission_id=outcome.submission.id if outcome.submission else None,
        now=utcnow(),
    )


def _advance_cursor(session: Session, source: str, item: Fetched) -> None:
    if item.uid is None:
        return
    state = session.scalar(
        select(FolderState).where(FolderState.source == source, FolderState.folder == item.folder)
    )
    if state is None:
        state = FolderState(source=source, folder=item.folder, uidvalidity=None, last_uid=0)
        session.add(state)
    if state.uidvalidity != item.uidvalidity:
        state.uidvalidity, state.last_uid = item.uidvalidity, item.uid
    else:
        state.last_uid = max(state.last_uid, item.uid)


def load_cursor(app: App, source: str, folder: str) -> Cursor:
    with app.db.transaction() as session:
        state = session.scalar(
            select(FolderState).where(FolderState.source == source, FolderState.folder == folder)
        )
        return Cursor(state.uidvalidity, state.last_uid) if state else Cursor()


def mark_settled(app: App, source: str, done: list[tuple[str, str]]) -> None:
    """Record that these mails were filed: one UPDATE per target folder, in one transaction."""
    by_target: dict[str, list[str]] = {}
    for location, target in done:
        by_target.setdefault(target, []).append(location)
    with app.db.transaction() as session:
        for target, locations in by_target.items():
            session.execute(
                update(Mail)
                .where(Mail.source == source, Mail.location.in_(locations))
                .values(settled=True, settled_folder=target or None)
                .execution_options(synchronize_session=False)
            )


def _filed_status(session: Session, mail: Mail) -> str:
    """The status a mail is filed under: for a completion, the submission's resulting one.

    A stamped PDF sent on its own is, by itself, a mail missing its Word file; taken
    with the version it completes it may make the submission accepted, and is filed so.
    """
    completed = session.scalar(
        select(Version.status).where(Version.mail_id == mail.id, Version.kind == "completion")
    )
    return completed or mail.status


def filed_statuses(
    session: Session, source: str, rows: Sequence[tuple[str, str]]
) -> list[tuple[str, str]]:
    """(location, status) rows with each completion's status put in place of its mail's."""
    locations = [location for location, _status in rows]
    completed = {
        location: status
        for location, status in session.execute(
            select(Mail.location, Version.status)
            .join(Version, Version.mail_id == Mail.id)
            .where(
                Mail.source == source,
                Mail.location.in_(locations),
                Version.kind == "completion",
            )
        )
    }
    return [(location, completed.get(location, status)) for location, status in rows]


def unsettled(source: str, folder: str) -> Select[str, str]:
    """The mail of a folder recorded but not filed; every poll asks (index ix_mails_unsettled)."""
    return select(Mail.location, Mail.status).where(
        Mail.source == source, Mail.folder == folder, Mail.settled.is_(False)
    )


def settle_pending(app: App, mailbox: Mailbox, folder: str) -> None:
    """File mail that was recorded but not yet moved (the process stopped in between)."""
    with app.db.transaction() as session:
        rows = [
            (location, status)
            for location, status in session.execute(unsettled(mailbox.name, folder))
        ]
        if rows:
            rows = filed_statuses(session, mailbox.name, rows)
    if not rows:
        return
    done = [(location, app.target_folder(status)) for location, status in rows]
    log.info("%s %s: filing %d mails recorded before a stop", mailbox.name, folder, len(done))
    mailbox.settle(folder, done)
    mark_settled(app, mailbox.name, done)
