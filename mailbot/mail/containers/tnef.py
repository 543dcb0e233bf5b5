"""Outlook's winmail.dat (TNEF, application/ms-tnef): the attachments it carries.

Outlook sends a mail in its rich-text format as a plain body and one
winmail.dat; the applicant's Word and PDF files are inside. tnefparse reads
it in memory; the long file name (Unicode) is preferred to the short one.
"""

from __future__ import annotations

import logging
from typing import Any

from tnefparse import TNEF
from tnefparse.properties import MAPI_ATTACH_LONG_FILENAME

from mailbot.mail.containers.entries import DAMAGED, LIMITS, Budget, Entry, Unpacked, decode_name
from mailbot.mail.names import shown

log = logging.getLogger(__name__)


def read_tnef(data: bytes, budget: Budget) -> Unpacked:
    limits = budget.limits
    try:
        tnef = TNEF(data, do_checksum=False)
    except Exception as exc:  # tnefparse raises what struct and the codecs raise
        log.info("winmail.dat not readable: %s: %s", type(exc).__name__, shown(str(exc)))
        return Unpacked(refused=DAMAGED)
    titles = _titles(tnef)
    found: list[Entry] = []
    for index, attachment in enumerate(tnef.attachments, 1):
        payload = attachment.data
        if not isinstance(payload, bytes) or hasattr(attachment, "embed"):
            continue  # an embedded Outlook item, not a file
        title = titles[index - 1] if index <= len(titles) else ""
        found.append(Entry(_long_name(attachment) or title or f"attachment-{index}", payload))
    listing = tuple(entry.name for entry in found)
    if len(found) > limits.max_archive_entries or any(
        len(entry.data) > limits.max_archive_member for entry in found
    ):
        return Unpacked(listing=listing, refused=LIMITS)
    if not budget.spend(sum(len(entry.data) for entry in found)):
        return Unpacked(listing=listing, refused=LIMITS)
    return Unpacked(tuple(found), listing)


def _long_name(attachment: Any) -> str:
    """The attachment's long name (a MAPI property, in UTF-16 from Outlook), if it has one."""
    for prop in getattr(attachment, "mapi_attrs", ()):
        if prop.name == MAPI_ATTACH_LONG_FILENAME:
            value = prop.data
            if isinstance(value, bytes):
                return decode_name(value).strip("\x00")
            if isinstance(value, str):
                return value.strip("\x00")
    return ""


def _titles(tnef: Any) -> list[str]:
    """Each attachment's title attribute, in order, decoded here.

    tnefparse reads a title as UTF-8, while Outlook writes it in the
    sender's code page (GBK on Chinese Windows).
    """
    titles: list[str] = []
    for item in tnef.objects:
        if item.name == TNEF.ATTATTACHRENDDATA:  # what starts an attachment
            titles.append("")
        elif (
            item.level == TNEF.LVL_ATTACHMENT
            and item.name == TNEF.ATTATTACHTITLE
            and titles
            and isinstance(item.data, bytes)
        ):
            titles[-1] = decode_name(item.data.split(b"\x00", 1)[0])
    return titles
