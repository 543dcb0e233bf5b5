"""Senders that write raw 8-bit UTF-8 or GBK into headers, with no encoded words."""

from __future__ import annotations

from collections.abc import Sequence

from tests.mailfactory.base import Att, Client, Part
from tests.mailfactory.encoders import crlf, quote


class RawUTF8(Client):
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
        return f"{quote(name)} <{address}>" if name else address

    def name_param(self, filename: str) -> list[str]:
        return [f"name={quote(filename)}"]

    def filename_param(self, filename: str) -> list[str]:
        return [f"filename={quote(filename)}"]

    def text_part(self, text: str, subtype: str) -> Part:
        return Part(
            headers=[
                f"Content-Type: text/{subtype}; {self.charset_param()}",
                "Content-Transfer-Encoding: 8bit",
            ],
            body=crlf(text).encode(self.codec) + b"\r\n",
        )

    def tree(self, atts: Sequence[Att], inlines: Sequence[Att]) -> Part:
        text = self.text_part(self.ctx.body, "plain")
        parts = [self.inline_part(a, i) for i, a in enumerate(inlines)]
        parts += [self.attachment_part(a, i) for i, a in enumerate(atts)]
        return self.multipart("mixed", [text, *parts]) if parts else text


class RawGBK(RawUTF8):
    """An old client writing raw 8-bit GBK into headers and a gb2312-labelled body."""

    label = "gb2312"
    codec = "gb18030"
    raw_codec = "gb18030"
    preamble = "This is a multi-part message in MIME format."

    def boundary(self, index: int) -> str:
        stamp = f"{self.hex(8, True)}.{self.hex(8, True)}"
        return f"----=_NextPart_{index:03d}_{self.hex(4, True)}_{stamp}"
