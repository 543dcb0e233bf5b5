"""Headers and bodies as clients write them: content types, encoded words, parameters, dates."""

from __future__ import annotations

import base64
import binascii
import re
import string
from collections.abc import Sequence
from datetime import datetime, timedelta

CRLF = "\r\n"


# ---------------------------------------------------------------------------
# content types

_EXT_TYPES: dict[str, str] = {
    ".pdf": "application/pdf",
    ".docx": "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
    ".doc": "application/msword",
    ".xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
    ".xls": "application/vnd.ms-excel",
    ".pptx": "application/vnd.openxmlformats-officedocument.presentationml.presentation",
    ".ppt": "application/vnd.ms-powerpoint",
    ".rtf": "application/rtf",
    ".odt": "application/vnd.oasis.opendocument.text",
    ".txt": "text/plain",
    ".csv": "text/csv",
    ".zip": "application/zip",
    ".rar": "application/x-rar-compressed",
    ".7z": "application/x-7z-compressed",
    ".jpg": "image/jpeg",
    ".jpeg": "image/jpeg",
    ".png": "image/png",
    ".gif": "image/gif",
    ".tif": "image/tiff",
    ".tiff": "image/tiff",
}

_MAGIC_TYPES: tuple[tuple[bytes, str], ...] = (
    (b"%PDF-", "application/pdf"),
    (b"\x89PNG\r\n\x1a\n", "image/png"),
    (b"\xff\xd8\xff", "image/jpeg"),
    (b"GIF8", "image/gif"),
)


def guess_content_type(filename: str | None, data: bytes = b"") -> str:
    """The MIME type a client would label this file with.

    A fixed table rather than mimetypes, so results don't depend on /etc/mime.types.
    """
    if filename:
        dot = filename.rfind(".")
        if dot >= 0:
            found = _EXT_TYPES.get(filename[dot:].lower())
            if found:
                return found
    for magic, ctype in _MAGIC_TYPES:
        if data.startswith(magic):
            return ctype
    return "application/octet-stream"


# ---------------------------------------------------------------------------
# low-level encoders


def crlf(text: str) -> str:
    return re.sub(r"\r\n|\r|\n", CRLF, text)


def b64_body(data: bytes, width: int = 76) -> bytes:
    enc = base64.b64encode(data)
    return b"".join(enc[i : i + width] + b"\r\n" for i in range(0, len(enc), width))


def qp_body(data: bytes) -> bytes:
    # Encoding line by line keeps hard line breaks as real CRLFs instead of =0D=0A.
    lines = data.split(b"\r\n")
    out = [binascii.b2a_qp(line, quotetabs=False, istext=False, header=False) for line in lines]
    return b"\r\n".join(chunk.replace(b"=\n", b"=\r\n") for chunk in out)


def encoded_words(
    text: str,
    label: str,
    codec: str,
    max_bytes: int = 45,
    *,
    split_chars: bool = False,
) -> list[str]:
    """RFC 2047 B-encoded words for text, encoded with codec but labelled label.

    split_chars=True cuts the byte string every max_bytes regardless of character
    boundaries, the way some clients do (RFC 2047 forbids it; decoders that decode
    each word on its own then produce mojibake).
    """
    chunks: list[bytes] = []
    if split_chars:
        raw = text.encode(codec)
        chunks = [raw[i : i + max_bytes] for i in range(0, len(raw), max_bytes)]
    else:
        cur = b""
        for ch in text:
            enc = ch.encode(codec)
            if cur and len(cur) + len(enc) > max_bytes:
                chunks.append(cur)
                cur = b""
            cur += enc
        if cur:
            chunks.append(cur)
    return [f"=?{label}?B?{base64.b64encode(c).decode('ascii')}?=" for c in chunks]


ATTR_CHARS = frozenset(string.ascii_letters + string.digits + "!#$&+-.^_`|~")


def rfc2231_params(
    param: str,
    value: str,
    label: str = "UTF-8",
    *,
    segment: int = 60,
    split_chars: bool = False,
) -> list[str]:
    """RFC 2231 extended parameter(s): `param*=`, or continuations `param*0*=`, `param*1*=`, ...

    Values whose percent-encoding is longer than segment are continued; with
    split_chars=True a segment may end inside a multi-byte character (as Apple
    Mail and Thunderbird do), which is legal in RFC 2231 and must be re-joined
    as bytes before decoding.
    """
    per_char: list[list[str]] = []
    for ch in value:
        per_char.append(
            [chr(b) if chr(b) in ATTR_CHARS else f"%{b:02X}" for b in ch.encode("utf-8")]
        )
    prefix = f"{label}''"
    total = "".join("".join(toks) for toks in per_char)
    if len(total) <= segment:
        return [f"{param}*={prefix}{total}"]
    units: list[str] = (
        [tok for toks in per_char for tok in toks]
        if split_chars
        else ["".join(toks) for toks in per_char]
    )
    segments: list[str] = []
    cur = ""
    for unit in units:
        if cur and len(cur) + len(unit) > segment:
            segments.append(cur)
            cur = ""
        cur += unit
    if cur:
        segments.append(cur)
    return [f"{param}*{i}*={prefix if i == 0 else ''}{seg}" for i, seg in enumerate(segments)]


def quote(value: str) -> str:
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def is_ascii(text: str) -> bool:
    return all(ord(c) < 128 for c in text)


def is_token(text: str) -> bool:
    return bool(text) and all(c in ATTR_CHARS for c in text)


def fold_params(name: str, value: str, params: Sequence[str], style: str) -> str:
    """A structured header with parameters, folded the way a given client folds it."""
    if not params:
        return f"{name}: {value}"
    if style == "tab":  # Outlook, Foxmail, QQ, Apple: every parameter on its own tab-indented line
        return f"{name}: {value};" + "".join(
            f"{CRLF}\t{p}" + (";" if i < len(params) - 1 else "") for i, p in enumerate(params)
        )
    if style == "oneline":
        return f"{name}: {value}; " + "; ".join(params)
    # "fit" (Gmail, Coremail): fill the line, break as "; CRLF TAB" before it passes 78 columns
    line = f"{name}: {value}"
    out = ""
    for p in params:
        if len(line) + 2 + len(p) <= 78:
            line += f"; {p}"
        else:
            out += line + f"; {CRLF}\t"
            line = p
    return out + line


def rfc2822_date(dt: datetime, *, pad_day: bool = False) -> str:
    if dt.tzinfo is None or dt.utcoffset() is None:
        raise ValueError("date must be timezone-aware")
    days = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")
    months = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")
    off = dt.utcoffset() or timedelta(0)
    minutes = int(off.total_seconds()) // 60
    sign = "+" if minutes >= 0 else "-"
    hh, mm = divmod(abs(minutes), 60)
    day = f"{dt.day:02d}" if pad_day else str(dt.day)
    return (
        f"{days[dt.weekday()]}, {day} {months[dt.month - 1]} {dt.year} "
        f"{dt.hour:02d}:{dt.minute:02d}:{dt.second:02d} {sign}{hh:02d}{mm:02d}"
    )


def gmt_comment(dt: datetime) -> str:
    off = dt.utcoffset() or timedelta(0)
    minutes = int(off.total_seconds()) // 60
    sign = "+" if minutes >= 0 else "-"
    hh, mm = divmod(abs(minutes), 60)
    return f"(GMT{sign}{hh:02d}:{mm:02d})"


def filetime(dt: datetime) -> int:
    # Outlook derives Message-ID, boundaries and Thread-Index from the Windows FILETIME.
    return int((dt.timestamp() + 11644473600) * 10_000_000)


def cid(value: str) -> str:
    return value if value.startswith("<") else f"<{value}>"
