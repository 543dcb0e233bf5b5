"""Sanity checks of the sample-mail factory, using only the standard library."""

from __future__ import annotations

import base64
import email
import email.errors
import email.policy
import io
import re
import zipfile
from datetime import datetime, timedelta, timezone
from email.message import Message
from email.utils import format_datetime
from xml.etree import ElementTree

import pytest

from tests import mailfactory as mf
from tests.mailfactory.base import Att
from tests.mailfactory.broken import broken_bad_base64, broken_no_boundary, broken_unknown_charset
from tests.mailfactory.documents import docx_bytes, pdf_bytes

DOCX = docx_bytes()
PDF = pdf_bytes(pages=2)
ATTS = [Att(f"{mf.SAMPLE_STEM}.docx", DOCX), Att(f"{mf.SAMPLE_STEM}.pdf", PDF)]
# 41 GBK bytes precede "（", so the 42-byte Outlook word boundary cuts that character in half.
LONG_SUBJECT = f"{mf.SAMPLE_SUBJECT}（第二轮修改稿，请以此为准）"
_WORD = re.compile(r"=\?([^?]+)\?([BbQq])\?([^?]*)\?=")


def _header_block(raw: bytes) -> bytes:
    return raw.split(b"\r\n\r\n", 1)[0]


def _raw_header(raw: bytes, name: str) -> str:
    """The unfolded raw value of the first header called name."""
    unfolded = re.sub(rb"\r\n[ \t]", b" ", _header_block(raw)).decode("ascii", "surrogateescape")
    for line in unfolded.split("\r\n"):
        key, _, value = line.partition(":")
        if key.lower() == name.lower():
            return value.strip()
    raise KeyError(name)


def _leaves(msg: Message) -> list[Message]:
    return [p for p in msg.walk() if not p.is_multipart()]


@pytest.mark.parametrize("client", mf.CLIENTS)
def test_every_client_builds_a_clean_parseable_mail(client: str) -> None:
    raw = mf.build_mail(client, subject=mf.SAMPLE_SUBJECT, attachments=ATTS)
    assert b"\n" not in raw.replace(b"\r\n", b""), "bare LF"
    for policy in (email.policy.compat32, email.policy.default):
        msg = email.message_from_bytes(raw, policy=policy)
        assert msg.is_multipart()
        assert [d for part in msg.walk() for d in part.defects] == []
        payloads = [p.get_payload(decode=True) for p in _leaves(msg)]
        assert PDF in payloads
        assert DOCX in payloads
        assert msg["Message-ID"]
        assert msg["Date"]
        assert msg["From"]
        assert msg["Subject"]


@pytest.mark.parametrize("client", mf.CLIENTS)
def test_message_ids_are_unique_and_attachments_folded_at_76(client: str) -> None:
    first = mf.build_mail(client, subject=mf.SAMPLE_SUBJECT, attachments=ATTS)
    second = mf.build_mail(client, subject=mf.SAMPLE_SUBJECT, attachments=ATTS)
    assert _raw_header(first, "Message-ID") != _raw_header(second, "Message-ID")
    pdf_b64 = base64.b64encode(PDF)
    lines = [pdf_b64[i : i + 76] for i in range(0, len(pdf_b64), 76)]
    assert b"\r\n".join(lines) + b"\r\n" in first


def test_outlook_subject_is_gb2312_labelled_gbk_split_mid_character() -> None:
    raw = mf.build_mail("outlook", subject=LONG_SUBJECT)
    words = _WORD.findall(_raw_header(raw, "Subject"))
    assert len(words) >= 2
    assert {label for label, _, _ in words} == {"gb2312"}
    chunks = [base64.b64decode(text) for _, _, text in words]
    joined = b"".join(chunks)
    assert joined.decode("gb18030") == LONG_SUBJECT
    with pytest.raises(UnicodeDecodeError):
        joined.decode("gb2312")  # 喆 is GBK, not GB2312: the label lies
    with pytest.raises(UnicodeDecodeError):
        chunks[0].decode("gb18030")  # the first word ends inside a character


def test_outlook_names_are_quoted_encoded_words() -> None:
    raw = mf.build_mail("outlook", subject=mf.SAMPLE_SUBJECT, attachments=ATTS)
    assert _raw_header(raw, "From").startswith('"=?gb2312?B?')
    msg = email.message_from_bytes(raw)
    names = [name for p in _leaves(msg) if (name := p.get_filename())]
    assert names
    assert all(n.startswith("=?gb2312?B?") for n in names)
    decoded = {base64.b64decode(_WORD.findall(n)[0][2]).decode("gb18030") for n in names}
    assert decoded == {f"{mf.SAMPLE_STEM}.docx", f"{mf.SAMPLE_STEM}.pdf"}


def test_coremail_long_filename_uses_rfc2231_continuations() -> None:
    long_name = "附件3：中国科学院植物研究所合作专项建议书（盖章版）+张喆.pdf"
    raw = mf.build_mail(
        "coremail",
        subject=mf.SAMPLE_SUBJECT,
        attachments=[Att(long_name, PDF), Att("预算.xlsx", b"PK\x03\x04")],
    )
    assert b"filename*0*=UTF-8''%E9%99%84" in raw
    assert b"filename*1*=" in raw
    assert b"filename*=UTF-8''%E9%A2%84%E7%AE%97.xlsx" in raw
    msg = email.message_from_bytes(raw)
    names = [p.get_filename() for p in _leaves(msg) if p.get_filename()]
    assert names == [long_name, "预算.xlsx"]


def test_applemail_splits_rfc2231_segments_inside_characters() -> None:
    raw = mf.build_mail("applemail", subject=mf.SAMPLE_SUBJECT, attachments=ATTS)
    segment = re.search(rb"filename\*1\*=(%[0-9A-F]{2})", raw)
    assert segment is not None
    assert 0x80 <= int(segment.group(1)[1:], 16) <= 0xBF  # a UTF-8 continuation byte
    msg = email.message_from_bytes(raw)
    assert f"{mf.SAMPLE_STEM}.pdf" in [p.get_filename() for p in msg.walk()]


def test_raw_clients_write_8bit_headers() -> None:
    utf8 = mf.build_mail("raw_utf8", subject=mf.SAMPLE_SUBJECT, attachments=ATTS)
    gbk = mf.build_mail("raw_gbk", subject=mf.SAMPLE_SUBJECT, attachments=ATTS)
    assert f"Subject: {mf.SAMPLE_SUBJECT}".encode() in utf8
    assert f'filename="{mf.SAMPLE_STEM}.pdf"'.encode("gb18030") in gbk
    assert b"=?" not in _header_block(utf8) + _header_block(gbk)


def test_received_extra_headers_and_overrides() -> None:
    got = datetime(2021, 7, 20, 10, 0, 7, tzinfo=timezone(timedelta(hours=8)))
    raw = mf.build_mail(
        "qqmail",
        subject=mf.SAMPLE_SUBJECT,
        sender=("张喆", "12345678@qq.com"),
        received_at=got,
        message_id="<fixed@example.org>",
        in_reply_to="<orig@anso.org.cn>",
        reply_to="zhangzhe@ibcas.ac.cn",
        headers=[("Auto-Submitted", "auto-replied")],
    )
    assert raw.startswith(b"Received: from ")
    top = _raw_header(raw, "Received")
    assert "by mx.anso.org.cn" in top
    assert top.endswith(format_datetime(got))
    msg = email.message_from_bytes(raw)
    assert msg["Message-ID"] == "<fixed@example.org>"
    assert msg["In-Reply-To"] == "<orig@anso.org.cn>"
    assert msg["Auto-Submitted"] == "auto-replied"
    assert "zhangzhe@ibcas.ac.cn" in msg["Reply-To"]


def test_inline_cid_part_has_no_filename() -> None:
    png = b"\x89PNG\r\n\x1a\n" + bytes(16)
    for client in mf.CLIENTS:
        raw = mf.build_mail(
            client,
            subject=mf.SAMPLE_SUBJECT,
            attachments=[*ATTS, Att(None, png, inline_cid="image001.png@01D77D5E.9A4D5F40")],
        )
        msg = email.message_from_bytes(raw)
        (inline,) = [p for p in msg.walk() if p.get_content_type() == "image/png"]
        assert inline.get_filename() is None
        assert inline["Content-ID"] == "<image001.png@01D77D5E.9A4D5F40>"
        assert inline.get_payload(decode=True) == png
        assert inline.get_content_disposition() in (None, "inline")


def test_naive_dates_are_rejected() -> None:
    with pytest.raises(ValueError):
        mf.build_mail("gmail", subject="x", date=datetime(2021, 7, 20, 10, 0))


def test_pdf_bytes_is_a_consistent_pdf() -> None:
    pdf = pdf_bytes(pages=3, text="proposal (draft)")
    assert pdf.startswith(b"%PDF-")
    assert pdf.endswith(b"%%EOF")
    startxref = int(re.findall(rb"startxref\n(\d+)\n%%EOF$", pdf)[0])
    assert pdf[startxref:].startswith(b"xref\n")
    table = pdf[startxref:].split(b"trailer", 1)[0].split(b"\n")
    first, count = map(int, table[1].split())
    entries = table[2 : 2 + count]
    assert first == 0
    assert all(len(e) == 19 for e in entries)  # 20 bytes with the newline
    for num, entry in enumerate(entries[1:], start=1):
        offset = int(entry[:10])
        assert pdf[offset:].startswith(b"%d 0 obj" % num)
    assert b"/Count 3" in pdf
    assert b"(proposal \\(draft\\) - page 2) Tj" in pdf
    for match in re.finditer(rb"<< /Length (\d+) >>\nstream\n", pdf):
        end = match.end() + int(match.group(1))
        assert pdf[end:].startswith(b"endstream")


def test_docx_bytes_is_a_word_package() -> None:
    data = docx_bytes(["项目名称：示例", "A & B <C>"])
    assert zipfile.is_zipfile(io.BytesIO(data))
    with zipfile.ZipFile(io.BytesIO(data)) as zf:
        assert zf.testzip() is None
        names = zf.namelist()
        assert names[0] == "[Content_Types].xml"
        assert {"_rels/.rels", "word/document.xml"} <= set(names)
        root = ElementTree.fromstring(zf.read("word/document.xml"))
    ns = "{http://schemas.openxmlformats.org/wordprocessingml/2006/main}"
    assert [t.text for t in root.iter(f"{ns}t")] == ["项目名称：示例", "A & B <C>"]


def test_broken_no_boundary() -> None:
    raw = broken_no_boundary()
    msg = email.message_from_bytes(raw)
    assert msg.get_content_type() == "multipart/mixed"
    assert msg.get_param("boundary") is None
    assert any(isinstance(d, email.errors.NoBoundaryInMultipartDefect) for d in msg.defects)


def test_broken_bad_base64() -> None:
    msg = email.message_from_bytes(broken_bad_base64())
    payloads = [p.get_payload(decode=True) for p in _leaves(msg)]
    assert docx_bytes() in payloads
    assert pdf_bytes() not in payloads
    (bad,) = [p for p in _leaves(msg) if "*#!" in p.get_payload()]
    word = base64.b64encode(f"{mf.SAMPLE_STEM}.pdf".encode("gb18030")).decode("ascii")
    assert bad.get_filename() == f"=?GB2312?B?{word}?="


def test_broken_unknown_charset() -> None:
    raw = broken_unknown_charset()
    msg = email.message_from_bytes(raw)
    assert _WORD.findall(_raw_header(raw, "Subject"))[0][0] == "x-unknown-foo"
    text = _leaves(msg)[0]
    assert text.get_content_charset() == "x-unknown-foo"
    payload = text.get_payload(decode=True)
    assert isinstance(payload, bytes)
    assert payload.decode("utf-8").startswith("您好")
    assert f"{mf.SAMPLE_STEM}.pdf" in [p.get_filename() for p in msg.walk()]
