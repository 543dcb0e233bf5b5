"""Raw bytes to one Message: the Chinese text real clients send comes out right."""

from __future__ import annotations

import base64
from datetime import UTC, datetime, timedelta, timezone

import mailparser
import pytest

from mailbot.mail.charsets import decode_bytes, decode_words
from mailbot.mail.message import split_extension
from mailbot.mail.parsing import parse_message

NAME = "中国科学院植物研究所+张喆"  # 喆 is outside GB2312
BEIJING = timezone(timedelta(hours=8))


def b64(text: str, codec: str) -> str:
    return base64.b64encode(text.encode(codec)).decode()


def mail(headers: bytes, body: bytes = b"\r\nhello\r\n") -> bytes:
    return (
        b"From: =?gb2312?B?"
        + b64("张喆", "gbk").encode()
        + b"?= <zz@ibcas.ac.cn>\r\n"
        + headers
        + body
    )


def test_gb2312_label_holding_gbk_only_characters() -> None:
    subject = f"合作专项建议书：{NAME}"
    raw = mail(f"Subject: =?gb2312?B?{b64(subject, 'gbk')}?=\r\n".encode())
    # What mail-parser makes of it: the Chinese is lost (a known fact, kept as a guard).
    assert mailparser.parse_from_bytes(raw).subject != subject
    message = parse_message(raw)
    assert message.subject == subject
    assert message.sender_name == "张喆"
    assert message.sender == "zz@ibcas.ac.cn"


def test_mislabelled_body_is_read_as_gb18030() -> None:
    text = "张喆、王堃、朱镕的建议书"
    raw = mail(
        b"Subject: x\r\nContent-Type: text/plain; charset=gb2312\r\n"
        b"Content-Transfer-Encoding: base64\r\n",
        b"\r\n" + b64(text, "gbk").encode() + b"\r\n",
    )
    assert "\ufffd" in "".join(mailparser.parse_from_bytes(raw).text_plain)
    assert parse_message(raw).text == text


def _attachment_mail(disposition: bytes, content_type: bytes = b"application/pdf") -> bytes:
    return mail(
        b'Subject: x\r\nMIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary="b1"\r\n',
        b"\r\n--b1\r\nContent-Type: text/plain; charset=utf-8\r\n\r\nhi\r\n--b1\r\n"
        b"Content-Type: " + content_type + b"\r\nContent-Disposition: " + disposition + b"\r\n"
        b"Content-Transfer-Encoding: base64\r\n\r\nJVBERi0xLjQK\r\n--b1--\r\n",
    )


def test_raw_gbk_bytes_in_a_quoted_filename() -> None:
    raw = _attachment_mail(b'attachment; filename="' + f"{NAME}.pdf".encode("gbk") + b'"')
    lost = mailparser.parse_from_bytes(raw).attachments[0]["filename"]
    assert "\ufffd" in lost
    [attachment] = parse_message(raw).attachments
    assert attachment.filename == f"{NAME}.pdf"
    assert attachment.data == b"%PDF-1.4\n"


def test_raw_utf8_bytes_in_a_quoted_filename() -> None:
    raw = _attachment_mail(b'attachment; filename="' + f"{NAME}.pdf".encode() + b'"')
    assert parse_message(raw).attachments[0].filename == f"{NAME}.pdf"


def test_encoded_words_inside_quotes_as_outlook_and_foxmail_send() -> None:
    word = f"=?gb2312?B?{b64(NAME + '.pdf', 'gbk')}?="
    raw = _attachment_mail(f'attachment; filename="{word}"'.encode())
    assert parse_message(raw).attachments[0].filename == f"{NAME}.pdf"


def test_rfc2231_continuations_as_coremail_and_gmail_send() -> None:
    encoded = "".join(f"%{b:02X}" for b in f"{NAME}（盖章版）.pdf".encode())
    half = len(encoded) // 2 // 3 * 3
    raw = _attachment_mail(
        f"attachment;\r\n filename*0*=UTF-8''{encoded[:half]};\r\n filename*1*={encoded[half:]}".encode()
    )
    assert parse_message(raw).attachments[0].filename == f"{NAME}（盖章版）.pdf"


def test_name_in_content_type_only() -> None:
    word = f"=?utf-8?B?{b64(NAME + '.pdf', 'utf-8')}?="
    raw = _attachment_mail(b"attachment", f'application/pdf; name="{word}"'.encode())
    assert parse_message(raw).attachments[0].filename == f"{NAME}.pdf"


def test_inline_part_with_only_a_content_id_is_not_an_attachment() -> None:
    raw = mail(
        b'Subject: x\r\nMIME-Version: 1.0\r\nContent-Type: multipart/related; boundary="r"\r\n',
        b'\r\n--r\r\nContent-Type: text/html; charset=utf-8\r\n\r\n<img src="cid:logo@x">\r\n'
        b"--r\r\nContent-Type: image/png\r\nContent-ID: <logo@x>\r\n"
        b"Content-Transfer-Encoding: base64\r\n\r\niVBORw0KGgo=\r\n--r--\r\n",
    )
    assert mailparser.parse_from_bytes(raw).attachments[0]["filename"] == "<logo@x>"
    message = parse_message(raw)
    assert message.attachments == ()
    assert [p.content_id for p in message.inline_parts] == ["<logo@x>"]


def test_raw_8bit_subject_utf8_and_gbk() -> None:
    subject = f"合作专项建议书：{NAME}"
    for codec in ("utf-8", "gbk"):
        raw = mail(b"Subject: " + subject.encode(codec) + b"\r\n")
        assert parse_message(raw).subject == subject


def test_encoded_words_split_inside_a_character() -> None:
    data = "合作专项建议书".encode("gbk")
    first, second = base64.b64encode(data[:5]).decode(), base64.b64encode(data[5:]).decode()
    assert decode_words(f"=?gb2312?B?{first}?=\r\n =?gb2312?B?{second}?=") == "合作专项建议书"


def test_decode_words_keeps_plain_text_and_q_encoding() -> None:
    assert decode_words("Re: =?utf-8?Q?=E5=BC=A0_=E5=96=86?= ok") == "Re: 张 喆 ok"
    assert decode_words("no words here") == "no words here"
    assert decode_words("=?x-unknown?B?5byg?=") == "张"  # unknown label: UTF-8 tried


def test_decode_bytes_falls_back() -> None:
    assert decode_bytes("张喆".encode("gbk"), "utf-8") == "张喆"
    assert decode_bytes("张喆".encode(), "gb2312") == "张喆"
    assert decode_bytes(b"\xff\xfe\xfd", "no-such-charset")


def test_subject_with_encoded_newline_is_one_line() -> None:
    word = b64("合作专项\r\n建议书", "utf-8")
    raw = mail(f"Subject: =?utf-8?B?{word}?=\r\n".encode())
    assert "\n" not in parse_message(raw).subject


def test_receipt_time_from_topmost_received_else_date() -> None:
    raw = mail(
        b"Received: from mx2 by mx.anso.org.cn; Fri, 30 Jul 2021 23:59:59 +0800\r\n"
        b"Received: from client by mx2; Fri, 30 Jul 2021 10:00:00 +0800\r\n"
        b"Date: Thu, 29 Jul 2021 08:00:00 +0000\r\nSubject: x\r\n"
    )
    message = parse_message(raw)
    assert message.receipt_guess == datetime(2021, 7, 30, 23, 59, 59, tzinfo=BEIJING)
    no_received = parse_message(mail(b"Date: Thu, 29 Jul 2021 08:00:00 -0000\r\nSubject: x\r\n"))
    assert no_received.receipt_guess == datetime(2021, 7, 29, 8, 0, tzinfo=UTC)


def test_message_ids_and_reply_to() -> None:
    raw = mail(
        b"Message-ID: <abc@qq.com>\r\nIn-Reply-To: <r1@anso.org.cn>\r\n"
        b"References: <r0@anso.org.cn> <r1@anso.org.cn>\r\nReply-To: Li <li@ibcas.ac.cn>\r\nSubject: x\r\n"
    )
    message = parse_message(raw)
    assert message.message_id == "<abc@qq.com>"
    assert message.in_reply_to == "<r1@anso.org.cn>"
    assert message.references == ("<r0@anso.org.cn>", "<r1@anso.org.cn>")
    assert message.reply_to == "li@ibcas.ac.cn"


def test_display_name_with_an_encoded_comma_stays_one_mailbox() -> None:
    word = f"=?utf-8?B?{b64('张, 喆', 'utf-8')}?="
    message = parse_message(f"From: {word} <zz@ibcas.ac.cn>\r\nSubject: x\r\n\r\n".encode())
    assert message.from_addresses == ("zz@ibcas.ac.cn",)
    assert message.sender_name == "张, 喆"


def test_forwarded_mail_is_one_attachment() -> None:
    inner = b"From: a@b.cn\r\nSubject: hello\r\n\r\nbody\r\n"
    raw = mail(
        b'Subject: x\r\nMIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary="f"\r\n',
        b"\r\n--f\r\nContent-Type: text/plain\r\n\r\nsee attached\r\n--f\r\n"
        b"Content-Type: message/rfc822\r\n\r\n" + inner + b"\r\n--f--\r\n",
    )
    [attachment] = parse_message(raw).attachments
    assert attachment.filename == "hello.eml"
    assert attachment.content_type == "message/rfc822"


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("a+b.PDF", ("a+b", ".pdf")),
        ("a+b", ("a+b", "")),
        (".pdf", (".pdf", "")),
        ("x.tar.gz", ("x.tar", ".gz")),
        ("张喆.docx ", ("张喆", ".docx")),
    ],
)
def test_split_extension(name: str, expected: tuple[str, str]) -> None:
    assert split_extension(name) == expected


@pytest.mark.parametrize(
    "raw",
    [
        b"",
        b"\x00\x01\x02",
        b"not a mail at all",
        b"Subject: =?utf-8?B?####?=\r\n\r\n",
        b"Content-Type: multipart/mixed\r\n\r\n--x\r\n\r\n",
        b'From: <>\r\nFrom: a\r\nContent-Type: text/plain; charset=""\r\n\r\n\xff',
        b"Content-Type: multipart/mixed; boundary=a\r\n\r\n"
        + b"--a\r\nContent-Type: multipart/mixed; boundary=a\r\n\r\n" * 300,
    ],
)
def test_any_bytes_make_a_message(raw: bytes) -> None:
    message = parse_message(raw)
    assert message.raw_size == len(raw)
