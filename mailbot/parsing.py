"""Raw bytes to one normalised Message: headers, receipt time, attachments.

mail-parser builds the MIME tree; where it fails the standard library does,
and where both fail the headers alone still make a Message. Text is decoded
by mailbot.charsets, since both libraries lose Chinese text that real
clients send. Parsing never raises: whatever the bytes, a Message comes out,
and what went wrong is listed in ``defects``.
"""

from __future__ import annotations

import email
import email.parser
import email.policy
import hashlib
import logging
import mimetypes
import re
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.message import Message as EmailMessage
from email.utils import getaddresses, parsedate_to_datetime

import mailparser

from mailbot.charsets import (
    decode_bytes,
    decode_words,
    header_param,
    header_text,
    raw_header,
    raw_headers,
    raw_to_text,
    unfold,
)

log = logging.getLogger(__name__)

MAX_DEPTH = 50  # MIME nesting deeper than this is not walked (a hostile mail)

_EXTRA_TYPES = {
    "application/vnd.openxmlformats-officedocument.wordprocessingml.document": ".docx",
    "application/msword": ".doc",
    "application/pdf": ".pdf",
    "message/rfc822": ".eml",
}


@dataclass(frozen=True)
class Attachment:
    """A file the sender attached, its name decoded as the sender meant it."""

    filename: str
    content_type: str
    data: bytes = field(repr=False)
    sha256: str
    named: bool = True  # False: the sender gave no name and mailbot made one up

    @property
    def size(self) -> int:
        return len(self.data)

    @property
    def stem(self) -> str:
        return split_extension(self.filename)[0]

    @property
    def extension(self) -> str:
        return split_extension(self.filename)[1]


@dataclass(frozen=True)
class InlinePart:
    """A body decoration such as an inline signature image (Content-ID, no name)."""

    content_type: str
    content_id: str
    size: int


@dataclass(frozen=True)
class Message:
    """One mail as mailbot sees it; every text field is already decoded."""

    raw_size: int
    sender: str | None
    sender_name: str
    from_addresses: tuple[str, ...]
    reply_to: str | None
    message_id: str | None
    in_reply_to: str | None
    references: tuple[str, ...]
    subject: str
    date: datetime | None
    received_header_at: datetime | None
    content_type: str
    headers: tuple[tuple[str, str], ...]
    attachments: tuple[Attachment, ...]
    inline_parts: tuple[InlinePart, ...]
    text: str
    parsed_by: str
    defects: tuple[str, ...] = ()

    def header(self, name: str) -> str | None:
        """The first value of a header (decoded), or None."""
        name = name.lower()
        return next((v for k, v in self.headers if k == name), None)

    def header_values(self, name: str) -> list[str]:
        name = name.lower()
        return [v for k, v in self.headers if k == name]

    @property
    def receipt_guess(self) -> datetime | None:
        """The receipt time the mail itself tells: topmost Received, else Date."""
        return self.received_header_at or self.date


def split_extension(filename: str) -> tuple[str, str]:
    """``("name", ".pdf")`` with the extension lower-cased; no extension gives ``""``."""
    match = re.fullmatch(r"(.*?)(\.[A-Za-z0-9]{1,8})", filename.strip(), flags=re.DOTALL)
    if not match or not match.group(1).strip():
        return filename.strip(), ""
    return match.group(1).strip(), match.group(2).lower()


def parse_message(raw: bytes) -> Message:
    """Parse any bytes into a Message; never raises."""
    tree, parsed_by, defects = _build_tree(raw)
    walker = _Walker()
    try:
        walker.walk(tree)
    except Exception as exc:  # a part the libraries cannot read must not cost the mail
        log.warning("cannot walk the MIME tree: %s", exc, exc_info=True)
        defects.append(f"walk: {type(exc).__name__}: {exc}")
    defects.extend(walker.defects)
    return _message(raw, tree, parsed_by, walker, tuple(defects))


def _build_tree(raw: bytes) -> tuple[EmailMessage, str, list[str]]:
    try:
        parsed = mailparser.MailParser.from_bytes(raw)
        if parsed.message is not None:
            categories = sorted(parsed.defects_categories)
            return parsed.message, "mail-parser", [f"mime: {c}" for c in categories]
    except Exception as exc:  # mail-parser raises on hostile input: fall back, keep the reason
        log.info("mail-parser failed (%s), falling back to the standard library", exc)
        reason = f"mail-parser: {type(exc).__name__}: {exc}"
    else:
        reason = "mail-parser: no message"
    try:
        return email.message_from_bytes(raw, policy=email.policy.compat32), "email", [reason]
    except Exception as exc:  # e.g. RecursionError on absurd nesting
        log.info("the standard library failed too (%s): reading headers only", exc)
        headers_only = email.parser.BytesHeaderParser(policy=email.policy.compat32)
        tree = headers_only.parsebytes(raw, headersonly=True)
        return tree, "headers-only", [reason, f"email: {type(exc).__name__}: {exc}"]


class _Walker:
    """Sorts the leaves of a MIME tree into body text, attachments and inline parts."""

    def __init__(self) -> None:
        self.attachments: list[Attachment] = []
        self.inline_parts: list[InlinePart] = []
        self.texts: list[str] = []
        self.htmls: list[str] = []
        self.defects: list[str] = []

    def walk(self, root: EmailMessage) -> None:
        stack: list[tuple[EmailMessage, int]] = [(root, 0)]
        while stack:
            part, depth = stack.pop()
            if depth > MAX_DEPTH:
                self.defects.append(f"nesting deeper than {MAX_DEPTH} parts: not read")
                continue
            if part.get_content_maintype() == "multipart":
                children = part.get_payload() if part.is_multipart() else self.recover(part)
                if isinstance(children, list):
                    stack.extend(
                        (child, depth + 1)
                        for child in reversed(children)
                        if isinstance(child, EmailMessage)
                    )
                    continue
            self.leaf(part)

    def recover(self, part: EmailMessage) -> list[EmailMessage] | None:
        """The parts of a multipart whose boundary is missing or wrong.

        Some senders declare multipart without a usable boundary; the
        delimiter lines in the body still show it, so the applicant's
        attachments can be read all the same.
        """
        body = part.get_payload()
        if not isinstance(body, str):
            return None
        found = re.findall(r"(?m)^--([ -~]{1,70}?)(?:--)?[ \t]*\r?$", body)
        if not found:
            return None
        boundary = max(set(found), key=found.count)
        head = f'Content-Type: multipart/mixed; boundary="{boundary}"\r\n\r\n'
        data = head.encode() + body.encode("utf-8", "surrogateescape")
        rebuilt = email.message_from_bytes(data, policy=email.policy.compat32)
        if not rebuilt.is_multipart():
            return None
        self.defects.append(f"multipart without a usable boundary: read with {boundary!r}")
        children = rebuilt.get_payload()
        return (
            [c for c in children if isinstance(c, EmailMessage)]
            if isinstance(children, list)
            else None
        )

    def leaf(self, part: EmailMessage) -> None:
        content_type = part.get_content_type()
        disposition = (part.get_content_disposition() or "").lower()
        filename = header_param(part, "content-disposition", "filename") or header_param(
            part, "content-type", "name"
        )
        content_id = (part.get("content-id") or "").strip()
        if content_type in ("message/rfc822", "message/global"):
            self.add_attachment(part, content_type, filename or self.forwarded_name(part))
        elif filename:
            self.add_attachment(part, content_type, filename)
        elif disposition == "attachment":
            self.add_attachment(part, content_type, None)
        elif content_id and part.get_content_maintype() != "text":
            self.inline_parts.append(InlinePart(content_type, content_id, len(self.payload(part))))
        elif content_type == "text/plain" or part.get_content_maintype() == "multipart":
            self.texts.append(decode_bytes(self.payload(part), part.get_content_charset()))
        elif content_type == "text/html":
            self.htmls.append(decode_bytes(self.payload(part), part.get_content_charset()))
        elif part.get_content_maintype() != "text" and self.payload(part):
            self.add_attachment(part, content_type, None)

    def payload(self, part: EmailMessage) -> bytes:
        if part.is_multipart():
            return part.as_bytes()
        try:
            data = part.get_payload(decode=True)
        except Exception as exc:  # a body the library cannot decode: keep its raw octets
            self.defects.append(f"payload: {type(exc).__name__}: {exc}")
            raw = part.get_payload()
            return raw.encode("utf-8", "surrogateescape") if isinstance(raw, str) else b""
        return data if isinstance(data, bytes) else b""

    def forwarded_name(self, part: EmailMessage) -> str:
        inner = part.get_payload()
        subject = ""
        if isinstance(inner, list) and inner and isinstance(inner[0], EmailMessage):
            subject = header_text(raw_header(inner[0], "subject") or "")
        return f"{subject or 'forwarded message'}.eml"

    def add_attachment(self, part: EmailMessage, content_type: str, filename: str | None) -> None:
        if part.is_multipart() and content_type.startswith("message/"):
            children = part.get_payload()
            inner = children[0] if isinstance(children, list) and children else None
            data = inner.as_bytes() if isinstance(inner, EmailMessage) else b""
        else:
            data = self.payload(part)
        named = bool(filename)
        if not filename:
            guess = _EXTRA_TYPES.get(content_type) or mimetypes.guess_extension(content_type)
            filename = f"attachment-{len(self.attachments) + 1}{guess or ''}"
        self.attachments.append(
            Attachment(
                filename=filename,
                content_type=content_type,
                data=data,
                sha256=hashlib.sha256(data).hexdigest(),
                named=named,
            )
        )


def _message(
    raw: bytes, tree: EmailMessage, parsed_by: str, walker: _Walker, defects: tuple[str, ...]
) -> Message:
    headers = tuple((str(k).lower(), header_text(str(v))) for k, v in tree.raw_items())
    addresses = _addresses(raw_headers(tree, "from"))
    reply_to = _addresses(raw_headers(tree, "reply-to"))
    text = "\n".join(walker.texts) or _strip_html("\n".join(walker.htmls))
    return Message(
        raw_size=len(raw),
        sender=addresses[0][1] if addresses else None,
        sender_name=addresses[0][0] if addresses else "",
        from_addresses=tuple(addr for _name, addr in addresses),
        reply_to=reply_to[0][1] if reply_to else None,
        message_id=_first_id(raw_header(tree, "message-id")),
        in_reply_to=_first_id(raw_header(tree, "in-reply-to")),
        references=tuple(
            re.findall(r"<[^<>\s]+>", raw_to_text(raw_header(tree, "references") or ""))
        ),
        subject=header_text(raw_header(tree, "subject") or ""),
        date=_date(raw_header(tree, "date")),
        received_header_at=_received_at(raw_headers(tree, "received")),
        content_type=tree.get_content_type(),
        headers=headers,
        attachments=tuple(walker.attachments),
        inline_parts=tuple(walker.inline_parts),
        text=text,
        parsed_by=parsed_by,
        defects=defects,
    )


def _addresses(values: list[str]) -> list[tuple[str, str]]:
    """(display name, address) pairs; encoded words stay shut until the split is done."""
    if not values:
        return []
    found = []
    for name, addr in getaddresses([raw_to_text(unfold(v)) for v in values]):
        addr = addr.strip()
        if re.fullmatch(r"[^@\s<>]+@[^@\s<>]+", addr):
            local, _, domain = addr.rpartition("@")
            found.append((decode_words(name).strip(), f"{local}@{domain.lower()}"))
    return found


def _first_id(value: str | None) -> str | None:
    if not value:
        return None
    text = raw_to_text(unfold(value)).strip()
    match = re.search(r"<[^<>\s]+>", text)
    return match.group(0) if match else (text or None)


def _date(value: str | None) -> datetime | None:
    if not value:
        return None
    try:
        moment = parsedate_to_datetime(header_text(value))
    except (TypeError, ValueError, IndexError, OverflowError):
        return None
    # "-0000" and zone-less dates say nothing of the zone; RFC 5322 reads them as UTC.
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def _received_at(values: list[str]) -> datetime | None:
    """The time the topmost Received header gives after its last ';'."""
    if not values:
        return None
    text = unfold(values[0])
    return _date(text.rpartition(";")[2]) if ";" in text else None


def _strip_html(html: str) -> str:
    html = re.sub(r"(?is)<(script|style)\b.*?</\1\s*>", " ", html)
    text = re.sub(r"(?s)<[^>]*>", " ", html)
    return re.sub(r"[ \t]+", " ", text).strip()
