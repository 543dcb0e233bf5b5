"""One mail as mailbot sees it: headers, body, attachments and the containers they came in.

Plain data, built by mailbot.mail.parsing and read by the checks. Every text is
decoded already; a file name is the sender's data, kept as sent (less what
no database can hold, see :func:`storable`) and shown through mailbot.mail.names.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import datetime

FORWARDED = "message"  # the kind of container a forwarded mail is


@dataclass(frozen=True)
class Attachment:
    """A file the sender attached, its name decoded as the sender meant it."""

    filename: str
    content_type: str
    data: bytes = field(repr=False)
    sha256: str
    named: bool = True  # False: the sender gave no name and mailbot made one up
    container: str | None = None  # the archive, winmail.dat or forwarded mail it came in
    # Set when ``data`` was left in the blob store (under ``sha256``): the file's size.
    stored_size: int | None = None

    @property
    def size(self) -> int:
        return len(self.data) if self.stored_size is None else self.stored_size

    @property
    def in_store(self) -> bool:
        """The bytes are in the blob store only (``data`` is empty)."""
        return self.stored_size is not None

    @property
    def stem(self) -> str:
        return split_extension(self.filename)[0]

    @property
    def extension(self) -> str:
        return split_extension(self.filename)[1]


@dataclass(frozen=True)
class Container:
    """An attachment that holds files: an archive, winmail.dat, or a forwarded mail."""

    filename: str
    kind: str  # "zip", "tnef", "message", or an archive mailbot does not open: "rar", "7z"...
    sha256: str
    listing: tuple[str, ...] = ()  # the names of the files inside, as stored: data, not paths
    refused: str | None = None  # why nothing was taken out (mailbot.mail.containers: FORMAT...)
    text: str = ""  # a forwarded mail's own body, text and HTML
    container: str | None = None  # the forwarded mail this one came in

    @property
    def opened(self) -> bool:
        return self.refused is None


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
    html: str = ""  # the HTML body parts as sent (links stay in it)
    containers: tuple[Container, ...] = ()
    # The iTIP METHOD (RFC 5546: "REQUEST", "CANCEL"...) of each calendar part, upper-cased.
    calendar_methods: tuple[str, ...] = ()

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
    """``("name", ".pdf")`` with the extension lower-cased; no extension gives ``""``.

    Dots and spaces after the extension (``建议书.docx.``, ``扫描件.pdf. ``) are
    dropped first, as Windows drops them when it saves the file.
    """
    name = windows_name(filename)
    match = re.fullmatch(r"(.*?)(\.[A-Za-z0-9]{1,8})", name, flags=re.DOTALL)
    if not match or not match.group(1).strip():
        return name, ""
    return match.group(1).strip(), match.group(2).lower()


def windows_name(filename: str) -> str:
    """The name as Windows would save it: white space around it and trailing dots gone."""
    return re.sub(r"[.\s]+$", "", filename.strip()) or filename.strip()


def storable(name: str) -> str:
    """A name as sent, less what no database column can hold (NUL, lone surrogates).

    PostgreSQL refuses NUL in text, and a mail that cannot be stored would
    stay in the mailbox for ever; U+2400 (␀) keeps the NUL visible.
    """
    name = name.replace("\x00", "\u2400")
    return name.encode("utf-8", "replace").decode("utf-8") if _LONE.search(name) else name


_LONE = re.compile("[\ud800-\udfff]")
