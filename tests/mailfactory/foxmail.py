"""Foxmail 7.2 for Windows, as it puts a mail on the wire."""

from __future__ import annotations

from tests.mailfactory.base import Client
from tests.mailfactory.encoders import is_ascii


class Foxmail(Client):
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
        return f'"{shown if is_ascii(shown) else self.one_word(shown)}" <{address}>'

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
