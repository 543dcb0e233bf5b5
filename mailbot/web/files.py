"""Files out of the desk: stored blobs by sha256, under a name safe to save."""

from __future__ import annotations

import re
import unicodedata
from urllib.parse import quote

from sqlalchemy import select
from sqlalchemy.orm import Session

from mailbot.mail.message import split_extension
from mailbot.store.models import Attachment, Mail, Version

SHA256 = re.compile(r"[0-9a-f]{64}")

# Served under their own type only when the browser cannot be led to run them.
_TYPES = {
    ".pdf": "application/pdf",
    ".docx": "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
    ".doc": "application/msword",
    ".eml": "message/rfc822",
}


def safe_filename(name: str, fallback: str = "file") -> str:
    """A name fit for a download: no control, format (bidi) or path characters."""
    cleaned = "".join(
        "_" if ch in '/\\"' else ch
        for ch in unicodedata.normalize("NFC", name)
        # Cc: CR, LF, NUL...; Cf: the right-to-left override and other invisible marks.
        if unicodedata.category(ch) not in ("Cc", "Cf", "Zl", "Zp")
    )
    cleaned = " ".join(cleaned.split()).strip(" .")
    return cleaned[:200] or fallback


def content_disposition(name: str) -> str:
    """``attachment`` with an ASCII filename and the full name as RFC 5987 UTF-8."""
    safe = safe_filename(name)
    stem, dot, extension = safe.rpartition(".")
    if not dot or not re.fullmatch(r"[A-Za-z0-9]{1,8}", extension):
        stem, extension = safe, ""
    ascii_stem = unicodedata.normalize("NFKD", stem).encode("ascii", "ignore").decode("ascii")
    ascii_stem = re.sub(r"[^A-Za-z0-9._ +-]", "_", ascii_stem).strip(" ._")
    if not re.search(r"[A-Za-z0-9]", ascii_stem):
        ascii_stem = "file"  # a Chinese name: its ASCII shadow would be bare punctuation
    ascii_name = f"{ascii_stem}.{extension}" if extension else ascii_stem
    return f"attachment; filename=\"{ascii_name}\"; filename*=UTF-8''{quote(safe, safe='')}"


def content_type(name: str) -> str:
    """The type a download is served as, by its name read as Windows reads it (``x.pdf.``)."""
    return _TYPES.get(split_extension(name)[1], "application/octet-stream")


def blob_name(
    session: Session, sha256: str, *, version_id: int | None = None, mail_id: int | None = None
) -> str | None:
    """The name a blob goes by: an attachment's file name or a mail's .eml; None if unknown.

    The same bytes may come under several names (one stamped PDF sent by two
    applicants); the version or mail the link came from picks the name.
    """
    if not SHA256.fullmatch(sha256):
        return None
    if version_id is not None:
        version = session.get(Version, version_id)
        for item in version.files if version is not None else []:
            if item.get("sha256") == sha256 and item.get("filename"):
                return str(item["filename"])
    attachments = select(Attachment.filename).where(Attachment.sha256 == sha256)
    if mail_id is not None:
        filename = session.scalar(attachments.where(Attachment.mail_id == mail_id))
        if filename is not None:
            return filename
    filename = session.scalar(attachments.order_by(Attachment.id))
    if filename is not None:
        return filename
    mail = session.scalar(select(Mail).where(Mail.raw_sha256 == sha256).order_by(Mail.id))
    if mail is not None:
        who = mail.submission.reference if mail.submission else "mail"
        return f"{who}-{mail.id}.eml"
    return None
