"""Gmail's web interface, as it puts a mail on the wire."""

from __future__ import annotations

import string

from tests.mailfactory.base import Att, Client, Ctx, Part
from tests.mailfactory.encoders import is_ascii, quote, rfc2231_params


class Gmail(Client):
    """Gmail web interface."""

    label = "UTF-8"
    codec = "utf-8"
    ct_style = "fit"
    cd_style = "fit"

    def __init__(self, ctx: Ctx) -> None:
        super().__init__(ctx)
        self.stem = self.hex(16)
        self.att_id = "".join(
            self.rng.choice(string.ascii_lowercase + string.digits) for _ in range(8)
        )

    def addr(self, name: str, address: str) -> str:
        if not name:
            return address
        return f"{name if is_ascii(name) else self.one_word(name)} <{address}>"

    def message_id(self) -> str:
        alphabet = string.ascii_letters + string.digits + "+_-="
        return "<CA" + "".join(self.rng.choice(alphabet) for _ in range(47)) + "@mail.gmail.com>"

    def boundary(self, index: int) -> str:
        # Sibling boundaries of one Gmail message differ only in a couple of hex digits.
        varied = (int(self.stem[6:8], 16) + 0x3A * index) % 256
        return f"000000000000{self.stem[:6]}{varied:02x}{self.stem[8:]}"

    def filename_param(self, filename: str) -> list[str]:
        if is_ascii(filename):
            return [f"filename={quote(filename)}"]
        return rfc2231_params("filename", filename, "UTF-8")

    def attachment_part(self, att: Att, index: int) -> Part:
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

    def inline_part(self, att: Att, index: int) -> Part:
        part = super().inline_part(att, index)
        part.headers.append(f"X-Attachment-Id: ii_{self.att_id}{index}")
        return part

    def text_part(self, text: str, subtype: str) -> Part:
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
