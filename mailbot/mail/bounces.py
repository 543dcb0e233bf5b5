"""What a bounce says about the mail it returns: which of our replies, to which address.

For the outbox, which marks a reply bounced so the secretariat can reach
the applicant another way. A bounce names the returned mail by the
Message-ID in its quoted copy (a message/rfc822 or text/rfc822-headers
part, or headers quoted in the text, as Exim and qmail do), by an
Original-Message-ID field, or, failing those, by its own In-Reply-To and
References; and the address by the DSN's Original-Recipient and
Final-Recipient fields (RFC 3464) or Exim's X-Failed-Recipients.
"""

from __future__ import annotations

import email
import email.message
import email.parser
import email.policy
import re
from collections.abc import Iterable, Iterator

from mailbot.mail.message import Message

# How mailbot names its replies (mailbot.replies.outbox): <mailbot.UUIDHEX@DOMAIN>.
REPLY_ID = re.compile(r"<mailbot\.[0-9a-f]{32}@[^<>\s@]+>", re.IGNORECASE)

_QUOTED_ID = re.compile(r"(?im)^[ \t>]*(?:original-)?message-id[ \t]*:\s*(<[^<>\s]+>)")
_RECIPIENT = re.compile(
    r"(?im)^[ \t]*(original|final)-recipient[ \t]*:[^;\r\n]*;"
    r"[ \t]*<?((?:\"[^\"\r\n]*\"|[^\s<>;\"]+)@[^\s<>;\"]+?)>?[ \t]*$"
)
_ADDRESS = re.compile(r"[^\s<>,;\"]+@[^\s<>,;\"]+")
_QUOTED_PARTS = frozenset({"message/rfc822", "message/global", "text/rfc822-headers"})
_REPORT_PARTS = frozenset(
    {
        "message/delivery-status",
        "message/global-delivery-status",
        "message/disposition-notification",
        "message/global-disposition-notification",
    }
)
_UNREAD = "multipart/x-unread"  # a multipart body the library left as text
_HEAD = 256 * 1024  # a quoted header block is read this far at most
_MAX_DEPTH, _MAX_PARTS = 20, 500  # how far the raw bytes are walked


def our_reply_ids(values: Iterable[str]) -> list[str]:
    """The Message-IDs among these that mailbot gave its own replies, in order, once each."""
    found = [m.group(0).lower() for v in values for m in REPLY_ID.finditer(v)]
    return list(dict.fromkeys(found))


def bounced_reply_ids(message: Message, raw: bytes | None = None) -> list[str]:
    """The Message-IDs of our replies this bounce returns; [] when it names none of ours.

    The quoted copy and Original-Message-ID name the returned mail itself;
    only when they name none of ours do In-Reply-To and References count,
    so that an earlier reply that the returned one merely refers to is not
    taken for it. Pass the raw bytes too where you have them (see
    ``report_parts``).
    """
    ours = our_reply_ids(returned_message_ids(message, raw))
    if ours:
        return ours
    return our_reply_ids([message.in_reply_to or "", *reversed(message.references)])


def returned_message_ids(message: Message, raw: bytes | None = None) -> list[str]:
    """Every Message-ID the bounce gives for the mail it returns, whoever sent that mail."""
    found: list[str] = []
    for content_type, data in report_parts(message, raw):
        if content_type in _QUOTED_PARTS:
            quoted = _quoted_headers(data)
            value = quoted.get("message-id") if quoted is not None else None
            if value:
                found += re.findall(r"<[^<>\s]+>", str(value))[:1]
        text = data[:_HEAD].decode("utf-8", "replace")
        found += [m.group(1) for m in _QUOTED_ID.finditer(text)]
    found += [m.group(1) for m in _QUOTED_ID.finditer(message.text)]
    for name in ("original-message-id", "x-original-message-id"):
        found += [i for v in message.header_values(name) for i in re.findall(r"<[^<>\s]+>", v)]
    return list(dict.fromkeys(found))


def original_recipients(message: Message, raw: bytes | None = None) -> list[str]:
    """The addresses the bounce could not deliver to, lower-cased, in order, once each."""
    found: list[str] = []
    for content_type, data in report_parts(message, raw):
        if content_type in _REPORT_PARTS or content_type == _UNREAD:
            found += _recipients(data[:_HEAD].decode("utf-8", "replace"))
    found += _recipients(message.text)
    for value in message.header_values("x-failed-recipients"):
        found += [a.lower() for a in _ADDRESS.findall(value)]
    return list(dict.fromkeys(found))


def report_parts(message: Message, raw: bytes | None = None) -> list[tuple[str, bytes]]:
    """(content type, bytes) of the parts that report on or quote the returned mail.

    A Message keeps of a message/delivery-status part only its first block
    (the per-message fields, not the per-recipient ones) and nothing of a
    text/rfc822-headers part, so with the raw bytes the standard library
    reads those parts again, bounded in depth and number.
    """
    wanted = _QUOTED_PARTS | _REPORT_PARTS
    found = [(a.content_type, a.data) for a in message.attachments if a.content_type in wanted]
    if raw is not None:
        found += _raw_parts(raw, wanted)
    return found


def _raw_parts(raw: bytes, wanted: frozenset[str]) -> list[tuple[str, bytes]]:
    try:
        tree = email.message_from_bytes(raw, policy=email.policy.compat32)
    except Exception:  # bytes the library cannot read report nothing
        return []
    found: list[tuple[str, bytes]] = []
    stack: list[tuple[email.message.Message, int]] = [(tree, 0)]
    seen = 0
    while stack and seen < _MAX_PARTS:
        part, depth = stack.pop()
        seen += 1
        content_type = part.get_content_type()
        payload = part.get_payload()
        if content_type in wanted:
            found.append((content_type, _part_bytes(part)))
        elif part.get_content_maintype() == "multipart" and isinstance(payload, str):
            # A report whose boundary the library could not follow: its fields are still there.
            found.append((_UNREAD, payload.encode("utf-8", "surrogateescape")))
        # Into quoted mails too: a bounce is sometimes forwarded inside another.
        if part.is_multipart() and isinstance(payload, list) and depth < _MAX_DEPTH:
            stack += [
                (p, depth + 1) for p in reversed(payload) if isinstance(p, email.message.Message)
            ]
    return found


def _part_bytes(part: email.message.Message) -> bytes:
    payload = part.get_payload()
    try:
        if isinstance(payload, list):  # message/*: the blocks or the quoted mail
            return b"\n".join(p.as_bytes() for p in payload if isinstance(p, email.message.Message))
        data = part.get_payload(decode=True)
    except Exception:  # an undecodable body quotes nothing
        return b""
    return data if isinstance(data, bytes) else b""


def _recipients(text: str) -> Iterator[str]:
    """Original-Recipient first within each report, since Final-Recipient may be rewritten."""
    text = re.sub(r"\r?\n[ \t]+", " ", text)  # fields folded when the part was written out
    pairs = [(m.group(1).lower(), m.group(2).lower()) for m in _RECIPIENT.finditer(text)]
    yield from (addr for kind, addr in pairs if kind == "original")
    yield from (addr for kind, addr in pairs if kind == "final")


def _quoted_headers(data: bytes) -> email.message.Message | None:
    parser = email.parser.BytesHeaderParser(policy=email.policy.compat32)
    try:
        return parser.parsebytes(data[:_HEAD], headersonly=True)
    except Exception:  # a quoted copy the library cannot read names nothing
        return None
