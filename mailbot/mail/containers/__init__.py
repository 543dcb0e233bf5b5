"""Files that hold other files: .zip archives and Outlook's winmail.dat, opened in memory.

Applicants zip their proposal, and Outlook wraps every attachment in
winmail.dat (TNEF); the files inside are what the call's rules judge. A
container is read from bytes in memory, never extracted to disk, within the
rules' ``[documents]`` limits (entries, bytes unpacked per entry and for the
whole mail, compression ratio); one that breaks a limit, is damaged or
encrypted, or is in a format mailbot does not open (.rar, .7z ...) is
refused, with the reason, and nothing is taken from it. Entry names are data:
they are decoded (CP437-labelled GBK as GB18030) and returned, never used as
paths.
"""

from __future__ import annotations

import re

from mailbot.mail.containers.entries import FORMAT, Budget, Unpacked
from mailbot.mail.message import windows_name

ZIP = "zip"
TNEF = "tnef"

# Compound extensions first: "x.tar.gz" is a tar.gz, not a gz.
_ARCHIVE_EXTENSION = re.compile(
    r"\.(tar\.gz|tar\.bz2|tar\.xz|tar\.zst|zip|zipx|rar|7z|tar|tgz|tbz2?|txz|gz|bz2|xz|zst"
    r"|cab|arj|lzh|lha|z|001)$",
    re.IGNORECASE,
)
_ARCHIVE_TYPES = {
    "application/zip": ZIP,
    "application/x-zip-compressed": ZIP,
    "application/x-zip": ZIP,
    "application/x-rar-compressed": "rar",
    "application/x-rar": "rar",
    "application/vnd.rar": "rar",
    "application/x-7z-compressed": "7z",
    "application/gzip": "gz",
    "application/x-gzip": "gz",
    "application/x-tar": "tar",
    "application/x-bzip2": "bz2",
    "application/x-xz": "xz",
    "application/vnd.ms-cab-compressed": "cab",
}
_MAGIC = (
    (b"PK\x03\x04", ZIP),
    (b"PK\x05\x06", ZIP),  # an empty zip
    (b"Rar!\x1a\x07", "rar"),
    (b"7z\xbc\xaf\x27\x1c", "7z"),
    (b"\x1f\x8b", "gz"),
    (b"BZh", "bz2"),
    (b"\xfd7zXZ\x00", "xz"),
    (b"MSCF", "cab"),
)
TNEF_SIGNATURE = b"\x78\x9f\x3e\x22"
_TNEF_TYPES = ("application/ms-tnef", "application/vnd.ms-tnef")
# Any other extension names a file in its own right (.docx and .xlsx are zips too),
# known or not: a .docx_ or a .文档 is never opened as an archive.
_OPAQUE_EXTENSION = re.compile(r"\.(?!dat$|bin$|tmp$)[^.\s]{1,16}$")


def kind_of(filename: str, content_type: str, data: bytes) -> str | None:
    """The container a file is: ZIP, TNEF, another archive's format ("rar", "7z"...), or None.

    The name decides first (a .docx is a zip inside, yet a document), read as
    Windows reads it (``建议书.docx.`` is a .docx); a file with any other
    extension is a file in its own right, never opened; only a file with no
    telling name is known by its declared type, then by its first bytes.
    """
    lowered = windows_name(filename).lower()
    if content_type in _TNEF_TYPES or lowered == "winmail.dat":
        return TNEF
    match = _ARCHIVE_EXTENSION.search(lowered)
    if match:
        return match.group(1).lower()
    if _OPAQUE_EXTENSION.search(lowered):
        return None
    if content_type in _ARCHIVE_TYPES:
        return _ARCHIVE_TYPES[content_type]
    if data.startswith(TNEF_SIGNATURE):
        return TNEF
    return next((kind for magic, kind in _MAGIC if data.startswith(magic)), None)


def unpack(kind: str, data: bytes, budget: Budget) -> Unpacked:
    """The files inside a container of ``kind`` (see kind_of), within the budget's limits."""
    if kind == ZIP:
        from mailbot.mail.containers.zips import read_zip

        return read_zip(data, budget)
    if kind == TNEF:
        from mailbot.mail.containers.tnef import read_tnef

        return read_tnef(data, budget)
    return Unpacked(refused=FORMAT)
