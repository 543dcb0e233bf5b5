"""Applicant mails broken on purpose: a lost boundary, corrupt base64, an unknown charset."""

from __future__ import annotations

import base64
import re

from tests.mailfactory import SAMPLE_STEM, SAMPLE_SUBJECT, build_mail
from tests.mailfactory.base import DEFAULT_DATE, Att
from tests.mailfactory.documents import docx_bytes, pdf_bytes
from tests.mailfactory.encoders import (
    CRLF,
    b64_body,
    crlf,
    fold_params,
    guess_content_type,
    rfc2231_params,
    rfc2822_date,
)


def _sample_attachments() -> list[Att]:
    return [
        Att(f"{SAMPLE_STEM}.docx", docx_bytes()),
        Att(f"{SAMPLE_STEM}.pdf", pdf_bytes()),
    ]


def broken_no_boundary() -> bytes:
    """An Outlook-style applicant mail whose multipart/mixed header lost its boundary parameter."""
    raw = build_mail("outlook", subject=SAMPLE_SUBJECT, attachments=_sample_attachments())
    head, sep, rest = raw.partition(b"\r\n\r\n")
    fixed = re.sub(
        rb"Content-Type: multipart/mixed;\r\n\tboundary=\"[^\"]*\"",
        b"Content-Type: multipart/mixed",
        head,
        count=1,
    )
    assert fixed != head
    return fixed + sep + rest


def broken_bad_base64() -> bytes:
    """A Foxmail-style applicant mail whose PDF has corrupt base64 (illegal chars, bad padding)."""
    pdf = pdf_bytes()
    raw = build_mail("foxmail", subject=SAMPLE_SUBJECT, attachments=_sample_attachments())
    good = b64_body(pdf)
    lines = good.split(b"\r\n")[:-1]
    # Illegal characters mid-stream, a stray "=" inside the data and a last quantum cut short.
    lines[1] = lines[1][:20] + b"*#!\xa7" + lines[1][20:]
    lines[2] = lines[2][:8] + b"=" + lines[2][8:]
    lines[-1] = lines[-1].rstrip(b"=")[:-1]
    bad = b"\r\n".join(lines) + b"\r\n"
    assert raw.count(good) == 1
    return raw.replace(good, bad)


def broken_unknown_charset() -> bytes:
    """An applicant mail whose subject and body say charset x-unknown-foo (the bytes are UTF-8)."""
    subject_word = (
        f"=?x-unknown-foo?B?{base64.b64encode(SAMPLE_SUBJECT.encode('utf-8')).decode('ascii')}?="
    )
    body = crlf("您好，附件是我们的合作专项建议书，请查收。\n\n张喆").encode("utf-8")
    boundary = "----=_Part_318_1502977430.1626746400000"
    date = rfc2822_date(DEFAULT_DATE)
    head = CRLF.join(
        [
            'From: "=?x-unknown-foo?B?5byg5ZaG?=" <zhangzhe@ibcas.ac.cn>',
            "To: anso2021program@anso.org.cn",
            f"Subject: {subject_word}",
            f"Date: {date}",
            "Message-ID: <5f3a9c1e.4b2d.17ac4a6b5d2.unknown@ibcas.ac.cn>",
            "MIME-Version: 1.0",
            f'Content-Type: multipart/mixed; boundary="{boundary}"',
        ]
    ).encode("ascii")
    text_part = (
        b'Content-Type: text/plain; charset="x-unknown-foo"\r\n'
        b"Content-Transfer-Encoding: base64\r\n\r\n" + b64_body(body)
    )
    parts = [text_part]
    for att in _sample_attachments():
        assert att.filename is not None
        disp = rfc2231_params("filename", att.filename, "UTF-8")
        parts.append(
            fold_params("Content-Type", guess_content_type(att.filename), [], "fit").encode("ascii")
            + b"\r\nContent-Transfer-Encoding: base64\r\n"
            + fold_params("Content-Disposition", "attachment", disp, "tab").encode("ascii")
            + b"\r\n\r\n"
            + b64_body(att.data)
        )
    delim = b"--" + boundary.encode("ascii")
    payload = b"".join(delim + b"\r\n" + p + b"\r\n" for p in parts) + delim + b"--\r\n"
    return head + b"\r\n\r\n" + payload
