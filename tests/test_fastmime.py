"""Large base64 bodies cut out before parsing (mailbot.mail.fastmime): the same Message as parsed whole.

Every comparison parses a mail twice: with runs of any length cut out
(``MIN_LINES`` 1, so that every body of base64 lines takes the fast path
or is put back) and with nothing cut, which is how every mail was parsed
before. The MIME screen's delimiter search is held to the regular
expression search it replaces in the same way.
"""

from __future__ import annotations

import base64
import random
import re
from collections.abc import Callable, Iterator
from contextlib import contextmanager

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mailbot.mail import fastmime, screen
from mailbot.mail.message import Message
from mailbot.mail.parsing import _build_tree, parse_message
from tests.conftest import ROOT, SHARED
from tests.docfactory import form_docx
from tests.mailfactory import CLIENTS, build_mail
from tests.mailfactory.base import Att
from tests.mailfactory.documents import pdf_bytes
from tests.test_hostile_property import hostile_mails

STEM = "中国科学院植物研究所+张喆"
SUBJECT = f"合作专项建议书：{STEM}"
SCAN = b"%PDF-1.4\n" + random.Random(7).randbytes(120_001)  # 2,106 lines of base64, "=="
BOUNDARY = b"----=_Part_1_2.3"


@contextmanager
def min_lines(lines: int) -> Iterator[None]:
    saved = fastmime.MIN_LINES
    fastmime.MIN_LINES = lines
    try:
        yield
    finally:
        fastmime.MIN_LINES = saved


def whole(raw: bytes) -> Message:
    """The mail parsed as before: nothing cut out."""
    with min_lines(10**12):
        assert fastmime.cut(raw) is None
        return parse_message(raw)


def assert_as_parsed_whole(raw: bytes, lines: int = 1) -> Message:
    # A forwarded multipart with an empty boundary is written out with a random one.
    state = random.getstate()
    try:
        random.seed(1)
        with min_lines(lines):
            fast = parse_message(raw)
        random.seed(1)
        assert fast == whole(raw)
    finally:
        random.setstate(state)
    return fast


def decoded_runs(raw: bytes, lines: int = 1) -> int:
    """How many runs reached a part as decoded bytes."""
    with min_lines(lines):
        cut = _build_tree(raw)[3]
    return len(cut.decoded) if cut is not None else 0


def with_body(
    body: bytes, cte: bytes = b"base64", ending: bytes = b"\r\n", boundary: bytes = BOUNDARY
) -> bytes:
    """A mail with a text part and one PDF whose body, as written, is ``body``."""
    head = (
        b"From: a@ibcas.ac.cn\r\nSubject: x\r\nMIME-Version: 1.0\r\n"
        b'Content-Type: multipart/mixed; boundary="' + boundary + b'"\r\n\r\n'
        b"--" + boundary + b"\r\nContent-Type: text/plain; charset=utf-8\r\n\r\nhi\r\n"
        b"--" + boundary + b"\r\nContent-Type: application/pdf\r\n"
        b'Content-Disposition: attachment; filename="scan.pdf"\r\n'
        b"Content-Transfer-Encoding: " + cte + b"\r\n\r\n"
    )
    tail = b"\r\n--" + boundary + b"--\r\n"
    return (head + body + tail).replace(b"\r\n", ending)


def b64_lines(data: bytes, width: int = 76) -> list[bytes]:
    text = base64.b64encode(data)
    return [text[i : i + width] for i in range(0, len(text), width)]


# ----------------------------------------------------------------------- the fast path


@pytest.mark.parametrize("client", CLIENTS)
def test_a_large_attachment_is_decoded_without_the_parser(client: str) -> None:
    files = [Att(f"{STEM}.pdf", SCAN), Att(f"{STEM}.docx", form_docx())]
    raw = build_mail(client, subject=SUBJECT, attachments=files)
    cut = fastmime.cut(raw)
    assert cut is not None
    assert len(cut.data) < len(raw) / 5
    assert decoded_runs(raw, fastmime.MIN_LINES) >= 1
    message = assert_as_parsed_whole(raw, fastmime.MIN_LINES)
    [scan] = [a for a in message.attachments if a.filename == f"{STEM}.pdf"]
    assert scan.data == SCAN
    assert message == assert_as_parsed_whole(raw)


def test_a_mail_of_lf_lines_takes_the_fast_path_too() -> None:
    raw = with_body(b"\r\n".join(b64_lines(SCAN)), ending=b"\n")
    assert decoded_runs(raw, fastmime.MIN_LINES) == 1
    assert assert_as_parsed_whole(raw, fastmime.MIN_LINES).attachments[0].data == SCAN


def test_a_single_part_mail_and_a_blank_line_after_the_body() -> None:
    body = b"\r\n".join(b64_lines(SCAN)) + b"\r\n"
    raw = (
        b"From: a@ibcas.ac.cn\r\nContent-Type: application/pdf; name=scan.pdf\r\n"
        b"Content-Transfer-Encoding: base64\r\n\r\n" + body
    )
    for mail in (raw, raw + b"\r\n\r\n", raw.replace(b"\r\n\r\n", b"\r\n\r\n\r\n", 1)):
        assert decoded_runs(mail) == 1
        assert assert_as_parsed_whole(mail).attachments[0].data == SCAN
    assert decoded_runs(with_body(body + b"\r\n")) == 1


def test_text_in_the_mail_that_looks_like_a_token() -> None:
    raw = with_body(b"\r\n".join(b64_lines(SCAN))).replace(
        b"hi\r\n", b"#mailbot-base64-0-000000# #mailbot-base64-1-\r\n"
    )
    cut = fastmime.cut(raw, 1)
    assert cut is not None
    assert cut.prefix == "#mailbot-base64-2-"
    assert decoded_runs(raw) == 1
    assert assert_as_parsed_whole(raw).text.startswith("#mailbot-base64-0-000000#")


def test_a_forwarded_mail_is_written_out_with_its_attachments() -> None:
    inner = build_mail("outlook", subject=SUBJECT, attachments=[Att(f"{STEM}.pdf", SCAN)])
    for ending in (b"\r\n", b"\n"):
        raw = (
            b"From: b@ibcas.ac.cn\r\nSubject: Fw\r\nMIME-Version: 1.0\r\n"
            b"Content-Type: multipart/mixed; boundary=o\r\n\r\n--o\r\n"
            b"Content-Type: text/plain\r\n\r\nsee the forwarded mail\r\n--o\r\n"
            b"Content-Type: message/rfc822\r\n\r\n" + inner + b"\r\n--o--\r\n"
        ).replace(b"\r\n", ending)
        assert decoded_runs(raw, fastmime.MIN_LINES) == 1
        message = assert_as_parsed_whole(raw, fastmime.MIN_LINES)
        [forwarded, scan] = message.attachments
        assert forwarded.filename.endswith(".eml")
        assert scan.data == SCAN
        assert len(forwarded.data) > len(SCAN)


def test_a_part_that_is_not_base64_gets_its_lines_back() -> None:
    lines = b"\r\n".join(b64_lines(SCAN))
    for cte in (b"7bit", b"base64 ", b"quoted-printable", b"x-uuencode"):
        raw = with_body(lines, cte)
        assert decoded_runs(raw) == 0
        assert assert_as_parsed_whole(raw).attachments[0].data.startswith(lines[:76])
    preamble = with_body(lines).replace(b"\r\n\r\n--", b"\r\n\r\n" + lines + b"\r\n--", 1)
    epilogue = with_body(lines) + b"\r\n" + lines + b"\r\n"
    for raw in (preamble, epilogue):
        assert decoded_runs(raw) == 1
        assert_as_parsed_whole(raw)
    for subtype in (b"plain", b"html"):
        raw = with_body(lines).replace(b"application/pdf", b"text/" + subtype)
        raw = raw.replace(b'Content-Disposition: attachment; filename="scan.pdf"\r\n', b"")
        assert decoded_runs(raw) == 1
        assert_as_parsed_whole(raw)


# ----------------------------------------------------------------------- bad base64


Damage = Callable[[list[bytes], int], list[bytes]]
"""A change to a body's base64 lines, given the index of the middle one; returns the lines."""


def _in_middle(edit: Callable[[bytes], bytes]) -> Damage:
    def change(lines: list[bytes], middle: int) -> list[bytes]:
        lines[middle] = edit(lines[middle])
        return lines

    return change


def _in_last(edit: Callable[[bytes], bytes]) -> Damage:
    def change(lines: list[bytes], middle: int) -> list[bytes]:
        lines[-1] = edit(lines[-1])
        return lines

    return change


def _inserted(line: bytes) -> Damage:
    def change(lines: list[bytes], middle: int) -> list[bytes]:
        lines.insert(middle, line)
        return lines

    return change


def _appended(*added: bytes) -> Damage:
    def change(lines: list[bytes], middle: int) -> list[bytes]:
        lines += added
        return lines

    return change


def _joined_to_next(separator: bytes) -> Damage:
    def change(lines: list[bytes], middle: int) -> list[bytes]:
        lines[middle] = lines[middle] + separator + lines.pop(middle + 1)
        return lines

    return change


def _padding_line_alone(lines: list[bytes], middle: int) -> list[bytes]:
    lines[-1], padding = lines[-1].rstrip(b"="), lines[-1][len(lines[-1].rstrip(b"=")) :]
    lines.append(padding or b"==")
    return lines


def _different_width(lines: list[bytes], middle: int) -> list[bytes]:
    text = b"".join(lines)
    return lines[:middle] + [text[i : i + 64] for i in range(middle * 76, len(text), 64)]


def _as_is(lines: list[bytes], middle: int) -> list[bytes]:
    return lines


# The damage done to the lines alone; damaged() builds the two that change the mail around them.
LINE_DAMAGE: dict[str, Damage] = {
    "invalid character": _in_middle(lambda line: line[:10] + b"*" + line[11:]),
    "non-ascii byte": _in_middle(lambda line: line[:10] + b"\xa7" + line[11:]),
    "padding inside": _in_middle(lambda line: line[:10] + b"=" + line[11:]),
    "padding at a line end": _in_middle(lambda line: line[:-2] + b"=="),
    "last quantum short": _in_last(lambda line: line.rstrip(b"=")[:-1]),
    "padding missing": _in_last(lambda line: line.rstrip(b"=")),
    "padding too long": _in_last(lambda line: line + b"="),
    "padding line alone": _padding_line_alone,
    "character missing": _in_middle(lambda line: line[1:]),
    "character added": _in_middle(lambda line: line + b"A"),
    "space at a line end": _in_middle(lambda line: line + b" "),
    "colon": _in_middle(lambda line: line[:10] + b":" + line[11:]),
    "lone CR": _in_middle(lambda line: line[:38] + b"\r" + line[38:]),
    "lone LF": _in_middle(lambda line: line[:38] + b"\n" + line[38:]),
    "LF line in CRLF": _joined_to_next(b"\n"),
    "LF line as wide as a CRLF one": _joined_to_next(b"A\n"),
    "blank line inside": _inserted(b""),
    "blank CR line inside": _in_middle(lambda line: line + b"\r"),
    "delimiter inside": _inserted(b"--" + BOUNDARY),
    "header line inside": _inserted(b"Content-Type: text/plain"),
    "trailing text": _appended(b"", b"-- ", b"sent from my phone"),
    "trailing short lines": _appended(b"QUJD", b"QUJD", b"QUJD", b"QUJD"),
    "different width": _different_width,
}


def damaged(change: str) -> bytes:
    """The scan's base64 in a mail, damaged as named."""
    lines = b64_lines(SCAN)
    middle = len(lines) // 2
    if change == "delimiter of the same width":  # "--", 74 characters, CRLF: a line's width
        boundary = BOUNDARY.ljust(74, b"x")
        lines.insert(middle, b"--" + boundary)
        return with_body(b"\r\n".join(lines), boundary=boundary)
    if change == "no line end at the end":
        head = b"From: a@ibcas.ac.cn\r\nContent-Type: application/pdf\r\n"
        return head + b"Content-Transfer-Encoding: base64\r\n\r\n" + b"\r\n".join(lines)
    lines = LINE_DAMAGE.get(change, _as_is)(lines, middle)
    return with_body(b"\r\n".join(lines))


DAMAGE = [
    "invalid character",
    "non-ascii byte",
    "padding inside",
    "padding at a line end",
    "last quantum short",
    "padding missing",
    "padding too long",
    "padding line alone",
    "character missing",
    "character added",
    "space at a line end",
    "colon",
    "lone CR",
    "lone LF",
    "LF line in CRLF",
    "LF line as wide as a CRLF one",
    "blank line inside",
    "blank CR line inside",
    "delimiter inside",
    "delimiter of the same width",
    "header line inside",
    "trailing text",
    "trailing short lines",
    "no line end at the end",
    "different width",
]


@pytest.mark.parametrize("change", DAMAGE)
def test_bad_base64_is_read_as_before(change: str) -> None:
    raw = damaged(change)
    for lines in (1, fastmime.MIN_LINES):
        assert_as_parsed_whole(raw, lines)


def test_bad_base64_is_left_to_the_parser() -> None:
    for change in ("invalid character", "padding inside", "last quantum short", "lone CR"):
        assert decoded_runs(damaged(change), fastmime.MIN_LINES) == 0, change
    # The two halves around a line of another width: neither alone is the part's body.
    assert decoded_runs(damaged("different width"), fastmime.MIN_LINES) == 0
    assert decoded_runs(damaged("trailing short lines"), fastmime.MIN_LINES) == 0
    assert decoded_runs(damaged("padding at a line end"), fastmime.MIN_LINES) == 0


@pytest.mark.parametrize("fault", [fastmime.Unsettled("lost"), RuntimeError("a bug")])
def test_the_mail_is_parsed_whole_when_a_token_goes_astray(
    fault: Exception, monkeypatch: pytest.MonkeyPatch
) -> None:
    raw = with_body(b"\r\n".join(b64_lines(SCAN)))

    def astray(self: fastmime.Cut, tree: object) -> object:
        raise fault

    monkeypatch.setattr(fastmime.Cut, "_settle", astray)
    _tree, parsed_by, defects, cut = _build_tree(raw)
    assert cut is None
    assert parsed_by == "mail-parser"
    assert defects == []
    assert assert_as_parsed_whole(raw).attachments[0].data == SCAN


def test_nesting_the_libraries_give_up_on_gives_the_same_defects() -> None:
    body = b"Content-Type: application/pdf\r\nContent-Transfer-Encoding: base64\r\n\r\n"
    body += b"\r\n".join(b64_lines(SCAN[:3000])) + b"\r\n"
    for levels in (50, 150, 250, 400):
        raw = b"From: a@ibcas.ac.cn\r\n" + b"".join(
            b"Content-Type: multipart/mixed; boundary=b%d\r\n\r\n--b%d\r\n" % (i, i)
            for i in range(levels)
        )
        message = assert_as_parsed_whole(raw + body)
        assert message.parsed_by in ("mail-parser", "email", "headers-only")


# ----------------------------------------------------------------------- whole corpora


def test_the_test_mails_and_built_mails_read_as_before() -> None:
    mails = [path.read_bytes() for path in sorted((ROOT / "tests" / "data").glob("*.eml"))]
    files = [Att(f"{STEM}.docx", form_docx()), Att(f"{STEM}.pdf", pdf_bytes(3))]
    mails += [build_mail(client, subject=SUBJECT, attachments=files) for client in CLIENTS]
    inline = Att("logo.png", b"\x89PNG\r\n\x1a\n" + bytes(3000), inline_cid="logo")
    mails += [build_mail(client, subject=SUBJECT, attachments=[inline]) for client in CLIENTS]
    fast = 0
    for raw in mails:
        assert_as_parsed_whole(raw)
        fast += decoded_runs(raw) > 0
    assert fast >= len(CLIENTS)


@pytest.mark.parametrize("name", ["mail-parser", "sisimai-bounces"])
def test_the_corpora_read_as_before(name: str) -> None:
    folder = SHARED / "corpora" / name
    if not folder.is_dir():
        pytest.skip(f"{folder} is absent: the team's sample corpora are not beside this checkout")
    for path in sorted(p for p in folder.rglob("*") if p.is_file()):
        raw = path.read_bytes()
        with min_lines(1):
            fast = parse_message(raw)
        assert fast == whole(raw), path.name


PROPERTY = settings(
    max_examples=300,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=list(HealthCheck),
)


@pytest.mark.slow
@PROPERTY
@given(raw=hostile_mails())
def test_hostile_mails_read_as_before(raw: bytes) -> None:
    assert_as_parsed_whole(raw)


JUNK = ["*", "=", "==", "-", "--", ":", " ", "\t", "\r", "\n", "\r\n", "\udca7", "A", "AB", ""]


@st.composite
def base64_mails(draw: st.DrawFn) -> bytes:
    """Base64 bodies of every width and ending, damaged or not, wherever a body can be."""
    ending = draw(st.sampled_from(["\r\n", "\n"]))
    width = draw(st.sampled_from([4, 8, 60, 76, 77]))
    text = base64.b64encode(draw(st.binary(max_size=400))).decode()
    lines = [text[i : i + width] for i in range(0, len(text), width)]
    for _ in range(draw(st.integers(0, 3))):
        if lines:
            index = draw(st.integers(0, len(lines) - 1))
            at = draw(st.integers(0, len(lines[index])))
            cut = draw(st.integers(0, 2))
            junk = draw(st.sampled_from(JUNK))
            lines[index] = lines[index][:at] + junk + lines[index][at + cut :]
    body = ending.join(lines) + draw(
        st.sampled_from([ending, "", ending * 2, f"{ending}x{ending}"])
    )
    cte = draw(st.sampled_from(["base64", "BASE64", "base64 ", "7bit", ""]))
    leaf = f"Content-Type: application/pdf\r\nContent-Transfer-Encoding: {cte}\r\n\r\n{body}"
    where = draw(st.sampled_from(["top", "part", "preamble", "epilogue", "forwarded", "report"]))
    head = "From: a@ibcas.ac.cn\r\nSubject: x\r\n"
    if where == "top":
        mail = head + leaf
    elif where == "forwarded":
        mail = head + "Content-Type: message/rfc822\r\n\r\n" + head + leaf
    elif where == "report":
        mail = head + f"Content-Type: message/delivery-status\r\n\r\n{body}\r\n\r\n{body}"
    else:
        before = body if where == "preamble" else ""
        after = body if where == "epilogue" else ""
        mail = (
            f"{head}Content-Type: multipart/mixed; boundary=b\r\n\r\n{before}"
            f"--b\r\n{leaf}\r\n--b\r\nContent-Type: text/plain\r\n\r\n{body}\r\n--b--\r\n{after}"
        )
    return mail.replace("\r\n", ending).encode("utf-8", "surrogateescape")


@PROPERTY
@given(raw=base64_mails())
def test_base64_bodies_read_as_before(raw: bytes) -> None:
    assert_as_parsed_whole(raw)


# ----------------------------------------------------------------------- the MIME screen


def regex_search(pattern: re.Pattern[bytes], raw: bytes, pos: int) -> re.Match[bytes] | None:
    return pattern.search(raw, pos)


def shape(raw: bytes, **bounds: int) -> tuple[int, int]:
    found = screen.measure_mime(raw, **bounds)
    return found.depth, found.parts


def assert_screened_as_before(raw: bytes, monkeypatch: pytest.MonkeyPatch) -> None:
    bounds = [(20, 500), (3, 5), (100, 2), (0, 0)]
    new = [shape(raw, max_depth=d, max_parts=p) for d, p in bounds]
    with monkeypatch.context() as patch:
        patch.setattr(screen, "_search", regex_search)
        assert [shape(raw, max_depth=d, max_parts=p) for d, p in bounds] == new


def test_the_screen_finds_the_delimiters_as_the_regular_expression_did(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    mails = [damaged(change) for change in DAMAGE]
    mails += [path.read_bytes() for path in sorted((ROOT / "tests" / "data").glob("*.eml"))]
    files = [Att(f"{STEM}.docx", form_docx()), Att(f"{STEM}.pdf", SCAN)]
    mails += [build_mail(client, subject=SUBJECT, attachments=files) for client in CLIENTS]
    folder = SHARED / "corpora"
    if folder.is_dir():
        mails += [p.read_bytes() for p in sorted(folder.rglob("*.eml"))]
    for raw in mails:
        assert_screened_as_before(raw, monkeypatch)


PIECES = ["\n", "\r\n", "\r", "-", "--", "--b", "--b--", "--bb", "--a", " ", "\t", "x", "QUJD"]


@settings(max_examples=500, deadline=None, derandomize=True, database=None)
@given(
    pieces=st.lists(st.sampled_from(PIECES), max_size=40),
    pos=st.integers(0, 60),
    window=st.integers(3, 9),
    names=st.sampled_from([[b"b"], [b"a", b"b"], [b"bb", b"b"]]),
)
def test_the_delimiter_search_is_the_regular_expression_search(
    pieces: list[str], pos: int, window: int, names: list[bytes]
) -> None:
    raw = "".join(pieces).encode()
    pattern = screen._delimiters(list(names))
    assert pattern is not None
    saved = screen._WINDOW
    screen._WINDOW = window  # small windows, so that a delimiter often lies across one's end
    try:
        found = screen._search(pattern, raw, min(pos, len(raw)))
    finally:
        screen._WINDOW = saved
    expected = pattern.search(raw, min(pos, len(raw)))
    assert (found and (found.span(), found.groups())) == (
        expected and (expected.span(), expected.groups())
    )
