"""Build raw sample mails (bytes) that imitate what real mail clients send, for parser tests."""

from __future__ import annotations

import base64
import binascii
import io
import itertools
import random
import re
import string
import uuid
import zipfile
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from email.utils import format_datetime, parseaddr
from xml.sax.saxutils import escape as _xml_escape

__all__ = [
    "CLIENTS",
    "SAMPLE_STEM",
    "SAMPLE_SUBJECT",
    "Att",
    "broken_bad_base64",
    "broken_no_boundary",
    "broken_unknown_charset",
    "build_mail",
    "docx_bytes",
    "encoded_words",
    "guess_content_type",
    "pdf_bytes",
    "rfc2231_params",
]

CLIENTS: tuple[str, ...] = (
    "outlook",
    "foxmail",
    "qqmail",
    "coremail",
    "gmail",
    "applemail",
    "raw_utf8",
    "raw_gbk",
)

SAMPLE_STEM = "中国科学院植物研究所+张喆"
SAMPLE_SUBJECT = f"合作专项建议书：{SAMPLE_STEM}"

_CST = timezone(timedelta(hours=8))
_DEFAULT_DATE = datetime(2021, 7, 20, 10, 0, 0, tzinfo=_CST)
_CRLF = "\r\n"

# A per-process sequence makes every mail's Message-ID and boundaries unique,
# while string seeds keep a test run reproducible (str seeds are not hash-randomised).
_SEQ = itertools.count(1)


@dataclass
class Att:
    """One attachment or inline part of a sample mail."""

    filename: str | None
    data: bytes
    content_type: str = ""
    inline_cid: str | None = None


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


def _crlf(text: str) -> str:
    return re.sub(r"\r\n|\r|\n", _CRLF, text)


def _b64_body(data: bytes, width: int = 76) -> bytes:
    enc = base64.b64encode(data)
    return b"".join(enc[i : i + width] + b"\r\n" for i in range(0, len(enc), width))


def _qp_body(data: bytes) -> bytes:
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


_ATTR_CHARS = frozenset(string.ascii_letters + string.digits + "!#$&+-.^_`|~")


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
            [chr(b) if chr(b) in _ATTR_CHARS else f"%{b:02X}" for b in ch.encode("utf-8")]
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


def _quote(value: str) -> str:
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _is_ascii(text: str) -> bool:
    return all(ord(c) < 128 for c in text)


def _is_token(text: str) -> bool:
    return bool(text) and all(c in _ATTR_CHARS for c in text)


def _fold_params(name: str, value: str, params: Sequence[str], style: str) -> str:
    """A structured header with parameters, folded the way a given client folds it."""
    if not params:
        return f"{name}: {value}"
    if style == "tab":  # Outlook, Foxmail, QQ, Apple: every parameter on its own tab-indented line
        return f"{name}: {value};" + "".join(
            f"{_CRLF}\t{p}" + (";" if i < len(params) - 1 else "") for i, p in enumerate(params)
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
            out += line + f"; {_CRLF}\t"
            line = p
    return out + line


def _rfc2822_date(dt: datetime, *, pad_day: bool = False) -> str:
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


def _gmt_comment(dt: datetime) -> str:
    off = dt.utcoffset() or timedelta(0)
    minutes = int(off.total_seconds()) // 60
    sign = "+" if minutes >= 0 else "-"
    hh, mm = divmod(abs(minutes), 60)
    return f"(GMT{sign}{hh:02d}:{mm:02d})"


def _filetime(dt: datetime) -> int:
    # Outlook derives Message-ID, boundaries and Thread-Index from the Windows FILETIME.
    return int((dt.timestamp() + 11644473600) * 10_000_000)


def _cid(value: str) -> str:
    return value if value.startswith("<") else f"<{value}>"


# ---------------------------------------------------------------------------
# MIME tree


@dataclass
class _Part:
    headers: list[str] = field(default_factory=list)
    body: bytes = b""
    subtype: str = ""  # set for multipart containers
    children: list[_Part] = field(default_factory=list)
    boundary: str = ""


@dataclass
class _Ctx:
    client: str
    rng: random.Random
    subject: str
    sender: tuple[str, str]
    to: str
    date: datetime
    received_at: datetime | None
    body: str
    reply_to: str | None
    message_id: str | None
    in_reply_to: str | None
    extra: Sequence[tuple[str, str]]

    @property
    def domain(self) -> str:
        addr = self.sender[1]
        return addr.rsplit("@", 1)[1] if "@" in addr else "localhost"

    @property
    def local(self) -> str:
        return self.sender[1].split("@", 1)[0]


class _Client:
    """Common behaviour; each subclass overrides what its client really does differently."""

    label = "UTF-8"  # charset label written into encoded words and charset=
    codec = "utf-8"  # codec actually used for the bytes
    raw_codec = "utf-8"  # how header text is turned into bytes (matters only for raw 8-bit clients)
    fold = f"{_CRLF}\t"
    subject_word_bytes = 42
    subject_split_chars = False
    ct_style = "tab"
    cd_style = "tab"
    preamble = ""
    base64_width = 76
    text_cte = "base64"
    html_cte = "base64"
    generic_attachment_type: str | None = None  # clients that label every attachment the same way

    def __init__(self, ctx: _Ctx) -> None:
        self.ctx = ctx
        self.rng = ctx.rng
        self._multipart_index = 0

    # -- header helpers ---------------------------------------------------
    def words(self, text: str, max_bytes: int | None = None) -> list[str]:
        return encoded_words(
            text,
            self.label,
            self.codec,
            max_bytes or self.subject_word_bytes,
            split_chars=self.subject_split_chars,
        )

    def hdr_text(self, text: str) -> str:
        if _is_ascii(text):
            return text
        return self.fold.join(self.words(text))

    def one_word(self, text: str) -> str:
        # display names and filenames are written as one word however long, as clients do
        return encoded_words(text, self.label, self.codec, 10_000)[0]

    def addr(self, name: str, address: str) -> str:
        if not name:
            return address
        if _is_ascii(name):
            return f"{_quote(name)} <{address}>"
        return f"{self.one_word(name)} <{address}>"

    def to_header(self) -> str:
        name, address = parseaddr(self.ctx.to)
        if not address:
            return self.ctx.to
        return self.addr(name, address)

    def date(self, dt: datetime) -> str:
        return _rfc2822_date(dt)

    def hex(self, n: int, upper: bool = False) -> str:
        value = "".join(self.rng.choice("0123456789abcdef") for _ in range(n))
        return value.upper() if upper else value

    def octet(self) -> int:
        return self.rng.randint(1, 254)

    def digits(self, n: int) -> str:
        return "".join(self.rng.choice(string.digits) for _ in range(n))

    def uuid(self) -> str:
        return str(uuid.UUID(int=self.rng.getrandbits(128), version=4)).upper()

    def message_id(self) -> str:
        ts = self.ctx.date.strftime("%Y%m%d%H%M%S")
        return f"<{ts}.{self.hex(8)}@{self.ctx.domain}>"

    def boundary(self, index: int) -> str:
        return f"=_{self.hex(32)}"

    # -- parts ------------------------------------------------------------
    def multipart(self, subtype: str, children: list[_Part]) -> _Part:
        return _Part(subtype=subtype, children=children)

    def multipart_headers(self, subtype: str, boundary: str) -> list[str]:
        return [
            _fold_params(
                "Content-Type", f"multipart/{subtype}", [f'boundary="{boundary}"'], self.ct_style
            )
        ]

    def charset_param(self) -> str:
        return f'charset="{self.label}"'

    def text_part(self, text: str, subtype: str) -> _Part:
        data = _crlf(text).encode(self.codec)
        cte = self.text_cte if subtype == "plain" else self.html_cte
        body = _b64_body(data, self.base64_width) if cte == "base64" else _qp_body(data) + b"\r\n"
        return _Part(
            headers=[
                _fold_params(
                    "Content-Type", f"text/{subtype}", [self.charset_param()], self.ct_style
                ),
                f"Content-Transfer-Encoding: {cte}",
            ],
            body=body,
        )

    def html(self, text: str, cids: Sequence[str]) -> str:
        paras = "".join(
            f"<div>{_xml_escape(line) or '<br>'}</div>\n" for line in _crlf(text).split(_CRLF)
        )
        imgs = "".join(f'<div><img src="cid:{c.strip("<>")}"></div>\n' for c in cids)
        return (
            "<html><head>\n"
            f'<meta http-equiv="Content-Type" content="text/html; charset={self.label.lower()}">\n'
            f"</head><body>\n{paras}{imgs}</body></html>\n"
        )

    def attachment_type(self, att: Att) -> str:
        if att.content_type:
            return att.content_type
        if self.generic_attachment_type:
            return self.generic_attachment_type
        return guess_content_type(att.filename, att.data)

    def name_param(self, filename: str) -> list[str]:
        if _is_ascii(filename):
            return [f"name={_quote(filename)}"]
        return [f'name="{self.one_word(filename)}"']

    def filename_param(self, filename: str) -> list[str]:
        if _is_ascii(filename):
            return [f"filename={_quote(filename)}"]
        return [f'filename="{self.one_word(filename)}"']

    def attachment_part(self, att: Att, index: int) -> _Part:
        ctype = self.attachment_type(att)
        name = self.name_param(att.filename) if att.filename is not None else []
        disp = self.filename_param(att.filename) if att.filename is not None else []
        return _Part(
            headers=[
                _fold_params("Content-Type", ctype, name, self.ct_style),
                "Content-Transfer-Encoding: base64",
                _fold_params("Content-Disposition", "attachment", disp, self.cd_style),
            ],
            body=_b64_body(att.data),
        )

    def inline_part(self, att: Att, index: int) -> _Part:
        assert att.inline_cid is not None
        ctype = att.content_type or guess_content_type(att.filename, att.data)
        return _Part(
            headers=[
                f"Content-Type: {ctype}",
                "Content-Transfer-Encoding: base64",
                f"Content-ID: {_cid(att.inline_cid)}",
                "Content-Disposition: inline",
            ],
            body=_b64_body(att.data),
        )

    def tree(self, atts: Sequence[Att], inlines: Sequence[Att]) -> _Part:
        """mixed > [related >] alternative(plain, html), the shape most clients send."""
        cids = [a.inline_cid or "" for a in inlines]
        core = self.multipart(
            "alternative",
            [
                self.text_part(self.ctx.body, "plain"),
                self.text_part(self.html(self.ctx.body, cids), "html"),
            ],
        )
        if inlines:
            core = self.multipart(
                "related", [core, *(self.inline_part(a, i) for i, a in enumerate(inlines))]
            )
        if atts:
            core = self.multipart(
                "mixed", [core, *(self.attachment_part(a, i) for i, a in enumerate(atts))]
            )
        return core

    # -- envelope ---------------------------------------------------------
    def threading(self) -> list[str]:
        if not self.ctx.in_reply_to:
            return []
        return [f"In-Reply-To: {self.ctx.in_reply_to}", f"References: {self.ctx.in_reply_to}"]

    def reply_to(self) -> list[str]:
        if not self.ctx.reply_to:
            return []
        name, address = parseaddr(self.ctx.reply_to)
        return [f"Reply-To: {self.addr(name, address) if address else self.ctx.reply_to}"]

    def envelope(self, msgid: str, content: list[str], has_attach: bool) -> list[str]:
        return [
            f"From: {self.addr(*self.ctx.sender)}",
            f"To: {self.to_header()}",
            *self.reply_to(),
            f"Subject: {self.hdr_text(self.ctx.subject)}",
            f"Date: {self.date(self.ctx.date)}",
            f"Message-ID: {msgid}",
            *self.threading(),
            "MIME-Version: 1.0",
            *content,
        ]

    def provider_received(self) -> list[str]:
        """Received lines the sender's own mail system adds (placed where that system puts them)."""
        return []

    def relay(self) -> tuple[str, str]:
        domain = self.ctx.domain
        if domain.endswith(".ac.cn") or domain.endswith("cstnet.cn"):
            return "smtp21.cstnet.cn", "159.226.251.21"
        return f"mail.{domain}", f"202.{self.rng.randint(96, 127)}.{self.octet()}.{self.octet()}"

    def mx_received(self, when: datetime) -> str:
        host, ip = self.relay()
        qid = "".join(self.rng.choice(string.ascii_letters + string.digits) for _ in range(12))
        rcpt = parseaddr(self.ctx.to)[1] or self.ctx.to
        return (
            f"Received: from {host} ({host} [{ip}]){_CRLF}"
            f"\tby mx.anso.org.cn (Postfix) with ESMTPS id 4G{qid}{_CRLF}"
            f"\tfor <{rcpt}>; {format_datetime(when)}"
        )

    # -- assembly ---------------------------------------------------------
    def assign_boundaries(self, part: _Part) -> None:
        if not part.subtype:
            return
        part.boundary = self.boundary(self._multipart_index)
        self._multipart_index += 1
        part.headers = self.multipart_headers(part.subtype, part.boundary)
        for child in part.children:
            self.assign_boundaries(child)

    def preamble_for(self, part: _Part, top: bool) -> str:
        # The "This is a multi-part message" text appears only before the outermost part.
        return self.preamble if top else ""

    def payload(self, part: _Part, top: bool) -> bytes:
        if not part.subtype:
            return part.body
        delim = b"--" + part.boundary.encode("ascii")
        out = bytearray()
        pre = self.preamble_for(part, top)
        if pre:
            out += pre.encode("ascii") + b"\r\n"
        for i, child in enumerate(part.children):
            out += (delim if i == 0 and not pre else b"\r\n" + delim) + b"\r\n"
            out += self.serialize(child)
        out += b"\r\n" + delim + b"--\r\n"
        return bytes(out)

    def serialize(self, part: _Part) -> bytes:
        head = _CRLF.join(part.headers).encode(self.raw_codec)
        return head + b"\r\n\r\n" + self.payload(part, top=False)

    def build(self, attachments: Sequence[Att]) -> bytes:
        inlines = [a for a in attachments if a.inline_cid is not None]
        atts = [a for a in attachments if a.inline_cid is None]
        top = self.tree(atts, inlines)
        self.assign_boundaries(top)
        msgid = self.ctx.message_id or self.message_id()
        headers = self.envelope(msgid, list(top.headers), bool(atts))
        if self.ctx.received_at is not None:
            headers = [self.mx_received(self.ctx.received_at), *self.provider_received(), *headers]
        head = _CRLF.join(headers).encode(self.raw_codec)
        extra = "".join(f"{_CRLF}{k}: {v}" for k, v in self.ctx.extra).encode("utf-8")
        return head + extra + b"\r\n\r\n" + self.payload(top, top=True)


class _Outlook(_Client):
    """Microsoft Outlook 16.0 on Chinese Windows (code page 936)."""

    label = "gb2312"
    # Windows cp936 is GBK, so characters outside GB2312 (喆 堃 镕) go out under a gb2312 label.
    codec = "gb18030"
    subject_split_chars = True
    html_cte = "quoted-printable"
    preamble = "This is a multipart message in MIME format."

    def __init__(self, ctx: _Ctx) -> None:
        super().__init__(ctx)
        ft = _filetime(ctx.date)
        self.ft_hi, self.ft_lo = ft >> 32, ft & 0xFFFFFFFF
        self.counter = self.rng.randint(1, 0x3F)

    def addr(self, name: str, address: str) -> str:
        if not name:
            return f"<{address}>"
        # Outlook keeps the quotes around the encoded word, which RFC 2047 says not to do.
        return f'"{name if _is_ascii(name) else self.one_word(name)}" <{address}>'

    def message_id(self) -> str:
        return (
            f"<{self.counter:04x}{self.ft_hi:08x}${self.ft_lo:08x}$"
            f"{(self.ft_lo + self.rng.getrandbits(31)) & 0xFFFFFFFF:08x}$@{self.ctx.domain}>"
        )

    def boundary(self, index: int) -> str:
        stamp = f"{self.ft_hi:08X}.{self.ft_lo:08X}"
        return f"----=_NextPart_{index:03d}_{self.counter + index:04X}_{stamp}"

    def thread_index(self) -> str:
        head = (_filetime(self.ctx.date) >> 16).to_bytes(6, "big")
        return base64.b64encode(head + self.rng.getrandbits(128).to_bytes(16, "big")).decode(
            "ascii"
        )

    def attachment_type(self, att: Att) -> str:
        if not att.content_type and att.filename and att.filename.lower().endswith(".zip"):
            return "application/x-zip-compressed"  # what the Windows registry says
        return super().attachment_type(att)

    def inline_part(self, att: Att, index: int) -> _Part:
        assert att.inline_cid is not None
        ctype = att.content_type or guess_content_type(att.filename, att.data)
        # Outlook sends inline images without any Content-Disposition.
        return _Part(
            headers=[
                f"Content-Type: {ctype}",
                "Content-Transfer-Encoding: base64",
                f"Content-ID: {_cid(att.inline_cid)}",
            ],
            body=_b64_body(att.data),
        )

    def html(self, text: str, cids: Sequence[str]) -> str:
        paras = "".join(
            f"<p class=MsoNormal>{_xml_escape(line) or '<o:p>&nbsp;</o:p>'}<o:p></o:p></p>"
            for line in _crlf(text).split(_CRLF)
        )
        imgs = "".join(
            f'<p class=MsoNormal><img src="cid:{c.strip("<>")}"><o:p></o:p></p>' for c in cids
        )
        return (
            '<html xmlns:v="urn:schemas-microsoft-com:vml" '
            'xmlns:o="urn:schemas-microsoft-com:office:office" '
            'xmlns:w="urn:schemas-microsoft-com:office:word" '
            'xmlns:m="http://schemas.microsoft.com/office/2004/12/omml" '
            'xmlns="http://www.w3.org/TR/REC-html40"><head>'
            '<meta http-equiv=Content-Type content="text/html; charset=gb2312">'
            '<meta name=Generator content="Microsoft Word 15 (filtered medium)">'
            "<style><!--\n/* Font Definitions */\n@font-face\n\t{font-family:\u7b49\u7ebf;}\n"
            "p.MsoNormal, li.MsoNormal, div.MsoNormal\n\t{margin:0cm;\n\ttext-align:justify;\n"
            "\tfont-size:10.5pt;\n\tfont-family:\u7b49\u7ebf;}\n--></style></head>"
            '<body lang=ZH-CN link="#0563C1" vlink="#954F72" '
            "style='text-justify-trim:punctuation'>"
            f"<div class=WordSection1>{paras}{imgs}</div></body></html>"
        )

    def envelope(self, msgid: str, content: list[str], has_attach: bool) -> list[str]:
        return [
            *self.reply_to(),
            f"From: {self.addr(*self.ctx.sender)}",
            f"To: {self.to_header()}",
            *(
                [f"References: {self.ctx.in_reply_to}", f"In-Reply-To: {self.ctx.in_reply_to}"]
                if self.ctx.in_reply_to
                else []
            ),
            f"Subject: {self.hdr_text(self.ctx.subject)}",
            f"Date: {self.date(self.ctx.date)}",
            f"Message-ID: {msgid}",
            "MIME-Version: 1.0",
            *content,
            "X-Mailer: Microsoft Outlook 16.0",
            f"Thread-Index: {self.thread_index()}",
            "Content-Language: zh-cn",
        ]


class _Foxmail(_Client):
    """Foxmail 7.2 for Windows."""

    label = "GB2312"
    codec = "gb18030"
    html_cte = "quoted-printable"
    preamble = "This is a multi-part message in MIME format."
    # Foxmail labels every attachment application/octet-stream whatever its type.
    generic_attachment_type = "application/octet-stream"

    def addr(self, name: str, address: str) -> str:
        # With no display name Foxmail repeats the address as one, in quotes.
        shown = name or address
        return f'"{shown if _is_ascii(shown) else self.one_word(shown)}" <{address}>'

    def message_id(self) -> str:
        return f"<{self.ctx.date.strftime('%Y%m%d%H%M%S')}{self.digits(8)}@{self.ctx.domain}>"

    def boundary(self, index: int) -> str:
        return f"----=_{index + 1:03d}_NextPart{self.digits(12)}_=----"

    def envelope(self, msgid: str, content: list[str], has_attach: bool) -> list[str]:
        return [
            f"Date: {self.date(self.ctx.date)}",
            f"From: {self.addr(*self.ctx.sender)}",
            f"To: {self.to_header()}",
            *self.reply_to(),
            f"Subject: {self.hdr_text(self.ctx.subject)}",
            *self.threading(),
            "X-Priority: 3",
            f"X-GUID: {self.uuid()}",
            f"X-Has-Attach: {'yes' if has_attach else 'no'}",
            "X-Mailer: Foxmail 7.2.20.273[cn]",
            "Mime-Version: 1.0",
            f"Message-ID: {msgid}",
            *content,
        ]


class _QQMail(_Client):
    """QQ Mail web client (mail.qq.com)."""

    label = "gb18030"
    codec = "gb18030"
    fold = f"{_CRLF} "
    subject_word_bytes = 30
    preamble = "This is a multi-part message in MIME format."
    base64_width = 72  # QQ's own text parts are wrapped at 72, not 76
    cd_style = "oneline"
    generic_attachment_type = "application/octet-stream"

    def addr(self, name: str, address: str) -> str:
        # QQ Mail encodes every display name, ASCII ones too, and falls back to the local part.
        return f'"{self.one_word(name or address.split("@", 1)[0])}" <{address}>'

    def message_id(self) -> str:
        return f"<tencent_{self.hex(36, upper=True)}@qq.com>"

    def boundary(self, index: int) -> str:
        ts = int(self.ctx.date.timestamp())
        return f"----=_NextPart_{ts:08X}_{self.hex(8, True)}_{self.hex(8, True)}"

    def attachment_part(self, att: Att, index: int) -> _Part:
        ctype = self.attachment_type(att)
        params = [f'charset="{self.label}"']
        if att.filename is not None:
            params += self.name_param(att.filename)
        disp = self.filename_param(att.filename) if att.filename is not None else []
        return _Part(
            headers=[
                _fold_params("Content-Type", ctype, params, "tab"),
                _fold_params("Content-Disposition", "attachment", disp, "oneline"),
                "Content-Transfer-Encoding: base64",
            ],
            body=_b64_body(att.data),
        )

    def envelope(self, msgid: str, content: list[str], has_attach: bool) -> list[str]:
        ts = int(self.ctx.date.timestamp())
        feat = base64.b64encode(self.rng.getrandbits(8 * 45).to_bytes(45, "big")).decode("ascii")
        ssf = "00000000000000F000000000000000" + self.rng.choice("SZH")
        return [
            f"X-QQ-FEAT: {feat}",
            f"X-QQ-SSF: {ssf}",
            f"X-HAS-ATTACH: {'yes' if has_attach else 'no'}",
            "X-QQ-BUSINESS-ORIGIN: 2",
            f"X-Originating-IP: 159.226.{self.rng.randint(1, 254)}.{self.rng.randint(1, 254)}",
            "X-QQ-STYLE: ",
            f"X-QQ-mid: webmail{self.rng.randint(100, 999)}t{ts}t{self.digits(7)}",
            f"From: {self.addr(*self.ctx.sender)}",
            f"To: {self.to_header()}",
            *self.reply_to(),
            f"Subject: {self.hdr_text(self.ctx.subject)}",
            "Mime-Version: 1.0",
            *content,
            "Content-Transfer-Encoding: 8Bit",
            f"Date: {self.date(self.ctx.date)}",
            "X-Priority: 3",
            f"Message-ID: {msgid}",
            "X-QQ-MIME: TCMime 1.0 by Tencent",
            "X-Mailer: QQMail 2.x",
            "X-QQ-Mailer: QQMail 2.x",
            *self.threading(),
            *self.trailing_received(),
        ]

    def trailing_received(self) -> list[str]:
        # QQ's submission server appends its Received line at the *bottom* of the header block.
        if self.ctx.received_at is None:
            return []
        return [
            f"Received: from qq.com (unknown [127.0.0.1]){_CRLF}"
            f"\tby smtp.qq.com (ESMTP) with SMTP{_CRLF}"
            f"\tid ; {_rfc2822_date(self.ctx.date, pad_day=True)} (CST)",
            f"Feedback-ID: webmail:qq.com:bgweb:bgweb{self.rng.randint(1, 30)}",
        ]

    def relay(self) -> tuple[str, str]:
        a, b = self.rng.randint(200, 230), self.rng.randint(1, 254)
        return f"out203-205-{a}-{b}.mail.qq.com", f"203.205.{a}.{b}"


class _Coremail(_Client):
    """Coremail XT5 webmail, as run by CSTNET for the Chinese Academy of Sciences institutes."""

    label = "UTF-8"
    codec = "utf-8"
    ct_style = "fit"
    cd_style = "fit"

    def charset_param(self) -> str:
        return "charset=UTF-8"

    def date(self, dt: datetime) -> str:
        return f"{_rfc2822_date(dt)} {_gmt_comment(dt)}"

    def message_id(self) -> str:
        ms = int(self.ctx.date.timestamp() * 1000)
        return (
            f"<{self.hex(8).lstrip('0') or '1'}.{self.hex(5)}.{ms:x}.Coremail.{self.ctx.sender[1]}>"
        )

    def boundary(self, index: int) -> str:
        ms = int(self.ctx.date.timestamp() * 1000) + index
        return f"----=_Part_{self.rng.randint(10000, 999999)}_{self.digits(10)}.{ms}"

    def filename_param(self, filename: str) -> list[str]:
        if _is_ascii(filename):
            return [f"filename={_quote(filename)}"]
        return rfc2231_params("filename", filename, "UTF-8")

    def envelope(self, msgid: str, content: list[str], has_attach: bool) -> list[str]:
        ip = f"159.226.{self.rng.randint(1, 254)}.{self.rng.randint(1, 254)}"
        transid = "".join(
            self.rng.choice(string.ascii_letters + string.digits + "_") for _ in range(22)
        )
        sender_info = "".join(
            self.rng.choice(string.ascii_lowercase + string.digits) for _ in range(20)
        )
        year = self.ctx.date.year
        return [
            f"X-Originating-IP: [{ip}]",
            f"Date: {self.date(self.ctx.date)}",
            "X-CM-HeaderCharset: UTF-8",
            f"From: {self.addr(*self.ctx.sender)}",
            f"To: {self.to_header()}",
            *self.reply_to(),
            f"Subject: {self.hdr_text(self.ctx.subject)}",
            "X-Priority: 3",
            "X-Mailer: Coremail Webmail Server Version XT5.0.13 build 20210104(ab8c30b6)"
            f"{_CRLF} Copyright (c) 2002-{year} www.mailtech.cn cnic.cn",
            *self.threading(),
            *content,
            "MIME-Version: 1.0",
            f"Message-ID: {msgid}",
            "X-Coremail-Locale: zh_CN",
            f"X-CM-TRANSID:{transid}--.{self.rng.randint(1000, 99999)}W",
            f"X-CM-SenderInfo: {sender_info}/1tbiAgsHE{self.hex(10)}",
            "X-Coremail-Antispam: 1Ur529EdanIXcx71UUUUU7IcSsGvfJ3iIAIbVAYjsxI4VWxJw"
            f"{_CRLF}\tCS07vEb4IE77IF4wCS07vE1I0E4x80FVAKz4kxMIAIbVAFxVCaYxvI4VCIwcAKzIAtYxBI"
            f"{_CRLF}\tdaVFxhVjvjDU=",
        ]

    def provider_received(self) -> list[str]:
        return [
            f"Received: from {self.ctx.local}${self.ctx.domain} "
            f"( [159.226.{self.octet()}.{self.octet()}] ) by{_CRLF}"
            f" ajax-webmail-APP-{self.rng.randint(1, 20)} (Coremail) ; "
            f"{_rfc2822_date(self.ctx.date)}{_CRLF}"
            f" {_gmt_comment(self.ctx.date)}"
        ]

    def relay(self) -> tuple[str, str]:
        return "smtp21.cstnet.cn", "159.226.251.21"


class _Gmail(_Client):
    """Gmail web interface."""

    label = "UTF-8"
    codec = "utf-8"
    ct_style = "fit"
    cd_style = "fit"

    def __init__(self, ctx: _Ctx) -> None:
        super().__init__(ctx)
        self.stem = self.hex(16)
        self.att_id = "".join(
            self.rng.choice(string.ascii_lowercase + string.digits) for _ in range(8)
        )

    def addr(self, name: str, address: str) -> str:
        if not name:
            return address
        return f"{name if _is_ascii(name) else self.one_word(name)} <{address}>"

    def message_id(self) -> str:
        alphabet = string.ascii_letters + string.digits + "+_-="
        return "<CA" + "".join(self.rng.choice(alphabet) for _ in range(47)) + "@mail.gmail.com>"

    def boundary(self, index: int) -> str:
        # Sibling boundaries of one Gmail message differ only in a couple of hex digits.
        varied = (int(self.stem[6:8], 16) + 0x3A * index) % 256
        return f"000000000000{self.stem[:6]}{varied:02x}{self.stem[8:]}"

    def filename_param(self, filename: str) -> list[str]:
        if _is_ascii(filename):
            return [f"filename={_quote(filename)}"]
        return rfc2231_params("filename", filename, "UTF-8")

    def attachment_part(self, att: Att, index: int) -> _Part:
        part = super().attachment_part(att, index)
        # Gmail gives ordinary attachments a Content-ID too; it does not make them inline.
        att_id = f"f_{self.att_id}{index}"
        part.headers = [
            part.headers[0],
            part.headers[2],
            part.headers[1],
            f"Content-ID: <{att_id}>",
            f"X-Attachment-Id: {att_id}",
        ]
        return part

    def inline_part(self, att: Att, index: int) -> _Part:
        part = super().inline_part(att, index)
        part.headers.append(f"X-Attachment-Id: ii_{self.att_id}{index}")
        return part

    def text_part(self, text: str, subtype: str) -> _Part:
        part = super().text_part(text, subtype)
        part.headers[0] = f'Content-Type: text/{subtype}; charset="UTF-8"'
        return part

    def envelope(self, msgid: str, content: list[str], has_attach: bool) -> list[str]:
        return [
            "MIME-Version: 1.0",
            *(
                [f"References: {self.ctx.in_reply_to}", f"In-Reply-To: {self.ctx.in_reply_to}"]
                if self.ctx.in_reply_to
                else []
            ),
            f"From: {self.addr(*self.ctx.sender)}",
            f"Date: {self.date(self.ctx.date)}",
            f"Message-ID: {msgid}",
            f"Subject: {self.hdr_text(self.ctx.subject)}",
            f"To: {self.to_header()}",
            *self.reply_to(),
            *content,
        ]

    def relay(self) -> tuple[str, str]:
        n = self.rng.randint(10, 99)
        return f"mail-pj1-f{n}.google.com", f"209.85.216.{n}"


class _AppleMail(_Client):
    """Apple Mail on macOS, rich-text compose mode (the default)."""

    label = "utf-8"
    codec = "utf-8"
    fold = f"{_CRLF} "
    text_cte = "quoted-printable"
    html_cte = "quoted-printable"

    def charset_param(self) -> str:
        return "charset=utf-8"

    def addr(self, name: str, address: str) -> str:
        if not name:
            return address
        return f"{name if _is_ascii(name) else self.one_word(name)} <{address}>"

    def message_id(self) -> str:
        return f"<{self.uuid()}@{self.ctx.domain}>"

    def boundary(self, index: int) -> str:
        return f"Apple-Mail=_{self.uuid()}"

    def text_part(self, text: str, subtype: str) -> _Part:
        part = super().text_part(text, subtype)
        part.headers.reverse()  # Apple writes Content-Transfer-Encoding before Content-Type
        return part

    def html(self, text: str, cids: Sequence[str]) -> str:
        paras = "".join(
            f"<div>{_xml_escape(line) or '<br>'}</div>" for line in _crlf(text).split(_CRLF)
        )
        imgs = "".join(f'<img apple-inline="yes" src="cid:{c.strip("<>")}">' for c in cids)
        return (
            '<html><head><meta http-equiv="content-type" content="text/html; charset=utf-8"></head>'
            '<body style="overflow-wrap: break-word; -webkit-nbsp-mode: space; '
            'line-break: after-white-space;">'
            f"{paras}{imgs}</body></html>"
        )

    def name_param(self, filename: str) -> list[str]:
        return ["x-unix-mode=0644", *super().name_param(filename)]

    def filename_param(self, filename: str) -> list[str]:
        if _is_token(filename):
            return [f"filename={filename}"]  # Apple leaves token-safe names unquoted
        if _is_ascii(filename):
            return [f"filename={_quote(filename)}"]
        return rfc2231_params("filename", filename, "utf-8", split_chars=True)

    def attachment_part(self, att: Att, index: int) -> _Part:
        ctype = self.attachment_type(att)
        name = self.name_param(att.filename) if att.filename is not None else ["x-unix-mode=0644"]
        disp = self.filename_param(att.filename) if att.filename is not None else []
        return _Part(
            headers=[
                _fold_params("Content-Disposition", "attachment", disp, "tab"),
                _fold_params("Content-Type", ctype, name, "tab"),
                "Content-Transfer-Encoding: base64",
            ],
            body=_b64_body(att.data),
        )

    def inline_part(self, att: Att, index: int) -> _Part:
        assert att.inline_cid is not None
        ctype = att.content_type or guess_content_type(att.filename, att.data)
        return _Part(
            headers=[
                "Content-Transfer-Encoding: base64",
                "Content-Disposition: inline",
                _fold_params("Content-Type", ctype, ["x-unix-mode=0644"], "tab"),
                f"Content-Id: {_cid(att.inline_cid)}",
            ],
            body=_b64_body(att.data),
        )

    def tree(self, atts: Sequence[Att], inlines: Sequence[Att]) -> _Part:
        # Rich-text Apple Mail puts the attachments *inside* the HTML branch of the
        # alternative, between two HTML fragments, instead of in a top-level mixed.
        cids = [a.inline_cid or "" for a in inlines]
        plain = self.text_part(self.ctx.body, "plain")
        html = self.text_part(self.html(self.ctx.body, cids), "html")
        rich: _Part = html
        if atts:
            tail = self.text_part(self.html("", ()), "html")
            rich = self.multipart(
                "mixed", [html, *(self.attachment_part(a, i) for i, a in enumerate(atts)), tail]
            )
        if inlines:
            rich = self.multipart(
                "related", [rich, *(self.inline_part(a, i) for i, a in enumerate(inlines))]
            )
        return self.multipart("alternative", [plain, rich])

    def envelope(self, msgid: str, content: list[str], has_attach: bool) -> list[str]:
        return [
            *content,
            "Mime-Version: 1.0 (Mac OS X Mail 14.0 \\(3654.60.0.2.21\\))",
            f"Subject: {self.hdr_text(self.ctx.subject)}",
            f"From: {self.addr(*self.ctx.sender)}",
            *([f"In-Reply-To: {self.ctx.in_reply_to}"] if self.ctx.in_reply_to else []),
            f"Date: {self.date(self.ctx.date)}",
            *self.reply_to(),
            f"Message-Id: {msgid}",
            *([f"References: {self.ctx.in_reply_to}"] if self.ctx.in_reply_to else []),
            f"To: {self.to_header()}",
            "X-Mailer: Apple Mail (2.3654.60.0.2.21)",
        ]


class _RawUTF8(_Client):
    """A sender that writes raw 8-bit UTF-8 into headers (SMTPUTF8 style), no encoded words."""

    label = "utf-8"
    codec = "utf-8"
    raw_codec = "utf-8"
    ct_style = "oneline"
    cd_style = "oneline"
    text_cte = "8bit"

    def hdr_text(self, text: str) -> str:
        return text

    def addr(self, name: str, address: str) -> str:
        return f"{_quote(name)} <{address}>" if name else address

    def name_param(self, filename: str) -> list[str]:
        return [f"name={_quote(filename)}"]

    def filename_param(self, filename: str) -> list[str]:
        return [f"filename={_quote(filename)}"]

    def text_part(self, text: str, subtype: str) -> _Part:
        return _Part(
            headers=[
                f"Content-Type: text/{subtype}; {self.charset_param()}",
                "Content-Transfer-Encoding: 8bit",
            ],
            body=_crlf(text).encode(self.codec) + b"\r\n",
        )

    def tree(self, atts: Sequence[Att], inlines: Sequence[Att]) -> _Part:
        text = self.text_part(self.ctx.body, "plain")
        parts = [self.inline_part(a, i) for i, a in enumerate(inlines)]
        parts += [self.attachment_part(a, i) for i, a in enumerate(atts)]
        return self.multipart("mixed", [text, *parts]) if parts else text


class _RawGBK(_RawUTF8):
    """An old client writing raw 8-bit GBK into headers and a gb2312-labelled body."""

    label = "gb2312"
    codec = "gb18030"
    raw_codec = "gb18030"
    preamble = "This is a multi-part message in MIME format."

    def boundary(self, index: int) -> str:
        stamp = f"{self.hex(8, True)}.{self.hex(8, True)}"
        return f"----=_NextPart_{index:03d}_{self.hex(4, True)}_{stamp}"


_CLIENT_CLASSES: dict[str, type[_Client]] = {
    "outlook": _Outlook,
    "foxmail": _Foxmail,
    "qqmail": _QQMail,
    "coremail": _Coremail,
    "gmail": _Gmail,
    "applemail": _AppleMail,
    "raw_utf8": _RawUTF8,
    "raw_gbk": _RawGBK,
}


def build_mail(
    client: str,
    *,
    subject: str,
    attachments: Sequence[Att] = (),
    sender: tuple[str, str] = ("张喆", "zhangzhe@ibcas.ac.cn"),
    to: str = "anso2021program@anso.org.cn",
    date: datetime | None = None,
    received_at: datetime | None = None,
    body: str = "您好，附件是我们的合作专项建议书，请查收。",
    reply_to: str | None = None,
    message_id: str | None = None,
    in_reply_to: str | None = None,
    headers: Sequence[tuple[str, str]] = (),
) -> bytes:
    """A complete RFC 5322 message, CRLF line endings, as client would put it on the wire.

    Attachments without inline_cid become ordinary attachments; an empty
    content_type is guessed from the extension, except that Foxmail and QQ Mail
    label every attachment application/octet-stream as those clients do.
    """
    if client not in _CLIENT_CLASSES:
        raise ValueError(f"unknown client {client!r}; expected one of {CLIENTS}")
    when = date or _DEFAULT_DATE
    for dt in (when, received_at):
        if dt is not None and (dt.tzinfo is None or dt.utcoffset() is None):
            raise ValueError("date and received_at must be timezone-aware")
    ctx = _Ctx(
        client=client,
        rng=random.Random(f"{client}|{subject}|{next(_SEQ)}"),
        subject=subject,
        sender=sender,
        to=to,
        date=when,
        received_at=received_at,
        body=body,
        reply_to=reply_to,
        message_id=message_id,
        in_reply_to=in_reply_to,
        extra=headers,
    )
    return _CLIENT_CLASSES[client](ctx).build(attachments)


# ---------------------------------------------------------------------------
# sample documents


def _pdf_string(text: str) -> str:
    # Only ASCII survives Helvetica's standard encoding; anything else becomes "?".
    ascii_text = text.encode("ascii", "replace").decode("ascii")
    return ascii_text.replace("\\", "\\\\").replace("(", "\\(").replace(")", "\\)")


def pdf_bytes(pages: int = 1, text: str = "proposal") -> bytes:
    """A small valid PDF 1.4 (exact xref offsets) with text drawn on each page; ends with %%EOF."""
    if pages < 1:
        raise ValueError("pages must be >= 1")
    page_ids = [4 + 2 * i for i in range(pages)]
    objects: list[bytes] = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids ["
        + b" ".join(b"%d 0 R" % p for p in page_ids)
        + b"] /Count %d >>" % pages,
        b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>",
    ]
    for i, page_id in enumerate(page_ids):
        label = _pdf_string(text if pages == 1 else f"{text} - page {i + 1}")
        stream = f"BT\n/F1 24 Tf\n72 720 Td\n({label}) Tj\nET\n".encode("ascii")
        objects.append(
            b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 595 842] "
            b"/Resources << /Font << /F1 3 0 R >> >> /Contents %d 0 R >>" % (page_id + 1)
        )
        objects.append(b"<< /Length %d >>\nstream\n" % len(stream) + stream + b"endstream")
    out = bytearray(b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n")
    offsets: list[int] = []
    for num, obj in enumerate(objects, start=1):
        offsets.append(len(out))
        out += b"%d 0 obj\n" % num + obj + b"\nendobj\n"
    xref_at = len(out)
    out += b"xref\n0 %d\n" % (len(objects) + 1)
    out += b"0000000000 65535 f \n"
    for off in offsets:
        out += b"%010d 00000 n \n" % off
    out += b"trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF" % (
        len(objects) + 1,
        xref_at,
    )
    return bytes(out)


_DOCX_CONTENT_TYPES = (
    '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\r\n'
    '<Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types">'
    '<Default Extension="rels" '
    'ContentType="application/vnd.openxmlformats-package.relationships+xml"/>'
    '<Default Extension="xml" ContentType="application/xml"/>'
    '<Override PartName="/word/document.xml" '
    'ContentType="application/vnd.openxmlformats-officedocument.wordprocessingml.document.main+xml"/>'
    "</Types>"
)
_DOCX_RELS = (
    '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\r\n'
    '<Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships">'
    '<Relationship Id="rId1" '
    'Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/officeDocument" '
    'Target="word/document.xml"/></Relationships>'
)


def docx_bytes(paragraphs: Sequence[str] = ("项目名称：示例",)) -> bytes:
    """A minimal valid .docx (OPC zip with [Content_Types].xml, _rels/.rels, word/document.xml)."""
    body = "".join(
        f'<w:p><w:r><w:t xml:space="preserve">{_xml_escape(p)}</w:t></w:r></w:p>'
        for p in paragraphs
    )
    document = (
        '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\r\n'
        '<w:document xmlns:w="http://schemas.openxmlformats.org/wordprocessingml/2006/main">'
        f"<w:body>{body}<w:sectPr/></w:body></w:document>"
    )
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        # Word writes 1980-01-01 timestamps; fixed times also make the bytes reproducible.
        for name, text in (
            ("[Content_Types].xml", _DOCX_CONTENT_TYPES),
            ("_rels/.rels", _DOCX_RELS),
            ("word/document.xml", document),
        ):
            info = zipfile.ZipInfo(name, date_time=(1980, 1, 1, 0, 0, 0))
            info.compress_type = zipfile.ZIP_DEFLATED
            zf.writestr(info, text.encode("utf-8"))
    return buf.getvalue()


# ---------------------------------------------------------------------------
# deliberately broken mail


def _sample_attachments() -> list[Att]:
    return [
        Att(f"{SAMPLE_STEM}.docx", docx_bytes()),
        Att(f"{SAMPLE_STEM}.pdf", pdf_bytes()),
    ]


def broken_no_boundary() -> bytes:
    """An Outlook-style applicant mail whose multipart/mixed header lost its boundary parameter."""
    raw = build_mail("outlook", subject=SAMPLE_SUBJECT, attachments=_sample_attachments())
    head, sep, rest = raw.partition(b"\r\n\r\n")
    fixed = re.sub(
        rb"Content-Type: multipart/mixed;\r\n\tboundary=\"[^\"]*\"",
        b"Content-Type: multipart/mixed",
        head,
        count=1,
    )
    assert fixed != head
    return fixed + sep + rest


def broken_bad_base64() -> bytes:
    """A Foxmail-style applicant mail whose PDF has corrupt base64 (illegal chars, bad padding)."""
    pdf = pdf_bytes()
    raw = build_mail("foxmail", subject=SAMPLE_SUBJECT, attachments=_sample_attachments())
    good = _b64_body(pdf)
    lines = good.split(b"\r\n")[:-1]
    # Illegal characters mid-stream, a stray "=" inside the data and a last quantum cut short.
    lines[1] = lines[1][:20] + b"*#!\xa7" + lines[1][20:]
    lines[2] = lines[2][:8] + b"=" + lines[2][8:]
    lines[-1] = lines[-1].rstrip(b"=")[:-1]
    bad = b"\r\n".join(lines) + b"\r\n"
    assert raw.count(good) == 1
    return raw.replace(good, bad)


def broken_unknown_charset() -> bytes:
    """An applicant mail whose subject and body say charset x-unknown-foo (the bytes are UTF-8)."""
    subject_word = (
        f"=?x-unknown-foo?B?{base64.b64encode(SAMPLE_SUBJECT.encode('utf-8')).decode('ascii')}?="
    )
    body = _crlf("您好，附件是我们的合作专项建议书，请查收。\n\n张喆").encode("utf-8")
    boundary = "----=_Part_318_1502977430.1626746400000"
    date = _rfc2822_date(_DEFAULT_DATE)
    head = _CRLF.join(
        [
            'From: "=?x-unknown-foo?B?5byg5ZaG?=" <zhangzhe@ibcas.ac.cn>',
            "To: anso2021program@anso.org.cn",
            f"Subject: {subject_word}",
            f"Date: {date}",
            "Message-ID: <5f3a9c1e.4b2d.17ac4a6b5d2.unknown@ibcas.ac.cn>",
            "MIME-Version: 1.0",
            f'Content-Type: multipart/mixed; boundary="{boundary}"',
        ]
    ).encode("ascii")
    text_part = (
        b'Content-Type: text/plain; charset="x-unknown-foo"\r\n'
        b"Content-Transfer-Encoding: base64\r\n\r\n" + _b64_body(body)
    )
    parts = [text_part]
    for att in _sample_attachments():
        assert att.filename is not None
        disp = rfc2231_params("filename", att.filename, "UTF-8")
        parts.append(
            _fold_params("Content-Type", guess_content_type(att.filename), [], "fit").encode(
                "ascii"
            )
            + b"\r\nContent-Transfer-Encoding: base64\r\n"
            + _fold_params("Content-Disposition", "attachment", disp, "tab").encode("ascii")
            + b"\r\n\r\n"
            + _b64_body(att.data)
        )
    delim = b"--" + boundary.encode("ascii")
    payload = b"".join(delim + b"\r\n" + p + b"\r\n" for p in parts) + delim + b"--\r\n"
    return head + b"\r\n\r\n" + payload
