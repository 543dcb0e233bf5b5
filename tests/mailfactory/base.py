"""What every imitated client shares: Att, the MIME tree, one mail's context, the Client class."""

from __future__ import annotations

import random
import string
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from email.utils import format_datetime, parseaddr
from xml.sax.saxutils import escape as xml_escape

from tests.mailfactory.encoders import (
    CRLF,
    b64_body,
    cid,
    crlf,
    encoded_words,
    fold_params,
    guess_content_type,
    is_ascii,
    qp_body,
    quote,
    rfc2822_date,
)

CST = timezone(timedelta(hours=8))
DEFAULT_DATE = datetime(2021, 7, 20, 10, 0, 0, tzinfo=CST)


@dataclass
class Att:
    """One attachment or inline part of a sample mail."""

    filename: str | None
    data: bytes
    content_type: str = ""
    inline_cid: str | None = None


@dataclass
class Part:
    headers: list[str] = field(default_factory=list)
    body: bytes = b""
    subtype: str = ""  # set for multipart containers
    children: list[Part] = field(default_factory=list)
    boundary: str = ""


@dataclass
class Ctx:
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


class Client:
    """Common behaviour; each subclass overrides what its client really does differently."""

    label = "UTF-8"  # charset label written into encoded words and charset=
    codec = "utf-8"  # codec actually used for the bytes
    raw_codec = "utf-8"  # how header text is turned into bytes (matters only for raw 8-bit clients)
    fold = f"{CRLF}\t"
    subject_word_bytes = 42
    subject_split_chars = False
    ct_style = "tab"
    cd_style = "tab"
    preamble = ""
    base64_width = 76
    text_cte = "base64"
    html_cte = "base64"
    generic_attachment_type: str | None = None  # clients that label every attachment the same way

    def __init__(self, ctx: Ctx) -> None:
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
        if is_ascii(text):
            return text
        return self.fold.join(self.words(text))

    def one_word(self, text: str) -> str:
        # display names and filenames are written as one word however long, as clients do
        return encoded_words(text, self.label, self.codec, 10_000)[0]

    def addr(self, name: str, address: str) -> str:
        if not name:
            return address
        if is_ascii(name):
            return f"{quote(name)} <{address}>"
        return f"{self.one_word(name)} <{address}>"

    def to_header(self) -> str:
        name, address = parseaddr(self.ctx.to)
        if not address:
            return self.ctx.to
        return self.addr(name, address)

    def date(self, dt: datetime) -> str:
        return rfc2822_date(dt)

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
    def multipart(self, subtype: str, children: list[Part]) -> Part:
        return Part(subtype=subtype, children=children)

    def multipart_headers(self, subtype: str, boundary: str) -> list[str]:
        return [
            fold_params(
                "Content-Type", f"multipart/{subtype}", [f'boundary="{boundary}"'], self.ct_style
            )
        ]

    def charset_param(self) -> str:
        return f'charset="{self.label}"'

    def text_part(self, text: str, subtype: str) -> Part:
        data = crlf(text).encode(self.codec)
        cte = self.text_cte if subtype == "plain" else self.html_cte
        body = b64_body(data, self.base64_width) if cte == "base64" else qp_body(data) + b"\r\n"
        return Part(
            headers=[
                fold_params(
                    "Content-Type", f"text/{subtype}", [self.charset_param()], self.ct_style
                ),
                f"Content-Transfer-Encoding: {cte}",
            ],
            body=body,
        )

    def html(self, text: str, cids: Sequence[str]) -> str:
        paras = "".join(
            f"<div>{xml_escape(line) or '<br>'}</div>\n" for line in crlf(text).split(CRLF)
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
        if is_ascii(filename):
            return [f"name={quote(filename)}"]
        return [f'name="{self.one_word(filename)}"']

    def filename_param(self, filename: str) -> list[str]:
        if is_ascii(filename):
            return [f"filename={quote(filename)}"]
        return [f'filename="{self.one_word(filename)}"']

    def attachment_part(self, att: Att, index: int) -> Part:
        ctype = self.attachment_type(att)
        name = self.name_param(att.filename) if att.filename is not None else []
        disp = self.filename_param(att.filename) if att.filename is not None else []
        return Part(
            headers=[
                fold_params("Content-Type", ctype, name, self.ct_style),
                "Content-Transfer-Encoding: base64",
                fold_params("Content-Disposition", "attachment", disp, self.cd_style),
            ],
            body=b64_body(att.data),
        )

    def inline_part(self, att: Att, index: int) -> Part:
        assert att.inline_cid is not None
        ctype = att.content_type or guess_content_type(att.filename, att.data)
        return Part(
            headers=[
                f"Content-Type: {ctype}",
                "Content-Transfer-Encoding: base64",
                f"Content-ID: {cid(att.inline_cid)}",
                "Content-Disposition: inline",
            ],
            body=b64_body(att.data),
        )

    def tree(self, atts: Sequence[Att], inlines: Sequence[Att]) -> Part:
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
            f"Received: from {host} ({host} [{ip}]){CRLF}"
            f"\tby mx.anso.org.cn (Postfix) with ESMTPS id 4G{qid}{CRLF}"
            f"\tfor <{rcpt}>; {format_datetime(when)}"
        )

    # -- assembly ---------------------------------------------------------
    def assign_boundaries(self, part: Part) -> None:
        if not part.subtype:
            return
        part.boundary = self.boundary(self._multipart_index)
        self._multipart_index += 1
        part.headers = self.multipart_headers(part.subtype, part.boundary)
        for child in part.children:
            self.assign_boundaries(child)

    def preamble_for(self, part: Part, top: bool) -> str:
        # The "This is a multi-part message" text appears only before the outermost part.
        return self.preamble if top else ""

    def payload(self, part: Part, top: bool) -> bytes:
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

    def serialize(self, part: Part) -> bytes:
        head = CRLF.join(part.headers).encode(self.raw_codec)
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
        head = CRLF.join(headers).encode(self.raw_codec)
        extra = "".join(f"{CRLF}{k}: {v}" for k, v in self.ctx.extra).encode("utf-8")
        return head + extra + b"\r\n\r\n" + self.payload(top, top=True)
