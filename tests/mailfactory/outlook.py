"""Microsoft Outlook 16.0 on Chinese Windows, as it puts a mail on the wire."""

from __future__ import annotations

import base64
from collections.abc import Sequence
from xml.sax.saxutils import escape as xml_escape

from tests.mailfactory.base import Att, Client, Ctx, Part
from tests.mailfactory.encoders import (
    CRLF,
    b64_body,
    cid,
    crlf,
    filetime,
    guess_content_type,
    is_ascii,
)


class Outlook(Client):
    """Microsoft Outlook 16.0 on Chinese Windows (code page 936)."""

    label = "gb2312"
    # Windows cp936 is GBK, so characters outside GB2312 (喆 堃 镕) go out under a gb2312 label.
    codec = "gb18030"
    subject_split_chars = True
    html_cte = "quoted-printable"
    preamble = "This is a multipart message in MIME format."

    def __init__(self, ctx: Ctx) -> None:
        super().__init__(ctx)
        ft = filetime(ctx.date)
        self.ft_hi, self.ft_lo = ft >> 32, ft & 0xFFFFFFFF
        self.counter = self.rng.randint(1, 0x3F)

    def addr(self, name: str, address: str) -> str:
        if not name:
            return f"<{address}>"
        # Outlook keeps the quotes around the encoded word, which RFC 2047 says not to do.
        return f'"{name if is_ascii(name) else self.one_word(name)}" <{address}>'

    def message_id(self) -> str:
        return (
            f"<{self.counter:04x}{self.ft_hi:08x}${self.ft_lo:08x}$"
            f"{(self.ft_lo + self.rng.getrandbits(31)) & 0xFFFFFFFF:08x}$@{self.ctx.domain}>"
        )

    def boundary(self, index: int) -> str:
        stamp = f"{self.ft_hi:08X}.{self.ft_lo:08X}"
        return f"----=_NextPart_{index:03d}_{self.counter + index:04X}_{stamp}"

    def thread_index(self) -> str:
        head = (filetime(self.ctx.date) >> 16).to_bytes(6, "big")
        return base64.b64encode(head + self.rng.getrandbits(128).to_bytes(16, "big")).decode(
            "ascii"
        )

    def attachment_type(self, att: Att) -> str:
        if not att.content_type and att.filename and att.filename.lower().endswith(".zip"):
            return "application/x-zip-compressed"  # what the Windows registry says
        return super().attachment_type(att)

    def inline_part(self, att: Att, index: int) -> Part:
        assert att.inline_cid is not None
        ctype = att.content_type or guess_content_type(att.filename, att.data)
        # Outlook sends inline images without any Content-Disposition.
        return Part(
            headers=[
                f"Content-Type: {ctype}",
                "Content-Transfer-Encoding: base64",
                f"Content-ID: {cid(att.inline_cid)}",
            ],
            body=b64_body(att.data),
        )

    def html(self, text: str, cids: Sequence[str]) -> str:
        paras = "".join(
            f"<p class=MsoNormal>{xml_escape(line) or '<o:p>&nbsp;</o:p>'}<o:p></o:p></p>"
            for line in crlf(text).split(CRLF)
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
