"""Coremail XT5 webmail, as CSTNET runs it for the CAS institutes, as it puts a mail on the wire."""

from __future__ import annotations

import string
from datetime import datetime

from tests.mailfactory.base import Client
from tests.mailfactory.encoders import (
    CRLF,
    gmt_comment,
    is_ascii,
    quote,
    rfc2231_params,
    rfc2822_date,
)


class Coremail(Client):
    """Coremail XT5 webmail, as run by CSTNET for the Chinese Academy of Sciences institutes."""

    label = "UTF-8"
    codec = "utf-8"
    ct_style = "fit"
    cd_style = "fit"

    def charset_param(self) -> str:
        return "charset=UTF-8"

    def date(self, dt: datetime) -> str:
        return f"{rfc2822_date(dt)} {gmt_comment(dt)}"

    def message_id(self) -> str:
        ms = int(self.ctx.date.timestamp() * 1000)
        return (
            f"<{self.hex(8).lstrip('0') or '1'}.{self.hex(5)}.{ms:x}.Coremail.{self.ctx.sender[1]}>"
        )

    def boundary(self, index: int) -> str:
        ms = int(self.ctx.date.timestamp() * 1000) + index
        return f"----=_Part_{self.rng.randint(10000, 999999)}_{self.digits(10)}.{ms}"

    def filename_param(self, filename: str) -> list[str]:
        if is_ascii(filename):
            return [f"filename={quote(filename)}"]
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
            f"{CRLF} Copyright (c) 2002-{year} www.mailtech.cn cnic.cn",
            *self.threading(),
            *content,
            "MIME-Version: 1.0",
            f"Message-ID: {msgid}",
            "X-Coremail-Locale: zh_CN",
            f"X-CM-TRANSID:{transid}--.{self.rng.randint(1000, 99999)}W",
            f"X-CM-SenderInfo: {sender_info}/1tbiAgsHE{self.hex(10)}",
            "X-Coremail-Antispam: 1Ur529EdanIXcx71UUUUU7IcSsGvfJ3iIAIbVAYjsxI4VWxJw"
            f"{CRLF}\tCS07vEb4IE77IF4wCS07vE1I0E4x80FVAKz4kxMIAIbVAFxVCaYxvI4VCIwcAKzIAtYxBI"
            f"{CRLF}\tdaVFxhVjvjDU=",
        ]

    def provider_received(self) -> list[str]:
        return [
            f"Received: from {self.ctx.local}${self.ctx.domain} "
            f"( [159.226.{self.octet()}.{self.octet()}] ) by{CRLF}"
            f" ajax-webmail-APP-{self.rng.randint(1, 20)} (Coremail) ; "
            f"{rfc2822_date(self.ctx.date)}{CRLF}"
            f" {gmt_comment(self.ctx.date)}"
        ]

    def relay(self) -> tuple[str, str]:
        return "smtp21.cstnet.cn", "159.226.251.21"
