"""Build winmail.dat (TNEF) files as Outlook writes them, for the container tests.

tnefparse only reads TNEF. This writes the parts Outlook puts in a
winmail.dat that carries files ([MS-OXTNEF]): the signature and key, the
TNEF version, the OEM code page and the message class at message level;
then per file the rendering data (which starts an attachment), the title in
the code page, the data, and the MAPI properties with the long file name in
UTF-16. Every attribute is level, id, type, length, data and a checksum.
"""

from __future__ import annotations

import struct
from collections.abc import Sequence

SIGNATURE = 0x223E9F78
LVL_MESSAGE, LVL_ATTACHMENT = 0x01, 0x02
# Attribute ids and their types (atpString 0x0001, atpWord 0x0007, atpByte 0x0006, atpDword 0x0008)
ATT_TNEF_VERSION = (0x9006, 0x0008)
ATT_OEM_CODEPAGE = (0x9007, 0x0006)
ATT_MESSAGE_CLASS = (0x8008, 0x0007)
ATT_MAPI_PROPS = (0x9003, 0x0006)
ATT_ATTACH_REND_DATA = (0x9002, 0x0006)
ATT_ATTACH_TITLE = (0x8010, 0x0001)
ATT_ATTACH_DATA = (0x800F, 0x0006)
ATT_ATTACHMENT = (0x9005, 0x0006)
# MAPI property types and tags
PT_LONG, PT_STRING8, PT_UNICODE = 0x0003, 0x001E, 0x001F
PR_BODY = 0x1000
PR_ATTACH_METHOD = 0x3705  # 1: ATTACH_BY_VALUE
PR_ATTACH_LONG_FILENAME = 0x3707


def _attribute(level: int, attribute: tuple[int, int], data: bytes) -> bytes:
    ident, kind = attribute
    checksum = sum(data) & 0xFFFF
    return struct.pack("<BHHI", level, ident, kind, len(data)) + data + struct.pack("<H", checksum)


def _padded(value: bytes) -> bytes:
    return struct.pack("<II", 1, len(value)) + value + b"\0" * (-len(value) % 4)


def _mapi(props: Sequence[tuple[int, int, bytes | int]]) -> bytes:
    out = struct.pack("<I", len(props))
    for kind, tag, value in props:
        out += struct.pack("<HH", kind, tag)
        if isinstance(value, int):
            out += struct.pack("<i", value)
        else:
            out += _padded(value)
    return out


def tnef_bytes(
    files: Sequence[tuple[str, bytes]],
    *,
    codepage: int = 936,
    long_names: bool = True,
    body: str = "您好，附件是我们的合作专项建议书，请查收。",
) -> bytes:
    """A winmail.dat carrying ``files`` (name, data), from Outlook on Chinese Windows.

    The short title is written in the OEM code page (GBK for 936); with
    ``long_names`` the MAPI long file name carries the name in UTF-16, as
    Outlook writes it.
    """
    codec = f"cp{codepage}"
    out = struct.pack("<IH", SIGNATURE, 0x0C5A)
    out += _attribute(LVL_MESSAGE, ATT_TNEF_VERSION, struct.pack("<I", 0x00010000))
    out += _attribute(LVL_MESSAGE, ATT_OEM_CODEPAGE, struct.pack("<II", codepage, 0))
    out += _attribute(LVL_MESSAGE, ATT_MESSAGE_CLASS, b"IPM.Microsoft Mail.Note\0")
    text = body.encode(codec, "replace") + b"\0"
    out += _attribute(LVL_MESSAGE, ATT_MAPI_PROPS, _mapi([(PT_STRING8, PR_BODY, text)]))
    for position, (name, data) in enumerate(files):
        # Rendering: attachment type 1 (a file), its position in the body, no icon size.
        rendering = struct.pack("<HiHHI", 1, position, 0xFFFF, 0xFFFF, 0)
        out += _attribute(LVL_ATTACHMENT, ATT_ATTACH_REND_DATA, rendering)
        out += _attribute(LVL_ATTACHMENT, ATT_ATTACH_TITLE, name.encode(codec, "replace") + b"\0")
        out += _attribute(LVL_ATTACHMENT, ATT_ATTACH_DATA, data)
        props: list[tuple[int, int, bytes | int]] = [(PT_LONG, PR_ATTACH_METHOD, 1)]
        if long_names:
            props.append((PT_UNICODE, PR_ATTACH_LONG_FILENAME, name.encode("utf-16-le") + b"\0\0"))
        out += _attribute(LVL_ATTACHMENT, ATT_ATTACHMENT, _mapi(props))
    return out
