"""One fetched mail recorded in one transaction: the Mail row, duplicates, the queued answer.

The transaction records the mail, its verdict, its submission version, its
reply in the outbox and the folder's cursor together, after the raw bytes
and attachments are safely in the blob store. When the daemon holds a lease
on the mailbox (mailbot.store.leases), the transaction confirms it, so a
daemon that lost its lease records nothing more.

A mail is recorded and answered once however often it shows up. The very
same bytes with the same Message-ID at a new place are the same delivery
seen again (the server renumbered its mail): the record moves there. A
second delivery (sent again, or to the mailbox and to an address that
forwards to it) differs only in its trace headers and is known by its
content hash (mailbot.store.content): it gets a row of its own, marked as a
duplicate of the first, filed as ignored and never answered. The database
keeps one original per content hash and call, so two daemons racing on two
copies cannot both record one as new.

What became of the mail is returned as a value (:data:`Processed`): recorded
now, known already, or not stored with the reason.
"""

from __future__ import annotations

import dataclasses
import hashlib
import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from mailbot.app import App
from mailbot.domain import ReplyState
from mailbot.intake.filing import advance_cursor, filed_status
from mailbot.intake.submissions import MISSING, Outcome, judge_again, problems_json, record
from mailbot.intake.thread import answered_submission, judge_in_thread
from mailbot.judge.processes import Judged
from mailbot.judge.verdict import Problem, Severity, Status, Verdict
from mailbot.mail.message import Message
from mailbot.mail.parsing import parse_message
from mailbot.replies.bounced import mark_bounced
from mailbot.replies.context import reply_context
from mailbot.replies.outbox import Outgoing, queue_reply, supersede_waiting
from mailbot.service.faults import fault_point
from mailbot.sources.base import Fetched
from mailbot.store.blobs import StoreError
from mailbot.store.content import content_sha256
from mailbot.store.leases import Lease, LeaseLost
from mailbot.store.models import Attachment, Mail, Reply

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Arrival:
    """One fetched mail with its judgement: what one transaction records."""

    source: str  # the mailbox's name (Mailbox.name)
    item: Fetched
    message: Message
    verdict: Verdict
    raw_sha256: str
    content_sha256: str
    stored: bool = False  # the judging process put the raw mail and attachments in the store


@dataclass(frozen=True)
class Recorded:
    """Recorded by this poll: filed under ``status``; a duplicate is never answered.

    ``suppressed`` is set when its reply was recorded but not sent, over an
    hourly limit (mailbot.replies.limits).
    """

    mail_id: int
    status: str
    duplicate: bool = False
    suppressed: bool = False


@dataclass(frozen=True)
class Known:
    """Recorded before (an earlier poll, another daemon): filed under ``status``, nothing done."""

    status: str


@dataclass(frozen=True)
class NotStored:
    """Not stored (the disk, the database): left in the mailbox for the next poll."""

    reason: BaseException


# What process() made of one fetched mail.
Processed = Recorded | Known | NotStored


def process(
    app: App,
    source: str,
    item: Fetched,
    judged: Judged | Exception,
    on_mail: Callable[[Mail], None] | None = None,
    lease: Lease | None = None,
) -> Processed:
    """Record one fetched mail, judged already (Judges.judge_all); say what became of it.

    A mail that cannot be stored is NotStored with the exception, for the
    caller to log once however often the mail is tried again. A lost lease
    raises LeaseLost.
    """
    fault_point("after_fetch")
    if isinstance(judged, StoreError):
        # The disk refused the judging process: the mail stays for the next poll.
        log.debug("%s %s: not stored", source, item.location, exc_info=judged)
        return NotStored(judged)
    try:
        arrival = _arrival(app, source, item, judged)  # may read the mail back from the store
        if arrival.stored:  # in the store: the daemon holds no copy while it records
            item.release(arrival.raw_sha256)
        else:  # the judging process did not write them
            with app.blobs.batch() as batch:
                batch.put(_raw_mail(app, item), arrival.raw_sha256)
                for attachment in arrival.message.attachments:
                    batch.put(attachment.data, attachment.sha256)
        fault_point("after_store")
        mail, fresh, status, held = _record(app, arrival, lease)
        fault_point("after_verdict")
        if on_mail is not None and fresh:
            on_mail(mail)
    except LeaseLost:
        raise
    except Exception as exc:  # the disk, the database or a fault of ours: the mail stays
        # The caller logs it, once for a whole outage (Daemon._fault).
        log.debug("%s %s: not stored", source, item.location, exc_info=True)
        return NotStored(exc)
    if not fresh:
        return Known(status)
    if held is not None:
        # After the commit: one line per suppressed reply, never one for a rolled-back try.
        log.warning(
            "%s %s: mail %s answered but its reply is suppressed: %s",
            item.folder,
            item.location,
            mail.id,
            held,
        )
    return Recorded(
        mail.id,
        status,
        duplicate=mail.duplicate_of_id is not None,
        suppressed=held is not None,
    )


def _arrival(app: App, source: str, item: Fetched, judged: Judged | Exception) -> Arrival:
    """The mail with its judgement; a mail that could not be judged is kept for a person."""
    if not isinstance(judged, Exception):
        return Arrival(
            source,
            item,
            judged.message,
            judged.verdict,
            judged.raw_sha256,
            judged.content_sha256,
            judged.stored,
        )
    # The per-mail boundary: keep the mail, let a person read it.
    log.error(
        "%s %s: cannot judge this mail; recorded for a person",
        source,
        item.location,
        exc_info=judged,
    )
    raw = _raw_mail(app, item)
    return Arrival(
        source,
        item,
        parse_message(b""),
        _unjudged(app, item),
        hashlib.sha256(raw).hexdigest(),
        content_sha256(raw),
    )


def _raw_mail(app: App, item: Fetched) -> bytes:
    """The mail's raw bytes: as fetched, or read back from the store once released."""
    return item.raw if item.stored_as is None else app.blobs.get(item.stored_as)


def _unjudged(app: App, item: Fetched) -> Verdict:
    problem = Problem(
        "unjudged",
        Severity.INFO,
        "mailbot 无法判断这封邮件，需由工作人员阅读。",
        "mailbot could not judge this mail; a person must read it.",
    )
    return Verdict(Status.IGNORED, app.call.local(item.received_at), None, None, (problem,))


def _record(app: App, arrival: Arrival, lease: Lease | None) -> tuple[Mail, bool, str, str | None]:
    """One transaction: confirm the lease, record the mail; True when it is new.

    The status returned is the one the mail is filed and counted under; last,
    why its reply was suppressed, if it was.
    """
    for attempt in range(2):
        try:
            with app.db.transaction() as session:
                if lease is not None:
                    lease.confirm(session)
                mail, fresh, held = _store(app, session, arrival)
                return mail, fresh, filed_status(session, mail), held
        except IntegrityError:
            # Another daemon recorded the same mail (another copy of it) meanwhile:
            # looking again finds it, and this copy becomes its duplicate.
            if attempt:
                raise
            log.info(
                "%s %s: recorded elsewhere meanwhile; looking again",
                arrival.source,
                arrival.item.location,
            )
    raise AssertionError("unreachable")


def _store(app: App, session: Session, arrival: Arrival) -> tuple[Mail, bool, str | None]:
    """Record the mail unless it is already recorded; True when it is new.

    Last, why its reply was suppressed (over an hourly limit), if it was.
    """
    advance_cursor(session, arrival.source, arrival.item)
    seen = _seen(session, arrival)
    if seen is not None:
        return seen, False, None
    # Another delivery of a mail already recorded (the copies differ in their trace
    # headers alone): a row of its own, so every copy is accounted for; never answered.
    original = session.scalars(
        select(Mail).where(
            Mail.call_id == app.call.id,
            Mail.content_sha256 == arrival.content_sha256,
            Mail.duplicate_of_id.is_(None),
        )
    ).first()
    mail = _mail_row(app, arrival, original)
    session.add(mail)
    session.flush()
    if original is not None:
        item, message = arrival.item, arrival.message
        log.info(
            "%s %s from %s: another copy of mail %s (%s); recorded as its duplicate, not answered",
            item.folder,
            item.location,
            message.sender or "?",
            original.id,
            message.message_id or "no Message-ID",
        )
        return mail, True, None
    reply = _answer(app, session, mail, arrival)
    held = reply.last_error if reply is not None and reply.state == ReplyState.SUPPRESSED else None
    return mail, True, held


def _seen(session: Session, arrival: Arrival) -> Mail | None:
    """The mail's record when this delivery is recorded already, here or at an old place.

    The same delivery seen again at a new place (the server renumbered its mail,
    under a new UIDVALIDITY or not, or the same file came back) has the very same
    bytes and Message-ID: the record moves there, and nothing is processed twice.
    """
    source, item, message_id = arrival.source, arrival.item, arrival.message.message_id
    here = session.scalar(select(Mail).where(Mail.source == source, Mail.location == item.location))
    if here is not None or message_id is None:
        return here
    twin = session.scalars(
        select(Mail)
        .where(
            Mail.source == source,
            Mail.raw_sha256 == arrival.raw_sha256,
            Mail.message_id == message_id,
        )
        .order_by(Mail.id)
        .limit(1)
    ).first()
    if twin is not None:
        log.info("%s %s: already recorded as mail %s", source, item.location, twin.id)
        twin.location, twin.uid, twin.uidvalidity = item.location, item.uid, item.uidvalidity
        twin.folder, twin.settled = item.folder, False
    return twin


def _mail_row(app: App, arrival: Arrival, original: Mail | None) -> Mail:
    """The new Mail row; a copy of ``original`` is ignored and says whose duplicate it is."""
    item, message, verdict = arrival.item, arrival.message, arrival.verdict
    if original is not None:
        verdict = dataclasses.replace(
            verdict, status=Status.IGNORED, problems=(_duplicate(original),)
        )
    return Mail(
        call_id=app.call.id,
        source=arrival.source,
        folder=item.folder,
        location=item.location,
        uid=item.uid,
        uidvalidity=item.uidvalidity,
        message_id=message.message_id,
        raw_sha256=arrival.raw_sha256,
        content_sha256=arrival.content_sha256,
        duplicate_of_id=original.id if original is not None else None,
        raw_size=item.size,
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
        seal=verdict.seal,
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


def _answer(app: App, session: Session, mail: Mail, arrival: Arrival) -> Reply | None:
    """Record the submission's version, queue the answer, mark a bounce of ours; log the mail."""
    item, message, verdict = arrival.item, arrival.message, arrival.verdict
    thread = answered_submission(session, app.call.id, message)
    if thread is not None:
        message, verdict = judge_in_thread(app, mail, message, verdict, thread)
        judge_again(mail, verdict)
    outcome = record(session, app.call, app.blobs, mail, message, verdict, thread=thread)
    if outcome.version is not None and outcome.submission is not None:
        # The letter to an earlier mail still waiting out the settling window says less
        # than this mail's will: it is kept back.
        supersede_waiting(session, outcome.submission.id, mail.id, app.clock())
    reply = queue_answer(app, session, mail, message, outcome)
    mark_bounced(session, app.call.id, mail, message, outcome.verdict, lambda: _raw_mail(app, item))
    log.info(
        "%s %s from %s %r: %s%s",
        item.folder,
        item.location,
        message.sender or "?",
        message.subject[:80],
        outcome.verdict.status,
        f" {outcome.submission.reference}" if outcome.submission else "",
    )
    return reply


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
) -> Reply | None:
    """Queue the reply that tells the applicant the verdict (none for an ignored mail)."""
    status = outcome.verdict.status
    recipient = message.reply_to or message.sender
    if status is Status.IGNORED or recipient is None:
        return None
    context = reply_context(app.call, message, outcome)
    subject, body = app.renderer.render(str(status), context)
    now = app.clock()
    return queue_reply(
        session,
        Outgoing(
            to_address=recipient,
            template=str(status),
            subject=subject,
            body=body,
            in_reply_to=message.message_id,
            references=message.references,
            mail_id=mail.id,
            submission_id=outcome.submission.id if outcome.submission else None,
            not_before=_settled_at(app, outcome),
        ),
        settings=app.settings.replies,
        call=app.call,
        now=now,
    )


def _settled_at(app: App, outcome: Outcome) -> datetime | None:
    """When a letter missing the Word or the PDF may go: the mail's receipt plus the window.

    A second mail with the other file, received meanwhile, is judged with this
    one and its letter supersedes this one. Other letters never wait.
    """
    window = app.settings.intake.settle_window
    verdict = outcome.verdict
    if not window or verdict.status is not Status.NEEDS_CORRECTION or outcome.submission is None:
        return None
    if not MISSING & set(verdict.codes()):
        return None
    return verdict.received_at.astimezone(UTC) + timedelta(seconds=window)
