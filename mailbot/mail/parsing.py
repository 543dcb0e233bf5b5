"""Raw bytes to one normalised Message (mailbot.mail.message): headers, receipt time, attachments.

mail-parser builds the MIME tree; where it fails the standard library does,
and where both fail the headers alone still make a Message. Text is decoded
by mailbot.mail.charsets, since both libraries lose Chinese text that real
clients send. Parsing never raises: whatever the bytes, a Message comes out,
and what went wrong is listed in ``defects``.

Large base64 bodies are not handed to the parsers: mailbot.mail.fastmime cuts
them out and decodes them in one call each, and the tree comes out as if
they had been parsed (the same parts, payloads and defects).

Files that hide the applicant's files are opened (mailbot.mail.containers): the
files inside a .zip, an Outlook winmail.dat and a forwarded mail (one level
deep) follow their container in ``attachments``, each naming it in
``container``; ``containers`` says what each held, or why it was not opened.
"""

from __future__ import annotations

import email
import email.parser
import email.policy
import hashlib
import logging
import mimetypes
import re
from datetime import UTC, datetime
from email.message import Message as EmailMessage
from email.utils import getaddresses, parsedate_to_datetime

import mailparser

from mailbot.calls import DocumentsSection
from mailbot.mail import fastmime
from mailbot.mail.charsets import (
    decode_bytes,
    decode_words,
    header_param,
    header_text,
    raw_header,
    raw_headers,
    raw_to_text,
    unfold,
)
from mailbot.mail.containers import kind_of, unpack
from mailbot.mail.containers.entries import DAMAGED, Budget
from mailbot.mail.message import (
    FORWARDED,
    Attachment,
    Container,
    InlinePart,
    Message,
    split_extension,
    storable,
)
from mailbot.mail.names import shown

log = logging.getLogger(__name__)

MAX_DEPTH = 50  # MIME nesting deeper than this is not walked (a hostile mail)

_EXTRA_TYPES = {
    "application/vnd.openxmlformats-officedocument.wordprocessingml.document": ".docx",
    "application/msword": ".doc",
    "application/pdf": ".pdf",
    "message/rfc822": ".eml",
}
_TYPES = {extension: content_type for content_type, extension in _EXTRA_TYPES.items()}
# A calendar invitation: Outlook and Gmail send text/calendar (method=REQUEST), with or
# without an invite.ics attachment.
_CALENDAR_TYPES = frozenset({"text/calendar", "application/ics"})
_METHOD_LINE = re.compile(rb"(?im)^METHOD:[ \t]*([A-Za-z-]+)[ \t]*\r?$")


def parse_message(raw: bytes, limits: DocumentsSection | None = None) -> Message:
    """Parse any bytes into a Message; never raises.

    ``limits`` bound the opening of archives and winmail.dat (the call's
    ``[documents]``; the defaults when not given).
    """
    tree, parsed_by, defects, cut = _build_tree(raw)
    walker = _Walker(Budget(limits or DocumentsSection()), cut=cut)
    try:
        walker.walk(tree)
    except Exception as exc:  # a part the libraries cannot read must not cost the mail
        log.warning("cannot walk the MIME tree: %s", shown(str(exc)), exc_info=True)
        defects.append(f"walk: {type(exc).__name__}: {shown(str(exc))}")
    defects.extend(walker.defects)
    return _message(raw, tree, parsed_by, walker, tuple(defects))


def _build_tree(raw: bytes) -> tuple[EmailMessage, str, list[str], fastmime.Cut | None]:
    """The MIME tree, who built it and what went wrong; the cut its large bodies came from."""
    cut = _cut(raw)
    try:
        parsed = None
        if cut is not None:
            try:
                parsed = _parse_cut(cut)
            except fastmime.Unsettled as exc:  # not expected: the whole mail is parsed instead
                log.warning("base64 runs not settled (%s): parsing the whole mail", exc)
                cut = None
        if parsed is None:
            parsed = mailparser.MailParser.from_bytes(raw)
        if parsed.message is not None:
            categories = sorted(parsed.defects_categories)
            return parsed.message, "mail-parser", [f"mime: {c}" for c in categories], cut
    except Exception as exc:  # mail-parser raises on hostile input: fall back, keep the reason
        log.info("mail-parser failed (%s), falling back to the standard library", exc)
        reason = f"mail-parser: {type(exc).__name__}: {exc}"
    else:
        reason = "mail-parser: no message"
    try:
        tree = email.message_from_bytes(raw, policy=email.policy.compat32)
        return tree, "email", [reason], None
    except Exception as exc:  # e.g. RecursionError on absurd nesting
        log.info("the standard library failed too (%s): reading headers only", exc)
        headers_only = email.parser.BytesHeaderParser(policy=email.policy.compat32)
        tree = headers_only.parsebytes(raw, headersonly=True)
        return tree, "headers-only", [reason, f"email: {type(exc).__name__}: {exc}"], None


# mail-parser's own guard (RecursionError made MailParserRecursionError) around a tree we build.
_GUARDED = getattr(mailparser.MailParser, "_parse_guarded", None)


def _cut(raw: bytes) -> fastmime.Cut | None:
    if _GUARDED is None:
        return None
    try:
        return fastmime.cut(raw)
    except Exception:  # a fault here must not cost the mail: it is parsed whole
        log.warning("cannot cut the base64 runs out: parsing the whole mail", exc_info=True)
        return None


def _parse_cut(cut: fastmime.Cut) -> mailparser.MailParser:
    """``MailParser.from_bytes(raw)``, on the cut mail: the same frames down to the parser.

    The parser recurses once per nesting level: called from as deep a
    frame as mail-parser calls it, it gives up at the same depth.
    """
    assert _GUARDED is not None
    return _GUARDED(lambda: cut.settle(email.message_from_bytes(cut.data, _class=fastmime.CutPart)))


class _Walker:
    """Sorts the leaves of a MIME tree into body text, attachments and inline parts.

    ``container`` is set when the tree is a forwarded mail's: its files name
    it, and mail forwarded inside it is not opened (one level deep).
    """

    def __init__(
        self, budget: Budget, container: str | None = None, cut: fastmime.Cut | None = None
    ) -> None:
        self.budget = budget
        self.container = container
        self.cut = cut
        self.attachments: list[Attachment] = []
        self.containers: list[Container] = []
        self.inline_parts: list[InlinePart] = []
        self.texts: list[str] = []
        self.htmls: list[str] = []
        self.defects: list[str] = []
        self.calendar_methods: list[str] = []

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
        if content_type in _CALENDAR_TYPES and self.container is None:
            self.calendar_methods.append(self.calendar_method(part))
        if content_type in ("message/rfc822", "message/global"):
            name = filename or self.forwarded_name(part)
            forwarded = self.add_attachment(part, content_type, name)
            if self.container is None:
                self.open_forwarded(part, forwarded)
        elif filename:
            self.open(self.add_attachment(part, content_type, filename))
        elif disposition == "attachment":
            self.open(self.add_attachment(part, content_type, None))
        elif content_id and part.get_content_maintype() != "text":
            self.inline_parts.append(InlinePart(content_type, content_id, len(self.payload(part))))
        elif content_type == "text/plain" or part.get_content_maintype() == "multipart":
            self.texts.append(decode_bytes(self.payload(part), part.get_content_charset()))
        elif content_type == "text/html":
            self.htmls.append(decode_bytes(self.payload(part), part.get_content_charset()))
        elif part.get_content_maintype() != "text" and self.payload(part):
            self.open(self.add_attachment(part, content_type, None))

    def calendar_method(self, part: EmailMessage) -> str:
        """The iTIP method a calendar part declares (Content-Type, else its METHOD line)."""
        declared = header_param(part, "content-type", "method")
        if declared:
            return declared.strip().upper()
        found = _METHOD_LINE.search(self.payload(part)[:65536])
        return found.group(1).decode("ascii").upper() if found else ""

    def payload(self, part: EmailMessage) -> bytes:
        if part.is_multipart():
            return self.flatten(part)
        try:
            data = part.get_payload(decode=True)
        except Exception as exc:  # a body the library cannot decode: keep its raw octets
            self.defects.append(f"payload: {type(exc).__name__}: {shown(str(exc))}")
            raw = part.get_payload()
            return raw.encode("utf-8", "surrogateescape") if isinstance(raw, str) else b""
        return data if isinstance(data, bytes) else b""

    def flatten(self, part: EmailMessage) -> bytes:
        """The part as bytes, as the standard library writes it, base64 runs cut out or not."""
        return self.cut.flatten(part) if self.cut is not None else part.as_bytes()

    def forwarded_name(self, part: EmailMessage) -> str:
        inner = part.get_payload()
        subject = ""
        if isinstance(inner, list) and inner and isinstance(inner[0], EmailMessage):
            subject = header_text(raw_header(inner[0], "subject") or "")
        return f"{subject or 'forwarded message'}.eml"

    def add_attachment(
        self, part: EmailMessage, content_type: str, filename: str | None
    ) -> Attachment:
        if part.is_multipart() and content_type.startswith("message/"):
            children = part.get_payload()
            inner = children[0] if isinstance(children, list) and children else None
            data = self.flatten(inner) if isinstance(inner, EmailMessage) else b""
        else:
            data = self.payload(part)
        named = bool(filename)
        if not filename:
            guess = _EXTRA_TYPES.get(content_type) or mimetypes.guess_extension(content_type)
            filename = f"attachment-{len(self.attachments) + 1}{guess or ''}"
        attachment = Attachment(
            filename=storable(filename),
            content_type=content_type,
            data=data,
            sha256=hashlib.sha256(data).hexdigest(),
            named=named,
            container=self.container,
        )
        self.attachments.append(attachment)
        return attachment

    def open(self, attachment: Attachment) -> None:
        """Take the files out of an archive or winmail.dat; they follow it in the list."""
        # A made-up name says what the declared type is (attachment-1.docx): it counts too.
        kind = kind_of(attachment.filename, attachment.content_type, attachment.data)
        if kind is None:
            return
        unpacked = unpack(kind, attachment.data, self.budget)
        listing = tuple(storable(entry) for entry in unpacked.listing)
        self.containers.append(
            Container(
                attachment.filename,
                kind,
                attachment.sha256,
                listing,
                unpacked.refused,
                container=self.container,
            )
        )
        for entry in unpacked.entries:
            base = re.split(r"[\\/]", entry.name)[-1]
            if not base.strip():
                continue
            extension = split_extension(base)[1]
            self.attachments.append(
                Attachment(
                    filename=storable(base),
                    content_type=_TYPES.get(extension)
                    or mimetypes.guess_type(f"file{extension}")[0]
                    or "application/octet-stream",
                    data=entry.data,
                    sha256=hashlib.sha256(entry.data).hexdigest(),
                    container=attachment.filename,
                )
            )

    def open_forwarded(self, part: EmailMessage, forwarded: Attachment) -> None:
        """A forwarded mail's files count as this mail's; its own forwards stay shut."""
        inner = part.get_payload()
        if not (isinstance(inner, list) and inner and isinstance(inner[0], EmailMessage)):
            self.containers.append(
                Container(forwarded.filename, FORWARDED, forwarded.sha256, refused=DAMAGED)
            )
            return
        walker = _Walker(self.budget, container=forwarded.filename, cut=self.cut)
        try:
            walker.walk(inner[0])
        except Exception as exc:  # as for the mail itself: what was read so far still counts
            # An error's text may quote a name the sender chose: shown escaped.
            log.warning("cannot walk a forwarded mail: %s", shown(str(exc)), exc_info=True)
            walker.defects.append(f"forwarded walk: {type(exc).__name__}: {shown(str(exc))}")
        own = tuple(a.filename for a in walker.attachments if a.container == forwarded.filename)
        text = "\n".join([*walker.texts, *walker.htmls])
        self.containers.append(
            Container(forwarded.filename, FORWARDED, forwarded.sha256, own, text=text)
        )
        self.containers.extend(walker.containers)
        self.attachments.extend(walker.attachments)
        self.defects.extend(walker.defects)


def _message(
    raw: bytes, tree: EmailMessage, parsed_by: str, walker: _Walker, defects: tuple[str, ...]
) -> Message:
    headers = tuple((str(k).lower(), header_text(str(v))) for k, v in tree.raw_items())
    addresses = _addresses(raw_headers(tree, "from"))
    reply_to = _addresses(raw_headers(tree, "reply-to"))
    html = "\n".join(walker.htmls)
    text = "\n".join(walker.texts) or _strip_html(html)
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
        html=html,
        containers=tuple(walker.containers),
        calendar_methods=tuple(walker.calendar_methods),
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
