"""Bounces of our own replies: the reply is marked "bounced" with what the server said.

A bounce is recorded like any mail (ignored, code ``bounce``). When it
returns one of our replies, that reply's state becomes ``bounced`` and its
last_error says which mail reported it and why (the DSN's Status and
Diagnostic-Code), so the secretariat can reach that applicant another way:
``mailbot show`` and the daily digest list it.

The reply is found by the Message-ID the bounce quotes (mailbot.mail.bounces,
and the DSN's own parts read here from the raw bytes: its per-recipient
fields and a text/rfc822-headers part), else by the address it could not
deliver to. A report that only says delivery is delayed marks nothing.
"""

from __future__ import annotations

import email
import email.message
import email.parser
import email.policy
import logging
import re
from collections.abc import Callable
from dataclasses import dataclass, field

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from mailbot.domain import LEFT, ReplyState
from mailbot.judge.verdict import Verdict
from mailbot.mail.bounces import bounced_reply_ids, original_recipients, our_reply_ids
from mailbot.mail.message import Message
from mailbot.replies.render import single_line
from mailbot.store.models import Mail, Reply

log = logging.getLogger(__name__)

MAX_READ = 4 * 1024 * 1024  # a bounce is read this far; the quoted reply comes early
MAX_ERROR = 500

_NOT_FAILED = frozenset({"delayed", "delivered", "relayed", "expanded"})
_SMTP_LINE = re.compile(r"\b[45]\d\d[ -][245]\.\d{1,3}\.\d{1,3}\b[^\r\n]*")
_STATUS_NOTE = re.compile(r"(#|status:\s*)[245]\.\d{1,3}\.\d{1,3}\b", re.IGNORECASE)
_ADDRESS = re.compile(r"[^\s<>;:,\"]+@[^\s<>;:,\"]+")


@dataclass
class Report:
    """What a bounce says: the Message-IDs it returns, and per recipient why."""

    message_ids: list[str] = field(default_factory=list)
    recipients: list[str] = field(default_factory=list)
    actions: list[str] = field(default_factory=list)
    reasons: list[str] = field(default_factory=list)  # "5.1.1 smtp; 550 ... (pi@example.cn)"

    @property
    def only_delayed(self) -> bool:
        """A report whose every recipient is still being tried (or was delivered)."""
        return bool(self.actions) and all(a in _NOT_FAILED for a in self.actions)


# How mark_bounced gets a mail's raw bytes, only when it needs them.
RawMail = Callable[[], bytes]


def read_report(raw: bytes) -> Report:
    """The DSN parts of a bounce (RFC 3464, 6522), read from its raw bytes; never raises."""
    report = Report()
    try:
        parsed = email.message_from_bytes(raw[:MAX_READ], policy=email.policy.compat32)
        for part in parsed.walk():
            kind = part.get_content_type()
            if kind in ("message/delivery-status", "message/global-delivery-status"):
                _delivery_status(part, report)
            elif kind == "text/rfc822-headers":
                payload = part.get_payload(decode=True)
                if isinstance(payload, bytes):
                    quoted = email.parser.BytesHeaderParser(policy=email.policy.compat32)
                    _quoted_id(quoted.parsebytes(payload, headersonly=True), report)
            elif kind in ("message/rfc822", "message/global") and part.is_multipart():
                inner = part.get_payload(0)
                if isinstance(inner, email.message.Message):
                    _quoted_id(inner, report)
    except Exception:  # a bounce the library cannot read tells nothing more
        log.debug("cannot read the delivery report of a bounce", exc_info=True)
    return report


def _quoted_id(headers: email.message.Message, report: Report) -> None:
    value = str(headers.get("message-id") or "")
    report.message_ids += re.findall(r"<[^<>\s]+>", value)[:1]


def _delivery_status(part: email.message.Message, report: Report) -> None:
    payload = part.get_payload()
    if isinstance(payload, list):
        blocks = [block for block in payload if isinstance(block, email.message.Message)]
    else:  # not split into blocks: read the fields from the text
        data = part.get_payload(decode=True)
        text = data.decode("utf-8", "replace") if isinstance(data, bytes) else str(payload)
        blocks = [email.message_from_string(block) for block in re.split(r"\n\s*\n", text)]
    for block in blocks:
        original = str(block.get("original-message-id") or "")
        report.message_ids += re.findall(r"<[^<>\s]+>", original)[:1]
        action = str(block.get("action") or "").strip().lower()
        recipient = str(block.get("original-recipient") or block.get("final-recipient") or "")
        if not action and not recipient:
            continue  # the per-message block: who reports, not what failed
        address = next(iter(_ADDRESS.findall(recipient.rpartition(";")[2] or recipient)), "")
        if address:
            report.recipients.append(address.lower())
        if action:
            report.actions.append(action)
        if action in _NOT_FAILED:
            continue
        status = single_line(str(block.get("status") or ""))
        diagnostic = single_line(str(block.get("diagnostic-code") or ""))
        reason = " ".join(x for x in (status, diagnostic) if x) or action or "failed"
        report.reasons.append(f"{reason} ({address})" if address else reason)


def reason_text(report: Report, message: Message) -> str:
    """One line on why delivery failed, from the DSN, else the text, else the subject."""
    if report.reasons:
        return "; ".join(dict.fromkeys(report.reasons))
    line = _SMTP_LINE.search(message.text)
    if line:
        return single_line(line.group(0))
    # qmail and others: "Sorry, no mailbox here by that name. (#5.1.1)", "Status: 5.2.2".
    for text in message.text.splitlines():
        if _STATUS_NOTE.search(text):
            return single_line(text)
    return single_line(message.subject) or "no reason given"


def mark_bounced(
    session: Session, call_id: str, mail: Mail, message: Message, verdict: Verdict, raw: RawMail
) -> list[Reply]:
    """If this mail is a bounce of our replies, mark them bounced; return them.

    ``raw`` gives the mail's raw bytes, asked for only when it is a bounce
    (the daemon may have let go of them: they are read from the store).
    Runs in the transaction that records the bounce, so the reply's new state
    and the bounce are committed together.
    """
    if "bounce" not in verdict.codes():
        return []
    report = read_report(raw())
    if report.only_delayed:
        log.info("mail %s: a delay notice, not a bounce: no reply marked", mail.id)
        return []
    ids = our_reply_ids(report.message_ids) or bounced_reply_ids(message)
    replies: list[Reply] = []
    if ids:
        replies = list(
            session.scalars(
                select(Reply)
                .where(func.lower(Reply.message_id).in_([i.lower() for i in ids]))
                .order_by(Reply.id)
            )
        )
    else:
        # No Message-ID of ours: the latest reply that left for an address it names.
        for address in dict.fromkeys([*report.recipients, *original_recipients(message)]):
            latest = session.scalars(
                select(Reply)
                .where(
                    func.lower(Reply.to_address) == address.lower(),
                    Reply.state.in_(LEFT),
                    (Reply.call_id == call_id) | Reply.call_id.is_(None),
                    Reply.queued_at <= mail.processed_at,
                )
                .order_by(Reply.queued_at.desc(), Reply.id.desc())
                .limit(1)
            ).first()
            if latest is not None:
                replies.append(latest)
    why = reason_text(report, message)
    marked = []
    for reply in dict.fromkeys(replies):
        if reply.state not in LEFT:
            continue  # never sent (suppressed, failed) or not yet: nothing came back
        reply.state = ReplyState.BOUNCED
        reply.next_attempt_at = None
        reply.last_error = single_line(f"bounced (mail {mail.id}): {why}")[:MAX_ERROR]
        marked.append(reply)
        log.warning(
            "reply %d to %s bounced: %s; the secretariat must reach the applicant another way",
            reply.id,
            reply.to_address,
            why,
        )
    return marked
