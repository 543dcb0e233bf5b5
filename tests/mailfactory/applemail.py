"""Apple Mail on macOS in rich-text mode, as it puts a mail on the wire."""

from __future__ import annotations

from collections.abc import Sequence
from xml.sax.saxutils import escape as xml_escape

from tests.mailfactory.base import Att, Client, Part
from tests.mailfactory.encoders import (
    CRLF,
    b64_body,
    cid,
    crlf,
    fold_params,
    guess_content_type,
    is_ascii,
    is_token,
    quote,
    rfc2231_params,
)


class AppleMail(Client):
    """Apple Mail on macOS, rich-text compose mode (the default)."""

    label = "utf-8"
    codec = "utf-8"
    fold = f"{CRLF} "
    text_cte = "quoted-printable"
    html_cte = "quoted-printable"

    def charset_param(self) -> str:
        return "charset=utf-8"

    def addr(self, name: str, address: str) -> str:
        if not name:
            return address
        return f"{name if is_ascii(name) else self.one_word(name)} <{address}>"

    def message_id(self) -> str:
        return f"<{self.uuid()}@{self.ctx.domain}>"

    def boundary(self, index: int) -> str:
        return f"Apple-Mail=_{self.uuid()}"

    def text_part(self, text: str, subtype: str) -> Part:
        part = super().text_part(text, subtype)
        part.headers.reverse()  # Apple writes Content-Transfer-Encoding before Content-Type
        return part

    def html(self, text: str, cids: Sequence[str]) -> str:
        paras = "".join(
            f"<div>{xml_escape(line) or '<br>'}</div>" for line in crlf(text).split(CRLF)
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
        if is_token(filename):
            return [f"filename={filename}"]  # Apple leaves token-safe names unquoted
        if is_ascii(filename):
            return [f"filename={quote(filename)}"]
        return rfc2231_params("filename", filename, "utf-8", split_chars=True)

    def attachment_part(self, att: Att, index: int) -> Part:
        ctype = self.attachment_type(att)
        name = self.name_param(att.filename) if att.filename is not None else ["x-unix-mode=0644"]
        disp = self.filename_param(att.filename) if att.filename is not None else []
        return Part(
            headers=[
                fold_params("Content-Disposition", "attachment", disp, "tab"),
                fold_params("Content-Type", ctype, name, "tab"),
                "Content-Transfer-Encoding: base64",
            ],
            body=b64_body(att.data),
        )

    def inline_part(self, att: Att, index: int) -> Part:
        assert att.inline_cid is not None
        ctype = att.content_type or guess_content_type(att.filename, att.data)
        return Part(
            headers=[
                "Content-Transfer-Encoding: base64",
                "Content-Disposition: inline",
                fold_params("Content-Type", ctype, ["x-unix-mode=0644"], "tab"),
                f"Content-Id: {cid(att.inline_cid)}",
            ],
            body=b64_body(att.data),
        )

    def tree(self, atts: Sequence[Att], inlines: Sequence[Att]) -> Part:
        # Rich-text Apple Mail puts the attachments *inside* the HTML branch of the
        # alternative, between two HTML fragments, instead of in a top-level mixed.
        cids = [a.inline_cid or "" for a in inlines]
        plain = self.text_part(self.ctx.body, "plain")
        html = self.text_part(self.html(self.ctx.body, cids), "html")
        rich: Part = html
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
