"""The content hash read in pieces: the same digest as the whole-mail function it replaced."""

from __future__ import annotations

import hashlib
import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mailbot.store.content import _content_sha256, content_sha256, is_trace
from tests.conftest import ROOT, SHARED
from tests.mailfactory import CLIENTS, build_mail
from tests.mailfactory.base import Att
from tests.mailfactory.documents import pdf_bytes

_FIELD_NAME = re.compile(rb"^([!-9;-~]+)[ \t]*:")


def whole_mail_sha256(raw: bytes) -> str:
    """``content_sha256`` as it was: the whole mail normalised, then split (two copies of it)."""
    text = raw.replace(b"\r\n", b"\n").replace(b"\r", b"\n")
    head, separator, body = text.partition(b"\n\n")
    kept: list[bytes] = []
    dropping = False
    for number, line in enumerate(head.split(b"\n")):
        if line[:1] in (b" ", b"\t"):
            if not dropping:
                kept.append(line)
            continue
        match = _FIELD_NAME.match(line)
        if number == 0 and match is None and line.startswith(b"From "):
            dropping = True
            continue
        dropping = match is not None and is_trace(match.group(1).decode("ascii"))
        if not dropping:
            kept.append(line)
    digest = hashlib.sha256(b"\n".join(kept))
    digest.update(separator)
    digest.update(body.rstrip(b"\n"))
    return digest.hexdigest()


PIECES = [
    b"\r",
    b"\n",
    b"\r\n",
    b"\r\r\n",
    b"\n\r",
    b" ",
    b"\t",
    b"x",
    b"QUJD",
    b":",
    b"From ",
    b"From: a@b\r\n",
    b"Received: from x\r\n",
    b"X-Spam-Score: 5\n",
    b" folded\r\n",
    b"Subject: s\r\n",
    b"\xff",
]


@pytest.mark.slow
@settings(max_examples=3000, deadline=None, derandomize=True, database=None)
@given(pieces=st.lists(st.sampled_from(PIECES), max_size=40), chunk=st.integers(1, 9))
def test_pieces_of_any_size_give_the_whole_mail_digest(pieces: list[bytes], chunk: int) -> None:
    raw = b"".join(pieces)
    assert _content_sha256(raw, chunk) == whole_mail_sha256(raw)


@settings(max_examples=500, deadline=None, derandomize=True, database=None)
@given(raw=st.binary(max_size=200), chunk=st.integers(1, 9))
def test_any_bytes_give_the_whole_mail_digest(raw: bytes, chunk: int) -> None:
    assert _content_sha256(raw, chunk) == content_sha256(raw) == whole_mail_sha256(raw)


def test_real_mails_give_the_whole_mail_digest() -> None:
    mails = [path.read_bytes() for path in sorted((ROOT / "tests" / "data").glob("*.eml"))]
    files = [Att("scan.pdf", pdf_bytes(3))]
    mails += [build_mail(client, subject="s", attachments=files) for client in CLIENTS]
    folder = SHARED / "corpora"
    if folder.is_dir():
        mails += [path.read_bytes() for path in sorted(folder.rglob("*.eml"))]
    for raw in mails:
        lf = raw.replace(b"\r\n", b"\n")
        for mail in (raw, lf, raw + b"\r\n\r\n", lf + b"\n\n\n"):
            assert content_sha256(mail) == whole_mail_sha256(mail)
            assert _content_sha256(mail, 7) == whole_mail_sha256(mail)


def test_a_crlf_across_the_edge_of_a_megabyte() -> None:
    head = b"From: a@b\r\nSubject: s\r\n\r\n"
    for shift in range(-3, 4):  # the body is read a megabyte at a time from its first byte
        body = b"x" * (2**20 - 1 + shift) + b"\r\n" * 3 + b"y\r\r\n" + b"\n" * 2**20
        for raw in (head + body, head + body + b"z", head + body.replace(b"\r\n", b"\r")):
            assert content_sha256(raw) == whole_mail_sha256(raw)
