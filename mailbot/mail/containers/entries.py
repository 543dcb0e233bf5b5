"""What a container yields: the files taken out, why none were, and the bytes left to unpack.

The readers of each format (zips.py, tnef.py) and the dispatcher
(``mailbot.mail.containers``) all speak in these terms; entry names are
decoded here, once, the same way for every format.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from mailbot.calls import DocumentsSection

# Why nothing was taken from a container (the checks put each into words).
FORMAT = "format"  # an archive format mailbot does not open
DAMAGED = "damaged"
ENCRYPTED = "encrypted"
LIMITS = "limits"  # over the [documents] limits


@dataclass(frozen=True)
class Entry:
    """One file taken out of a container: its name as stored (folders included) and its bytes."""

    name: str
    data: bytes


@dataclass(frozen=True)
class Unpacked:
    """What a container held: the files taken out, or why none was."""

    entries: tuple[Entry, ...] = ()
    listing: tuple[str, ...] = ()  # every file name seen inside, for the applicant
    refused: str | None = None  # FORMAT, DAMAGED, ENCRYPTED or LIMITS


class Budget:
    """The bytes still to be unpacked from one mail's containers, all together."""

    def __init__(self, limits: DocumentsSection) -> None:
        self.limits = limits
        self.left = limits.max_archive_uncompressed

    def spend(self, size: int) -> bool:
        """Take ``size`` bytes from the budget; False (and nothing taken) when too few are left."""
        if size > self.left:
            return False
        self.left -= size
        return True


def decode_name(raw: bytes) -> str:
    """An entry name's bytes as text: UTF-8 where valid, else GB18030 (Chinese Windows).

    Bytes that are neither are read as CP437, the zip format's own code page.
    """
    for codec in ("utf-8", "gb18030"):
        try:
            return raw.decode(codec)
        except UnicodeDecodeError:
            continue
    return raw.decode("cp437")


def is_junk(name: str) -> bool:
    """Files that archivers add on their own (macOS resource forks, thumbnails caches)."""
    parts = re.split(r"[\\/]", name)
    base = parts[-1]
    return (
        "__MACOSX" in parts
        or base.startswith("._")
        or base.lower() in (".ds_store", "thumbs.db", "desktop.ini")
    )
