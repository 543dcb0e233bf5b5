"""The outbox: each reply built once as a whole MIME message and stored with the verdict."""

from __future__ import annotations

import email.policy
import re
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from email.headerregistry import Address
from email.message import EmailMessage
from email.utils import format_datetime, quote

from sqlalchemy import select
from sqlalchemy.orm import Session

from mailbot.calls import Call
from mailbot.config import ReplySettings
from mailbot.domain import ReplyState
from mailbot.errors import MailbotError
from mailbot.replies.limits import charged, counted, over_limit
from mailbot.replies.render import single_line
from mailbot.store.models import Mail, Reply

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


@dataclass(frozen=True)
class Outgoing:
    """One outgoing reply: what it says, to whom, in which thread; everything a caller chooses.

    ``in_reply_to`` is the applicant's Message-ID and ``references`` their
    References, so the reply lands in the applicant's thread. A letter a
    person wrote (``by_person``) carries no Auto-Submitted header, so the
    applicant's client files it as a person's mail.
    """

    to_address: str
    template: str
    subject: str
    body: str
    in_reply_to: str | None = None
    references: Sequence[str] = ()
    mail_id: int | None = None
    submission_id: int | None = None
    by_person: bool = False
    # Not sent before this time (the settling window): a later mail may make it obsolete.
    not_before: datetime | None = None

    @classmethod
    def again(cls, old: Reply, *, submission_id: int | None, by_person: bool) -> Outgoing:
        """The same letter as ``old``, to be queued again as a new row (same thread)."""
        original = email.message_from_bytes(old.raw, policy=email.policy.default)
        return cls(
            to_address=old.to_address,
            template=old.template,
            subject=old.subject,
            body=reply_body(old.raw),
            in_reply_to=str(original.get("In-Reply-To") or "") or None,
            references=str(original.get("References") or "").split(),
            mail_id=old.mail_id,
            submission_id=submission_id,
            by_person=by_person,
        )


@dataclass(frozen=True)
class Heading:
    """The headers of one reply: who writes to whom, when, in which thread."""

    from_name: str
    from_addr: str
    to_address: str | None  # None: a record of what would have been said, never sent
    subject: str
    message_id: str
    date: datetime
    in_reply_to: str | None = None
    references: Sequence[str] = ()
    auto_submitted: str | None = "auto-replied"


def queue_reply(
    session: Session, letter: Outgoing, *, settings: ReplySettings, call: Call, now: datetime
) -> Reply:
    """Build a reply and add it to the session; the caller commits it with the verdict.

    A reply over an hourly limit (mailbot.replies.limits) is still recorded,
    as "suppressed"; one to an address that cannot be used (a header
    injection, say) as "failed".
    """
    to_address = letter.to_address.strip()
    usable = bool(_ADDRESS.fullmatch(to_address))
    subject = single_line(letter.subject)
    message_id = f"<mailbot.{uuid.uuid4().hex}@{call.call.mailbox.rpartition('@')[2]}>"
    heading = Heading(
        from_name=settings.from_name,
        from_addr=from_address(settings, call),
        to_address=to_address if usable else None,
        subject=subject,
        message_id=message_id,
        date=call.local(now),
        in_reply_to=letter.in_reply_to,
        references=letter.references,
        auto_submitted=_auto_submitted(letter),
    )
    reply = Reply(
        call_id=call.id,
        mail_id=letter.mail_id,
        submission_id=letter.submission_id,
        to_address=to_address,
        template=letter.template,
        message_id=message_id,
        subject=subject,
        raw=build_message(heading, letter.body),
        state=ReplyState.PENDING,
        queued_at=now,
        attempts=0,
        next_attempt_at=max(now, letter.not_before) if letter.not_before else now,
    )
    held = _held(session, settings, letter, to_address, usable, now)
    if held is not None:
        reply.state, reply.last_error = held
        reply.next_attempt_at = None
    if reply.state != ReplyState.SUPPRESSED:
        counted(session, now, _named(session, letter, to_address))
    session.add(reply)
    session.flush()
    return reply


def _held(
    session: Session,
    settings: ReplySettings,
    letter: Outgoing,
    to_address: str,
    usable: bool,
    now: datetime,
) -> tuple[ReplyState, str] | None:
    """Why a reply is recorded but never sent (its state and error), or None to send it."""
    if not usable:
        # Raising would roll back the verdict with it; a failed reply is seen and kept.
        return ReplyState.FAILED, f"cannot reply to {to_address!r}: not a plain e-mail address"
    reason = over_limit(session, settings, to_address, _named(session, letter, to_address), now)
    if reason is not None:
        # Recorded all the same, so the secretariat can see who was not answered and why.
        return ReplyState.SUPPRESSED, reason
    return None


def _named(session: Session, letter: Outgoing, to_address: str) -> frozenset[str]:
    """Whom a reply counts against: its recipient, the From and Reply-To of the mail it answers."""
    mail = session.get(Mail, letter.mail_id) if letter.mail_id is not None else None
    return charged([to_address, *((mail.sender, mail.reply_to) if mail else ())])


def supersede_waiting(session: Session, submission_id: int, mail_id: int, now: datetime) -> int:
    """Keep unsent the letters of a submission still waiting out the settling window.

    A later mail of the submission was just recorded and its own letter says
    all; a letter already due, tried or sent is left as it is. Returns how
    many were kept back.
    """
    waiting = session.scalars(
        select(Reply).where(
            Reply.submission_id == submission_id,
            Reply.mail_id != mail_id,
            Reply.state == ReplyState.PENDING,
            Reply.attempts == 0,
            Reply.next_attempt_at > now,
        )
    ).all()
    for reply in waiting:
        reply.state, reply.next_attempt_at = ReplyState.SUPERSEDED, None
        reply.last_error = (
            f"not sent: mail {mail_id} of the same submission came within the settling "
            "window ([intake] settle_window); its letter says all"
        )
    return len(waiting)


def reply_body(raw: bytes) -> str:
    """The text of a stored reply (they are all text/plain)."""
    message = email.message_from_bytes(raw, policy=email.policy.default)
    assert isinstance(message, EmailMessage)
    part = message.get_body(("plain",))
    return str(part.get_content()) if part is not None else ""


def _auto_submitted(letter: Outgoing) -> str | None:
    """RFC 3834: answers to a mail are auto-replied; the digest answers none; a person's is not."""
    if letter.by_person:
        return None
    return "auto-replied" if letter.mail_id is not None or letter.in_reply_to else "auto-generated"


def build_message(heading: Heading, body: str) -> bytes:
    """The whole reply as bytes ready for SMTP: text/plain UTF-8, base64, CRLF.

    Without ``heading.to_address`` the message has no To header: it is kept
    as a record of what would have been said, never sent.
    """
    ascii_only = (heading.from_addr + (heading.to_address or "")).isascii()
    # An address such as 张三@example.cn needs SMTPUTF8 and raw UTF-8 headers;
    # every other reply keeps to encoded words that any server passes.
    message = EmailMessage(policy=email.policy.SMTP if ascii_only else email.policy.SMTPUTF8)
    _address(message, heading)
    message["Subject"] = single_line(heading.subject)
    message["Date"] = format_datetime(heading.date)
    message["Message-ID"] = heading.message_id
    _thread(message, heading)
    if heading.auto_submitted is not None:
        message["Auto-Submitted"] = heading.auto_submitted
    # Outlook and Exchange send no out-of-office or read receipt back to this.
    message["X-Auto-Response-Suppress"] = "All"
    # Base64: Chinese in quoted-printable is unreadable and twice as long.
    message.set_content(body, subtype="plain", charset="utf-8", cte="base64")
    return message.as_bytes()


def _address(message: EmailMessage, heading: Heading) -> None:
    """From and To; an unusable From address is a ReplyError."""
    from_addr = heading.from_addr
    try:
        if from_addr.isascii():
            message["From"] = Address(
                display_name=single_line(heading.from_name), addr_spec=from_addr
            )
        else:
            # Address() and formataddr() refuse a non-ASCII local part; the parser takes it.
            message["From"] = f'"{quote(single_line(heading.from_name))}" <{from_addr}>'
        if heading.to_address is not None:
            message["To"] = heading.to_address
    except (ValueError, IndexError) as exc:
        raise ReplyError(f"cannot build a reply from {from_addr!r}: {exc}") from None


def _thread(message: EmailMessage, heading: Heading) -> None:
    """In-Reply-To and References, trimmed as RFC 5322 allows, so the reply joins the thread."""
    parent = _message_id(heading.in_reply_to) if heading.in_reply_to else None
    chain = [mid for mid in (_message_id(r) for r in heading.references) if mid]
    if parent:
        message["In-Reply-To"] = parent
        chain.append(parent)
    chain = list(dict.fromkeys(chain))
    if len(chain) > MAX_REFERENCES:
        chain = [chain[0], *chain[-(MAX_REFERENCES - 1) :]]
    if chain:
        message["References"] = " ".join(chain)


def _message_id(value: str) -> str | None:
    """A message id in angle brackets, or None when it is not one (never a header risk)."""
    value = value.strip()
    if not value.startswith("<"):
        value = f"<{value}>"
    return value if value.isascii() and _MESSAGE_ID.fullmatch(value) else None
