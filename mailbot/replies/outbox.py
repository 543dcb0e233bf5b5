"""The outbox: each reply built once as a whole MIME message and stored with the verdict."""

from __future__ import annotations

import email.policy
import re
import uuid
from collections.abc import Sequence
from datetime import datetime, timedelta
from email.headerregistry import Address
from email.message import EmailMessage
from email.utils import format_datetime, quote
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from mailbot.calls import Call
from mailbot.config import ReplySettings
from mailbot.errors import MailbotError
from mailbot.ledger.attention import NEEDS_A_PERSON, needing_a_person
from mailbot.ledger.labels import STATUSES
from mailbot.replies.render import Renderer, call_context, local_text, single_line
from mailbot.store.models import Mail, Reply, Submission, Version

# Reply.state values.
PENDING = "pending"
SENDING = "sending"
SENT = "sent"
UNCERTAIN = "uncertain"
SUPPRESSED = "suppressed"
FAILED = "failed"
BOUNCED = "bounced"  # it left, and a bounce came back (mailbot.replies.bounced)

DIGEST = "digest"

# A long thread's References would grow without end; RFC 5322 allows trimming
# it as long as the first and the last identifiers stay.
MAX_REFERENCES = 20

_ADDRESS = re.compile(r"[^@\s<>,;\"()\[\]\\]+@[^@\s<>,;\"()\[\]\\]+")
_MESSAGE_ID = re.compile(r"<[^<>\s]+>")


class ReplyError(MailbotError):
    """A reply that cannot be built: the From address in the settings is unusable."""


def from_address(settings: ReplySettings, call: Call) -> str:
    """The address replies come from: the configured one, else the call's mailbox."""
    return settings.from_address or call.call.mailbox


def queue_reply(
    session: Session,
    *,
    settings: ReplySettings,
    call: Call,
    to_address: str,
    template: str,
    subject: str,
    body: str,
    in_reply_to: str | None,
    references: Sequence[str],
    mail_id: int | None,
    submission_id: int | None,
    now: datetime,
    by_person: bool = False,
) -> Reply:
    """Build a reply and add it to the session; the caller commits it with the verdict.

    ``in_reply_to`` is the applicant's Message-ID and ``references`` their
    References, so the reply lands in the applicant's thread. A letter a
    person wrote (``by_person``) carries no Auto-Submitted header, so the
    applicant's client files it as a person's mail. A reply over the
    hourly limit for its address is still recorded, as "suppressed"; one to
    an address that cannot be used (a header injection, say) as "failed".
    """
    to_address = to_address.strip()
    usable = bool(_ADDRESS.fullmatch(to_address))
    subject = single_line(subject)
    message_id = f"<mailbot.{uuid.uuid4().hex}@{call.call.mailbox.rpartition('@')[2]}>"
    raw = build_message(
        from_name=settings.from_name,
        from_addr=from_address(settings, call),
        to_address=to_address if usable else None,
        subject=subject,
        body=body,
        message_id=message_id,
        date=call.local(now),
        in_reply_to=in_reply_to,
        references=references,
        auto_submitted=_auto_submitted(mail_id, in_reply_to, by_person),
    )
    reply = Reply(
        call_id=call.id,
        mail_id=mail_id,
        submission_id=submission_id,
        to_address=to_address,
        template=template,
        message_id=message_id,
        subject=subject,
        raw=raw,
        state=PENDING,
        queued_at=now,
        attempts=0,
        next_attempt_at=now,
    )
    limit = settings.per_sender_hourly_limit
    if not usable:
        # Raising would roll back the verdict with it; a failed reply is seen and kept.
        reply.state = FAILED
        reply.next_attempt_at = None
        reply.last_error = f"cannot reply to {to_address!r}: not a plain e-mail address"
    elif limit and _recent_replies(session, to_address, now) >= limit:
        # Recorded all the same, so the secretariat can see who was not answered and why.
        reply.state = SUPPRESSED
        reply.next_attempt_at = None
        reply.last_error = (
            f"not sent: {to_address} already had {limit} replies in the hour before "
            f"{now.isoformat(timespec='seconds')} (replies.per_sender_hourly_limit)"
        )
    session.add(reply)
    session.flush()
    return reply


def queue_again(
    session: Session,
    *,
    settings: ReplySettings,
    call: Call,
    old: Reply,
    submission_id: int | None,
    now: datetime,
    by_person: bool,
) -> Reply:
    """The same letter as ``old`` queued again as a new row (a new Message-ID, same thread)."""
    original = email.message_from_bytes(old.raw, policy=email.policy.default)
    return queue_reply(
        session,
        settings=settings,
        call=call,
        to_address=old.to_address,
        template=old.template,
        subject=old.subject,
        body=reply_body(old.raw),
        in_reply_to=str(original.get("In-Reply-To") or "") or None,
        references=str(original.get("References") or "").split(),
        mail_id=old.mail_id,
        submission_id=submission_id,
        now=now,
        by_person=by_person,
    )


def reply_body(raw: bytes) -> str:
    """The text of a stored reply (they are all text/plain)."""
    message = email.message_from_bytes(raw, policy=email.policy.default)
    assert isinstance(message, EmailMessage)
    part = message.get_body(("plain",))
    return str(part.get_content()) if part is not None else ""


def _auto_submitted(mail_id: int | None, in_reply_to: str | None, by_person: bool) -> str | None:
    """RFC 3834: answers to a mail are auto-replied; the digest answers none; a person's is not."""
    if by_person:
        return None
    return "auto-replied" if mail_id is not None or in_reply_to else "auto-generated"


def _recent_replies(session: Session, to_address: str, now: datetime) -> int:
    count = session.scalar(
        select(func.count(Reply.id)).where(
            func.lower(Reply.to_address) == to_address.lower(),
            Reply.state != SUPPRESSED,
            Reply.queued_at > now - timedelta(hours=1),
            Reply.queued_at <= now,
        )
    )
    return count or 0


def build_message(
    *,
    from_name: str,
    from_addr: str,
    to_address: str | None,
    subject: str,
    body: str,
    message_id: str,
    date: datetime,
    in_reply_to: str | None,
    references: Sequence[str],
    auto_submitted: str | None = "auto-replied",
) -> bytes:
    """The whole reply as bytes ready for SMTP: text/plain UTF-8, base64, CRLF.

    Without ``to_address`` the message has no To header: it is kept as a
    record of what would have been said, never sent.
    """
    ascii_only = (from_addr + (to_address or "")).isascii()
    # An address such as 张三@example.cn needs SMTPUTF8 and raw UTF-8 headers;
    # every other reply keeps to encoded words that any server passes.
    policy = email.policy.SMTP if ascii_only else email.policy.SMTPUTF8
    message = EmailMessage(policy=policy)
    try:
        if from_addr.isascii():
            message["From"] = Address(display_name=single_line(from_name), addr_spec=from_addr)
        else:
            # Address() and formataddr() refuse a non-ASCII local part; the parser takes it.
            message["From"] = f'"{quote(single_line(from_name))}" <{from_addr}>'
        if to_address is not None:
            message["To"] = to_address
    except (ValueError, IndexError) as exc:
        raise ReplyError(f"cannot build a reply from {from_addr!r}: {exc}") from None
    message["Subject"] = single_line(subject)
    message["Date"] = format_datetime(date)
    message["Message-ID"] = message_id
    parent = _message_id(in_reply_to) if in_reply_to else None
    chain = [mid for mid in (_message_id(r) for r in references) if mid]
    if parent:
        message["In-Reply-To"] = parent
        chain.append(parent)
    chain = list(dict.fromkeys(chain))
    if len(chain) > MAX_REFERENCES:
        chain = [chain[0], *chain[-(MAX_REFERENCES - 1) :]]
    if chain:
        message["References"] = " ".join(chain)
    if auto_submitted is not None:
        message["Auto-Submitted"] = auto_submitted
    # Outlook and Exchange send no out-of-office or read receipt back to this.
    message["X-Auto-Response-Suppress"] = "All"
    # Base64: Chinese in quoted-printable is unreadable and twice as long.
    message.set_content(body, subtype="plain", charset="utf-8", cte="base64")
    return message.as_bytes()


def _message_id(value: str) -> str | None:
    """A message id in angle brackets, or None when it is not one (never a header risk)."""
    value = value.strip()
    if not value.startswith("<"):
        value = f"<{value}>"
    return value if value.isascii() and _MESSAGE_ID.fullmatch(value) else None


# --------------------------------------------------------------------------- digest


def last_digest_at(session: Session) -> datetime | None:
    """When the last digest was queued, so the next one reports what came since."""
    # Replies carry no call id; one database serves one call's mailbox.
    return session.scalar(select(func.max(Reply.queued_at)).where(Reply.template == DIGEST))


def digest_context(
    session: Session, call: Call, *, since: datetime | None, now: datetime
) -> dict[str, Any]:
    """The digest's variables (templates/README.md) read from the database."""
    counts = {
        status: count
        for status, count in session.execute(
            select(Mail.status, func.count(Mail.id))
            .where(Mail.call_id == call.id)
            .group_by(Mail.status)
            .order_by(Mail.status)
        )
    }
    submissions = select(Submission).where(Submission.call_id == call.id)
    new = submissions.order_by(Submission.seq)
    if since is not None:
        new = new.where(Submission.created_at > since)
    open_corrections = []
    for submission in session.scalars(
        submissions.where(Submission.status == "needs_correction").order_by(Submission.seq)
    ):
        latest = session.scalars(
            select(Version)
            .where(Version.submission_id == submission.id)
            .order_by(Version.number.desc())
            .limit(1)
        ).first()
        open_corrections.append(
            {**_identity(submission), "codes": _codes(latest.problems if latest else [], True)}
        )
    attention = needing_a_person(session, call)
    needing = [
        {
            "mail_id": mail.id,
            "sender": mail.sender,
            "subject": single_line(mail.subject),
            "received": call.local_text(mail.received_at)[1],
            "codes": mail.reasons,
            "reasons_zh": "、".join(NEEDS_A_PERSON[code][0] for code in mail.reasons),
            "reasons_en": ", ".join(NEEDS_A_PERSON[code][1] for code in mail.reasons),
        }
        for mail in attention.mails
    ]
    troubled = [
        {
            "reply_id": reply.id,
            "to_address": reply.to_address,
            "state": reply.state,
            "subject": reply.subject,
            "last_error": single_line(reply.last_error or ""),
        }
        for reply in attention.letters
    ]
    since_zh, since_en = local_text(call, since)
    generated_zh, generated_en = call.local_text(now)
    return {
        **call_context(call),
        "date": call.local(now).date().isoformat(),
        "generated_zh": generated_zh,
        "generated_en": generated_en,
        "since_zh": since_zh,
        "since_en": since_en,
        "counts": counts,
        "submissions_total": session.scalar(
            select(func.count(Submission.id)).where(Submission.call_id == call.id)
        )
        or 0,
        "new_submissions": [_identity(s) for s in session.scalars(new)],
        "open_corrections": open_corrections,
        "needs_a_person": needing,
        "unparseable": [
            {k: item[k] for k in ("mail_id", "sender", "subject", "received")}
            for item, mail in zip(needing, attention.mails, strict=True)
            if "unparseable" in mail.reasons
        ],
        "status_labels": STATUSES,
        "troubled_replies": troubled,
    }


def _identity(submission: Submission) -> dict[str, Any]:
    return {
        "reference": submission.reference,
        "institution": submission.institution,
        "pi": submission.pi,
    }


def _codes(problems: Sequence[Any], errors_only: bool) -> list[str]:
    """Problem codes from stored problems (Problem.as_json() dicts, or bare codes)."""
    codes = []
    for problem in problems:
        if isinstance(problem, dict):
            if errors_only and problem.get("severity", "error") != "error":
                continue
            codes.append(str(problem.get("code", "")))
        else:
            codes.append(str(problem))
    return list(dict.fromkeys(code for code in codes if code))


def queue_digest(
    session: Session,
    *,
    settings: ReplySettings,
    call: Call,
    renderer: Renderer,
    to: Sequence[str],
    now: datetime,
) -> list[Reply]:
    """Queue the daily digest to each secretariat address; it covers what came since the last."""
    if not to:
        return []
    context = digest_context(session, call, since=last_digest_at(session), now=now)
    subject, body = renderer.render(DIGEST, context)
    return [
        queue_reply(
            session,
            settings=settings,
            call=call,
            to_address=address,
            template=DIGEST,
            subject=subject,
            body=body,
            in_reply_to=None,
            references=(),
            mail_id=None,
            submission_id=None,
            now=now,
        )
        for address in to
    ]
