"""QQ Mail's web client (mail.qq.com), as it puts a mail on the wire."""

from __future__ import annotations

import base64

from tests.mailfactory.base import Att, Client, Part
from tests.mailfactory.encoders import CRLF, b64_body, fold_params, rfc2822_date


class QQMail(Client):
    """QQ Mail web client (mail.qq.com)."""

    label = "gb18030"
    codec = "gb18030"
    fold = f"{CRLF} "
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

    def attachment_part(self, att: Att, index: int) -> Part:
        ctype = self.attachment_type(att)
        params = [f'charset="{self.label}"']
        if att.filename is not None:
            params += self.name_param(att.filename)
        disp = self.filename_param(att.filename) if att.filename is not None else []
        return Part(
            headers=[
                fold_params("Content-Type", ctype, params, "tab"),
                fold_params("Content-Disposition", "attachment", disp, "oneline"),
                "Content-Transfer-Encoding: base64",
            ],
            body=b64_body(att.data),
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
            f"Received: from qq.com (unknown [127.0.0.1]){CRLF}"
            f"\tby smtp.qq.com (ESMTP) with SMTP{CRLF}"
            f"\tid ; {rfc2822_date(self.ctx.date, pad_day=True)} (CST)",
            f"Feedback-ID: webmail:qq.com:bgweb:bgweb{self.rng.randint(1, 30)}",
        ]

    def relay(self) -> tuple[str, str]:
        a, b = self.rng.randint(200, 230), self.rng.randint(1, 254)
        return f"out203-205-{a}-{b}.mail.qq.com", f"203.205.{a}.{b}"
