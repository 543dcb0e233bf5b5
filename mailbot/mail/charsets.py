"""Turn the bytes of Chinese mail into the text its sender meant.

Clients label GBK text ``gb2312`` (names such as 喆, 堃, 镕 lie outside
GB2312), send raw 8-bit header bytes, and put RFC 2047 encoded words where
the standards forbid them (inside quoted file names). The standard library
and mail-parser both lose text in these cases, so the decoding lives here.
"""

from __future__ import annotations

import base64
import binascii
import codecs
import re
from email.message import Message as EmailMessage

# Labels whose real-world content is GBK or GB18030: read them as GB18030,
# the superset, so that nothing a Chinese client wrote is lost.
_ALIASES = {
    **dict.fromkeys(
        (
            "gb2312",
            "gbk",
            "x-gbk",
            "cp936",
            "ms936",
            "windows-936",
            "euc-cn",
            "x-euc-cn",
            "gb_2312-80",
            "csgb2312",
            "chinese",
            "iso-ir-58",
            "gb18030",
        ),
        "gb18030",
    ),
    **dict.fromkeys(("big5", "x-big5", "csbig5", "cn-big5"), "big5hkscs"),
    **dict.fromkeys(("ks_c_5601-1987", "euc-kr", "ks_c_5601"), "cp949"),
    **dict.fromkeys(("iso-8859-1", "latin1", "latin-1", "us-ascii", "ascii"), "cp1252"),
    "utf8": "utf-8",
}


def codec_for(label: str | None) -> str | None:
    """The Python codec to read a declared charset with, or None if unknown."""
    if not label:
        return None
    name = label.strip().strip('"').lower()
    name = _ALIASES.get(name, name)
    try:
        return codecs.lookup(name).name
    except LookupError:
        return None


def decode_bytes(data: bytes, label: str | None = None) -> str:
    """Decode text whose declared charset may be wrong, missing or unknown.

    Non-ASCII bytes that are valid UTF-8 are UTF-8, whatever the label says:
    GBK text is almost never valid UTF-8, while UTF-8 labelled gb2312 is a
    common client mistake. Otherwise the declared charset, then GB18030, are
    tried strictly, and the declared (or UTF-8) charset with replacement
    characters is the last resort.
    """
    declared = codec_for(label)
    tried: list[str] = []
    wide = declared is not None and declared.startswith(("utf-16", "utf-32"))
    for codec in (declared, "utf-8", "gb18030") if wide else ("utf-8", declared, "gb18030"):
        if codec is None or codec in tried:
            continue
        tried.append(codec)
        try:
            return data.decode(codec)
        except UnicodeDecodeError:
            continue
    return data.decode(declared or "utf-8", errors="replace")


_ENCODED_WORD = re.compile(
    r"=\?(?P<charset>[^?*\s]+)(?:\*[^?\s]*)?\?(?P<enc>[BbQq])\?(?P<text>[^?\s]*)\?="
)
_BETWEEN_WORDS = re.compile(r"^[ \t\r\n]*$")
_SURROGATES = re.compile("[\udc80-\udcff]")


def _word_bytes(enc: str, text: str) -> bytes | None:
    if enc in "Bb":
        cleaned = re.sub(r"[^A-Za-z0-9+/]", "", text)
        cleaned += "=" * (-len(cleaned) % 4)
        try:
            return base64.b64decode(cleaned)
        except (binascii.Error, ValueError):
            return None
    out = bytearray()
    i = 0
    while i < len(text):
        ch = text[i]
        if ch == "_":
            out.append(0x20)
        elif ch == "=" and re.fullmatch(r"[0-9A-Fa-f]{2}", text[i + 1 : i + 3]):
            out.append(int(text[i + 1 : i + 3], 16))
            i += 2
        else:
            out.extend(ch.encode("utf-8", "surrogateescape"))
        i += 1
    return bytes(out)


def decode_words(text: str) -> str:
    """Decode RFC 2047 encoded words wherever they stand in ``text``.

    Adjacent words of one charset are joined as bytes before decoding, since
    clients split multi-byte characters across words.
    """
    if "=?" not in text:
        return text
    pieces: list[str] = []
    pending = bytearray()
    pending_charset: str | None = None
    last_end = 0

    def flush() -> None:
        nonlocal pending_charset
        if pending_charset is not None:
            pieces.append(decode_bytes(bytes(pending), pending_charset))
        pending.clear()
        pending_charset = None

    for match in _ENCODED_WORD.finditer(text):
        between = text[last_end : match.start()]
        data = _word_bytes(match.group("enc"), match.group("text"))
        if data is None:  # not decodable: keep the word as it was written
            flush()
            pieces.append(between + match.group(0))
            last_end = match.end()
            continue
        adjacent = pending_charset is not None and _BETWEEN_WORDS.match(between)
        if not adjacent:
            flush()
            pieces.append(between)
        charset = match.group("charset").lower()
        if pending_charset is not None and codec_for(charset) != codec_for(pending_charset):
            flush()
        pending_charset = charset
        pending.extend(data)
        last_end = match.end()
    flush()
    pieces.append(text[last_end:])
    return "".join(pieces)


def unfold(value: str) -> str:
    return re.sub(r"\r?\n(?=[ \t])", "", value).replace("\r", "").replace("\n", "")


def raw_to_text(value: str) -> str:
    """A raw header value from the parser (8-bit bytes surrogate-escaped) to text."""
    if not _SURROGATES.search(value):
        return value
    return decode_bytes(value.encode("utf-8", "surrogateescape"))


def header_text(value: str) -> str:
    """A header's raw value to one line of text: raw 8-bit bytes and encoded words decoded."""
    text = decode_words(raw_to_text(unfold(value)))
    # A decoded word may carry a line break; a header copied into a reply must not.
    return re.sub(r"[\r\n\t]+", " ", text).strip()


def raw_header(message: EmailMessage, name: str) -> str | None:
    """The first raw value of header ``name``, before the library touches it."""
    for key, value in message.raw_items():
        if key.lower() == name.lower():
            return str(value)
    return None


def raw_headers(message: EmailMessage, name: str) -> list[str]:
    return [str(v) for k, v in message.raw_items() if k.lower() == name.lower()]


def header_param(message: EmailMessage, header: str, param: str) -> str | None:
    """A parameter such as ``filename`` decoded the way clients really send it.

    Handles RFC 2231 (``filename*=``, with continuations), RFC 2047 words
    inside quotes, and raw 8-bit UTF-8 or GBK bytes inside quotes.
    """
    raw = raw_header(message, header)
    if raw is None:
        return None
    scratch = EmailMessage()
    scratch[header] = raw_to_text(unfold(raw))
    value = scratch.get_param(param, header=header)
    if value is None:
        return None
    if isinstance(value, tuple):
        charset, _language, text = value
        # RFC 2231 values come back percent-decoded as Latin-1 code points.
        data = str(text).encode("latin-1", "replace")
        decoded = decode_bytes(data, charset or "utf-8")
    else:
        decoded = decode_words(str(value))
    return re.sub(r"[\r\n]+", "", decoded).strip()
