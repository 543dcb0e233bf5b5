"""One fetched mail recorded in its batch's transaction: the Mail row, duplicates, the answer.

The batch's transaction (mailbot.intake.batch) records each mail, its
verdict, its submission version, its reply in the outbox and the folder's
cursor together, after the raw bytes and attachments are safely in the blob
store; what this module does for one mail is undone alone when it fails.

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
now, known already, or not stored with the reason. What the log says of it
waits for the commit (:class:`Stored`).
"""

from __future__ import annotations

import dataclasses
import hashlib
import logging
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from sqlalchemy import insert
from sqlalchemy.orm import Session

from mailbot.app import App
from mailbot.domain import ReplyState
from mailbot.intake.filing import filed_status
from mailbot.intake.index import Index, Wanted
from mailbot.intake.submissions import MISSING, Outcome, judge_again, problems_json, record
from mailbot.intake.thread import answered_submission, judge_in_thread
from mailbot.judge.processes import Judged
from mailbot.judge.verdict import Problem, Severity, Status, Verdict
from mailbot.mail.message import Message
from mailbot.mail.parsing import parse_message
from mailbot.replies.bounced import mark_bounced
from mailbot.replies.context import reply_context
from mailbot.replies.outbox import Outgoing, queue_reply, supersede_waiting
from mailbot.sources.base import Fetched
from mailbot.store.content import content_sha256
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


# What the batch made of one fetched mail (mailbot.intake.batch).
Processed = Recorded | Known | NotStored


def arrival_of(app: App, source: str, item: Fetched, judged: Judged | Exception) -> Arrival:
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
    raw = raw_mail(app, item)
    return Arrival(
        source,
        item,
        parse_message(b""),
        _unjudged(app, item),
        hashlib.sha256(raw).hexdigest(),
        content_sha256(raw),
    )


def raw_mail(app: App, item: Fetched) -> bytes:
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


# A log line and its arguments, logged after the commit.
Line = tuple[str, tuple[object, ...]]


@dataclass
class Stored:
    """What recording one mail in the batch's transaction made of it.

    ``status`` is the one the mail is filed and counted under; ``held`` why
    its reply was suppressed, if it was; ``lines`` what the log says of it,
    once the batch is committed (never a line for a rolled-back try).
    """

    mail: Mail
    fresh: bool
    status: str
    held: str | None = None
    lines: list[Line] = field(default_factory=list)

    def tell(self) -> None:
        """Log what became of the mail: call it after the commit."""
        for text, args in self.lines:
            log.info(text, *args)
        if self.held is not None:
            item = self.mail
            log.warning(
                "%s %s: mail %s answered but its reply is suppressed: %s",
                item.folder,
                item.location,
                item.id,
                self.held,
            )


def wanted(arrival: Arrival) -> Wanted:
    """What the batch's index looks the mail up by."""
    return Wanted(
        arrival.item, arrival.message.message_id, arrival.raw_sha256, arrival.content_sha256
    )


def store(app: App, session: Session, arrival: Arrival, index: Index) -> Stored:
    """Record the mail unless it is already recorded (``index`` knows the batch's rows).

    The caller moves the folder's cursor past it (Index.advance), once for the batch.
    """
    seen = _seen(index, arrival)
    if seen is not None:
        return Stored(seen[0], False, filed_status(session, seen[0]), lines=seen[1])
    # Another delivery of a mail already recorded (the copies differ in their trace
    # headers alone): a row of its own, so every copy is accounted for; never answered.
    original = index.originals.get(arrival.content_sha256)
    mail = _mail_row(app, arrival, original)
    session.add(mail)
    session.flush()
    _add_attachments(session, mail, arrival)
    if original is not None:
        item, message = arrival.item, arrival.message
        index.add(mail)
        line: Line = (
            "%s %s from %s: another copy of mail %s (%s); recorded as its duplicate, not answered",
            (
                item.folder,
                item.location,
                message.sender or "?",
                original.id,
                message.message_id or "no Message-ID",
            ),
        )
        return Stored(mail, True, mail.status, lines=[line])
    reply, outcome, line = _answer(app, session, mail, arrival)
    index.add(mail)
    held = reply.last_error if reply is not None and reply.state == ReplyState.SUPPRESSED else None
    completed = outcome.version is not None and outcome.kind == "completion"
    # A completion is filed under the status it gave the submission (mailbot.intake.filing).
    status = outcome.version.status if completed and outcome.version else mail.status
    return Stored(mail, True, status, held, [line])


def _seen(index: Index, arrival: Arrival) -> tuple[Mail, list[Line]] | None:
    """The mail's record when this delivery is recorded already, here or at an old place.

    The same delivery seen again at a new place (the server renumbered its mail,
    under a new UIDVALIDITY or not, or the same file came back) has the very same
    bytes and Message-ID: the record moves there, and nothing is processed twice.
    """
    source, item, message_id = arrival.source, arrival.item, arrival.message.message_id
    here = index.at.get(item.location)
    if here is not None:
        return here, []
    if message_id is None:
        return None
    twin = index.twins.get((arrival.raw_sha256, message_id))
    if twin is None:
        return None
    line = ("%s %s: already recorded as mail %s", (source, item.location, twin.id))
    old = twin.location
    twin.location, twin.uid, twin.uidvalidity = item.location, item.uid, item.uidvalidity
    twin.folder, twin.settled = item.folder, False
    index.moved(twin, old)
    return twin, [line]


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
    )


def _add_attachments(session: Session, mail: Mail, arrival: Arrival) -> None:
    """The mail's attachment rows, in one statement (mail.attachments reads them if asked)."""
    message, verdict = arrival.message, arrival.verdict
    rows = [
        {
            "mail_id": mail.id,
            "filename": a.filename,
            "content_type": a.content_type,
            "size": a.size,
            "sha256": a.sha256,
            "role": str(role.role),
        }
        for a, role in zip(message.attachments, verdict.attachments, strict=True)
    ]
    if rows:
        session.execute(insert(Attachment), rows)


def _answer(
    app: App, session: Session, mail: Mail, arrival: Arrival
) -> tuple[Reply | None, Outcome, Line]:
    """Record the submission's version, queue the answer, mark a bounce of ours; say the mail."""
    item, message, verdict = arrival.item, arrival.message, arrival.verdict
    thread = answered_submission(session, app.call.id, message)
    if thread is not None:
        message, verdict = judge_in_thread(app, mail, message, verdict, thread)
        judge_again(mail, verdict)
    outcome = record(session, app.call, app.blobs, mail, message, verdict, thread=thread)
    if outcome.version is not None and outcome.submission is not None and not outcome.created:
        # The letter to an earlier mail still waiting out the settling window says less
        # than this mail's will: it is kept back. (A submission this mail made has none.)
        supersede_waiting(session, outcome.submission.id, mail.id, app.clock())
    reply = queue_answer(app, session, mail, message, outcome)
    mark_bounced(session, app.call.id, mail, message, outcome.verdict, lambda: raw_mail(app, item))
    line = (
        "%s %s from %s %r: %s%s",
        (
            item.folder,
            item.location,
            message.sender or "?",
            message.subject[:80],
            outcome.verdict.status,
            f" {outcome.submission.reference}" if outcome.submission else "",
        ),
    )
    return reply, outcome, line


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
