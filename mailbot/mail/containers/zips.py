"""A .zip read in memory: its directory checked against the limits before anything is inflated.

zipfile reads the whole central directory into objects, so its size and the
entry count it declares are read from the end record first. Entries are
inflated only when every declared size and ratio is within the limits, and
zipfile never returns more than an entry declares; a lie shows as a CRC
error, which refuses the archive as damaged.
"""

from __future__ import annotations

import io
import logging
import struct
import zipfile
import zlib

from mailbot.mail.containers.entries import (
    DAMAGED,
    ENCRYPTED,
    LIMITS,
    Budget,
    Entry,
    Unpacked,
    decode_name,
    is_junk,
)
from mailbot.mail.names import shown

log = logging.getLogger(__name__)

_END = b"PK\x05\x06"
_END64 = b"PK\x06\x06"
_LOCATOR64 = b"PK\x06\x07"
_UNICODE_PATH = 0x7075  # Info-ZIP's UTF-8 copy of a name, written by 7-Zip and WinRAR
_UTF8_FLAG = 0x800
_ENCRYPTED_FLAG = 0x1
# Central directory bytes allowed per entry: a header, a long name and extras.
_DIRECTORY_PER_ENTRY = 4096


def read_zip(data: bytes, budget: Budget) -> Unpacked:
    limits = budget.limits
    directory = _directory(data)
    if directory is None:
        return Unpacked(refused=DAMAGED)
    count, size = directory
    if count > limits.max_archive_entries or size > (count + 1) * _DIRECTORY_PER_ENTRY:
        return Unpacked(refused=LIMITS)
    try:
        archive = zipfile.ZipFile(io.BytesIO(data))
        members = [m for m in archive.infolist() if not m.is_dir()]
    except Exception as exc:  # zipfile raises many kinds on hostile bytes: the zip is damaged
        log.info("zip not readable: %s: %s", type(exc).__name__, shown(str(exc)))
        return Unpacked(refused=DAMAGED)
    with archive:
        named = [(member, entry_name(member)) for member in members]
        named = [(member, name) for member, name in named if not is_junk(name)]
        listing = tuple(name for _member, name in named)
        if len(members) > limits.max_archive_entries:
            return Unpacked(listing=listing, refused=LIMITS)
        if any(member.flag_bits & _ENCRYPTED_FLAG for member, _name in named):
            return Unpacked(listing=listing, refused=ENCRYPTED)
        total = sum(member.file_size for member, _name in named)
        if (
            any(member.file_size > limits.max_archive_member for member, _name in named)
            or any(_ratio(member) > limits.max_archive_ratio for member, _name in named)
            or not budget.spend(total)
        ):
            return Unpacked(listing=listing, refused=LIMITS)
        entries = []
        try:
            for member, name in named:
                with archive.open(member) as stream:
                    entries.append(Entry(name, stream.read(member.file_size)))
        except Exception as exc:  # CRC error, unknown compression, truncated data
            log.info("zip entry not readable: %s: %s", type(exc).__name__, shown(str(exc)))
            return Unpacked(listing=listing, refused=DAMAGED)
    return Unpacked(tuple(entries), listing)


def _ratio(member: zipfile.ZipInfo) -> float:
    # Small entries may compress a lot (a text of spaces) without costing anything.
    if member.file_size <= 1 << 20:
        return 0.0
    return member.file_size / max(member.compress_size, 1)


def entry_name(member: zipfile.ZipInfo) -> str:
    """An entry's name as the sender's archiver meant it.

    With the UTF-8 flag the name is UTF-8. Without it, zipfile reads CP437,
    while Chinese Windows archivers write GBK: the original bytes are taken
    back and decoded as UTF-8 where valid, else GB18030, unless an Info-ZIP
    Unicode path field carries the name in UTF-8.
    """
    if member.flag_bits & _UTF8_FLAG:
        return member.orig_filename
    raw = member.orig_filename.encode("cp437")
    unicode_path = _unicode_path(member.extra, raw)
    if unicode_path is not None:
        return unicode_path
    if raw.isascii():
        return member.orig_filename
    return decode_name(raw)


def _unicode_path(extra: bytes, raw: bytes) -> str | None:
    offset = 0
    while offset + 4 <= len(extra):
        tag, size = struct.unpack_from("<HH", extra, offset)
        body = extra[offset + 4 : offset + 4 + size]
        offset += 4 + size
        # version 1, then the CRC-32 of the name it stands for, then UTF-8
        if (
            tag == _UNICODE_PATH
            and len(body) > 5
            and body[0] == 1
            and struct.unpack_from("<I", body, 1)[0] == zlib.crc32(raw)
        ):
            return body[5:].decode("utf-8", errors="replace")
    return None


def _directory(data: bytes) -> tuple[int, int] | None:
    """(entry count, central directory size) as the end record declares them; None if absent."""
    at = data.rfind(_END, max(0, len(data) - 22 - 0xFFFF))
    if at < 0 or len(data) - at < 22:
        return None
    count, size = struct.unpack_from("<HI", data, at + 10)
    if count == 0xFFFF or size == 0xFFFFFFFF:  # Zip64: the real figures are elsewhere
        locator = at - 20
        if locator < 0 or data[locator : locator + 4] != _LOCATOR64:
            return None
        record = locator - 56
        if record < 0 or data[record : record + 4] != _END64:
            return None
        count, size = struct.unpack_from("<QQ", data, record + 32)
    return count, size
