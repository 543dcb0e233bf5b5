"""One submission or one mail in full: versions, files, replies with their bounces, the trail."""

from __future__ import annotations

import email
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import or_, select
from sqlalchemy.orm import Session

from mailbot.calls import Call
from mailbot.ledger.attention import codes, may_have_code
from mailbot.ledger.facts import Facts, facts
from mailbot.ledger.submission import find_submission, mail_records
from mailbot.replies.outbox import reply_body
from mailbot.store.blobs import BlobStore
from mailbot.store.models import AuditEvent, Mail, Reply, Submission, Version
from mailbot.web.actions import replies_of
from mailbot.web.overview import current_version

# How mailbot names its replies (mailbot.replies.outbox), as a bounce quotes them.
_MAILBOT_ID = re.compile(rb"<mailbot\.[0-9a-f]{32}@[^<>\s]+>")


def _reply_ids(raw: bytes) -> set[str]:
    """The Message-IDs of mailbot's replies a bounce quotes, in any part, however encoded."""
    found = set(_MAILBOT_ID.findall(raw))
    for part in email.message_from_bytes(raw).walk():
        payload = None if part.is_multipart() else part.get_payload(decode=True)
        if isinstance(payload, bytes):
            found.update(_MAILBOT_ID.findall(payload))
    return {value.decode("ascii") for value in found}


def bounced_replies(session: Session, blobs: BlobStore, mail: Mail) -> list[Reply]:
    """The replies a bounce names by their Message-ID."""
    if "bounce" not in codes(mail.problems) or not blobs.exists(mail.raw_sha256):
        return []
    ids = _reply_ids(blobs.get(mail.raw_sha256))
    if not ids:
        return []
    return list(session.scalars(select(Reply).where(Reply.message_id.in_(ids))))


def bounces_by_reply(
    session: Session, call: Call, blobs: BlobStore, replies: Sequence[Reply]
) -> dict[int, list[Mail]]:
    """For each reply, the bounces that came back for it.

    A bounce names the reply by its Message-ID when the bouncing server
    quotes the headers; otherwise by the address it failed to reach, after
    the reply was queued.
    """
    found: dict[int, list[Mail]] = {}
    if not replies:
        return found
    # Read the candidates' few columns first: bounces among thousands of ignored mails.
    wanted = [
        mail_id
        for mail_id, sha256, problems in session.execute(
            select(Mail.id, Mail.raw_sha256, Mail.problems).where(
                Mail.call_id == call.id, Mail.status == "ignored", may_have_code("bounce")
            )
        )
        if "bounce" in codes(problems) and blobs.exists(sha256)
    ]
    candidates = (
        session.scalars(select(Mail).where(Mail.id.in_(wanted)).order_by(Mail.id)).all()
        if wanted
        else []
    )
    for mail in candidates:
        raw = blobs.get(mail.raw_sha256)
        ids = _reply_ids(raw)
        lowered = raw.lower()
        for reply in replies:
            by_id = reply.message_id in ids
            by_address = (
                not ids
                and reply.to_address.lower().encode() in lowered
                and mail.received_at >= reply.queued_at
            )
            if by_id or by_address:
                found.setdefault(reply.id, []).append(mail)
    return found


@dataclass
class ReplyEntry:
    reply: Reply
    body: str
    bounces: list[Mail] = field(default_factory=list)


@dataclass
class MailEntry:
    mail: Mail
    version: Version | None
    problems: list[Any]
    files: list[Any]
    replies: list[ReplyEntry]


@dataclass
class SubmissionPage:
    submission: Submission
    facts: Facts
    entries: list[MailEntry]  # newest first
    letters: list[ReplyEntry]  # written at the desk, tied to no mail
    events: list[AuditEvent]
    last_reply: Reply | None


def submission_page(
    session: Session, call: Call, blobs: BlobStore, reference: str
) -> SubmissionPage | None:
    submission = find_submission(session, call, reference)
    if submission is None:
        return None
    replies = replies_of(session, submission)
    bounces = bounces_by_reply(session, call, blobs, replies)
    entries_of: dict[int | None, list[ReplyEntry]] = {}
    for reply in replies:
        entry = ReplyEntry(reply, reply_body(reply.raw), bounces.get(reply.id, []))
        entries_of.setdefault(reply.mail_id, []).append(entry)
    entries = [
        MailEntry(
            mail=record.mail,
            version=record.version,
            problems=record.problems,
            files=record.files,
            replies=entries_of.get(record.mail.id, []),
        )
        for record in reversed(mail_records(submission))
    ]
    mail_ids = [mail.id for mail in submission.mails]
    events = session.scalars(
        select(AuditEvent)
        .where(or_(AuditEvent.submission_id == submission.id, AuditEvent.mail_id.in_(mail_ids)))
        .order_by(AuditEvent.at.desc(), AuditEvent.id.desc())
    ).all()
    version = current_version(submission)
    return SubmissionPage(
        submission=submission,
        facts=facts(version.form, version.pdf_pages, version.seal) if version else Facts(),
        entries=entries,
        letters=entries_of.get(None, []),
        events=list(events),
        last_reply=replies[-1] if replies else None,
    )


def mail_events(session: Session, mail: Mail) -> list[AuditEvent]:
    return list(
        session.scalars(
            select(AuditEvent)
            .where(AuditEvent.mail_id == mail.id)
            .order_by(AuditEvent.at.desc(), AuditEvent.id.desc())
        )
    )
