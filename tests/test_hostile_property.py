"""Hostile MIME trees (hypothesis): whatever the bytes, parse_message + judge give a verdict.

The trees are built from the parts that break mail software: unknown and
malformed charsets, missing, empty, wrong and unclosed boundaries, bad
base64 and quoted-printable, huge headers, deep nesting, and attachment
names holding NUL, a right-to-left override, 1,000 characters or path
separators. 2,000 examples, derandomized so that CI sees the same ones.
"""

from __future__ import annotations

import base64
import hashlib
import json
import signal
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from types import FrameType

import pytest
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

from mailbot.calls import Call
from mailbot.judge.checks import verdict_for
from mailbot.judge.policy import DEFAULT_POLICY
from mailbot.judge.verdict import Status
from mailbot.mail.parsing import parse_message
from mailbot.mail.screen import screen
from tests.conftest import ROOT
from tests.mailfactory.documents import pdf_bytes

# Hypothesis judges hundreds of generated mails.
pytestmark = pytest.mark.slow

EXAMPLES = 2000
WATCHDOG = 10.0  # seconds one example may take before it counts as a hang
ARTIFACTS = ROOT / "tests" / "artifacts"


class HostileMail(bytes):
    """Raw mail that shows as its size and hash: a falsifying example can be 500 kB."""

    def __repr__(self) -> str:
        return f"<mail of {len(self)} bytes, sha256 {hashlib.sha256(self).hexdigest()[:12]}>"


STEM = "中国科学院植物研究所+张喆"
RECEIVED = "2021-07-20T10:00:00+08:00"

CHARSETS = [
    "utf-8",
    "gb2312",
    "gbk",
    "gb18030",
    "big5",
    "iso-2022-jp",
    "utf-7",
    "x-unknown",
    "",
    "utf-8'zh'",
    "unicode-1-1-utf-7",
    "cp65001",
    "\udcff\udcfe",  # raw 0xff 0xfe once written out
    "us-ascii\x00",
    "=?utf-8?q?x?=",
]
ENCODINGS = ["base64", "quoted-printable", "7bit", "8bit", "binary", "x-uuencode", "bogus", ""]
CONTENT_TYPES = [
    "text/plain",
    "text/html",
    "application/pdf",
    "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
    "application/msword",
    "application/octet-stream",
    "application/zip",
    "image/png",
    "message/delivery-status",
    "text/rfc822-headers",
    "application/ms-tnef",
    "text/",
    "",
    "multipart/mixed",  # declared multipart, written as a leaf
]
ODD_NAMES = [
    f"{STEM}.docx",
    f"{STEM}.pdf",
    "a\x00b.pdf",
    "invoice\u202efdp.exe",
    "x" * 1000 + ".pdf",
    "长" * 1000 + ".docx",
    "../../etc/passwd",
    "..\\..\\windows\\system32\\evil.docx",
    "/etc/shadow.pdf",
    "C:\\Users\\x\\proposal.docx",
    "a/b/c.pdf",
    "",
    " ",
    ".",
    "..",
    "con.pdf",
    "name\r\nContent-Type: text/html.pdf",
    "=?utf-8?B?!!!?=",
    "=?x-unknown?Q?=E4=B8?=.pdf",
    "=?gb2312?B?1cWGtA==?=.docx",
    "\t\x01\x02\x1b[31m.pdf",
]


def _b64(data: bytes) -> str:
    text = base64.b64encode(data).decode()
    return "\r\n".join(text[i : i + 76] for i in range(0, len(text), 76))


# Strategies are built once here, not inside the composites: hypothesis
# validates a strategy when it is first drawn from, and that cost per draw
# would triple the run.
DATA = st.one_of(
    st.binary(max_size=300),
    st.sampled_from([pdf_bytes(1), b"PK\x03\x04" + b"\x00" * 40, "中文正文".encode("gbk")]),
)
BODY_KINDS = st.sampled_from(["good", "bad-base64", "bad-qp", "raw", "empty", "long-line"])
BAD_BASE64 = st.sampled_from(["@@@@", "QUJD=", "QU=JD", "=====", "QUJ\r\nD!!", "QUJDRA"])
BAD_QP = st.sampled_from(["=ZZ=", "abc=", "=\r\n=\r\n", "=E4=B8", "=" * 50, "a=0"])
LONG_LINES = st.sampled_from(["A" * 1000, "A" * 20000])
NAMES = st.one_of(st.sampled_from(ODD_NAMES), st.text(max_size=40))
NAME_FORMS = st.sampled_from(["quoted", "bare", "2231", "bad-2231", "name-only", "none"])
BAD_2231 = st.sampled_from(["; filename*=bogus''%ZZ%", "; filename*0*=x; filename*2=y"])
TYPES = st.sampled_from(CONTENT_TYPES)
CHARSET_NAMES = st.sampled_from(CHARSETS)
TRANSFER_ENCODINGS = st.sampled_from(ENCODINGS)
DISPOSITIONS = st.sampled_from(["attachment", "inline", "", "attachment\x00"])
KINDS = st.sampled_from(["leaf", "leaf", "multipart", "rfc822"])
BOUNDARIES = st.sampled_from(["b", "", "a b c", "(.*)+", "=_?" * 30, "-" * 70, "x" * 200])
USED = st.sampled_from(["same", "same", "same", "other", "trailing space"])
DECLARED = st.sampled_from(["quoted", "quoted", "bare", "missing", "empty"])
SUBTYPES = st.sampled_from(["mixed", "alternative", "related", "report", "signed"])


@st.composite
def bodies(draw: st.DrawFn, encoding: str) -> str:
    """A body for the part, encoded well or badly."""
    data = draw(DATA)
    kind = draw(BODY_KINDS)
    if kind == "good" and encoding == "base64":
        return _b64(data)
    if kind == "bad-base64":
        return draw(BAD_BASE64) if draw(st.booleans()) else _b64(data)[:-3]
    if kind == "bad-qp":
        return draw(BAD_QP)
    if kind == "empty":
        return ""
    if kind == "long-line":
        return draw(LONG_LINES)
    return data.decode("utf-8", "surrogateescape")


BODIES = {encoding: bodies(encoding) for encoding in ENCODINGS}


@st.composite
def filename_params(draw: st.DrawFn) -> str:
    name = draw(NAMES)
    form = draw(NAME_FORMS)
    if form == "quoted":
        return f'; filename="{name}"'
    if form == "bare":
        return f"; filename={name}"
    if form == "2231":
        encoded = "".join(f"%{b:02X}" for b in name.encode("utf-8", "surrogatepass"))
        return f"; filename*=utf-8''{encoded}"
    if form == "bad-2231":
        return draw(BAD_2231)
    if form == "name-only":
        return f'; name="{name}"'
    return ""


FILENAMES = filename_params()


@st.composite
def leaves(draw: st.DrawFn) -> str:
    content_type = draw(TYPES)
    charset = draw(CHARSET_NAMES)
    encoding = draw(TRANSFER_ENCODINGS)
    disposition = draw(DISPOSITIONS)
    params = draw(FILENAMES)
    head = f'Content-Type: {content_type}; charset="{charset}"\r\n'
    if encoding:
        head += f"Content-Transfer-Encoding: {encoding}\r\n"
    if disposition or params:
        head += f"Content-Disposition: {disposition}{params}\r\n"
    if draw(st.booleans()):
        head += "Content-ID: <img1@x>\r\n"
    return head + "\r\n" + draw(BODIES[encoding]) + "\r\n"


LEAVES = leaves()
MAX_TREE_DEPTH = 4


@st.composite
def parts(draw: st.DrawFn, depth: int = 0) -> str:
    """One MIME entity: a leaf, a forwarded mail, or a multipart with broken boundaries."""
    kind = draw(KINDS) if depth < MAX_TREE_DEPTH else "leaf"
    if kind == "leaf":
        return draw(LEAVES)
    if kind == "rfc822":
        inner = draw(PARTS[depth + 1])
        return f"Content-Type: message/rfc822\r\n\r\nSubject: =?utf-8?b?5bey?=\r\n{inner}"
    children = draw(CHILDREN[depth + 1])
    boundary = draw(BOUNDARIES) + (str(depth) if draw(st.booleans()) else "")
    used = {"same": boundary, "other": "other", "trailing space": boundary + " "}[draw(USED)]
    declared = {
        "quoted": f'; boundary="{boundary}"',
        "bare": f"; boundary={boundary}",
        "missing": "",
        "empty": "; boundary=",
    }[draw(DECLARED)]
    subtype = draw(SUBTYPES)
    body = "preamble\r\n" + "".join(f"--{used}\r\n{child}" for child in children)
    if draw(st.booleans()):  # closed, or left open as truncated mail is
        body += f"--{used}--\r\nepilogue\r\n"
    return f"Content-Type: multipart/{subtype}{declared}\r\n\r\n{body}"


PARTS = [parts(depth) for depth in range(MAX_TREE_DEPTH + 1)]
CHILDREN = [st.lists(p, max_size=4) for p in PARTS]

SUBJECTS = st.one_of(
    st.sampled_from(
        [
            f"合作专项建议书：{STEM}",
            f"合作专项建议书：{STEM}",
            "=?utf-8?B?5ZCI5L2c5LiT6aG55bu66K6u5Lmm?=",
            "=?utf-8?B?!!!?=",
            "=?x-unknown?Q?=E4=B8=AD?=",
            "=?gb2312?B?1cWGtA==?= =?utf-8?Q?=FF?=",
            "\udcff\udcfe\udc80",
            "自动回复: 休假",
        ]
    ),
    st.text(max_size=60),
)
SENDERS = st.sampled_from(
    [
        "张喆 <zhangzhe@ibcas.ac.cn>",
        "张喆 <zhangzhe@ibcas.ac.cn>",
        "张喆 <zhangzhe@ibcas.ac.cn>",
        "=?gb2312?B?1cWGtA==?= <zhangzhe@ibcas.ac.cn>",
        "a@ibcas.ac.cn, b@ibcas.ac.cn",
        "",
        "undisclosed-recipients:;",
        "=?utf-8?B?!!!?= <x@y>",
        "<>",
        "\udcff@\udcfe",
        "MAILER-DAEMON@mx.example.org",
    ]
)
EXTRA_HEADERS = st.lists(
    st.sampled_from(
        [
            "Date: Tue, 20 Jul 2021 10:00:00 +0800",
            "Date: Tue, 20 Jul 2021 10:00:00 +0800",
            "Date: yesterday at noon",
            "Message-ID: <abc@ibcas.ac.cn>",
            "Message-ID: no brackets",
            "In-Reply-To: <mailbot.0123456789abcdef0123456789abcdef@anso.org.cn>",
            "Received: from x by y; Tue, 99 Foo 2021 99:99:99 +9999",
            "Auto-Submitted: no",
            "Authentication-Results: mx.anso.org.cn; dmarc=fail",
            "A header line with no colon",
            " continuation with nothing before",
            "X-Nul: a\x00b",
            "MIME-Version: 1.0",
            "MIME-Version: 1.0",
        ]
    ),
    max_size=4,
)
HUGE = st.sampled_from([0, 0, 0, 0, 2000, 120_000])
NESTING = st.sampled_from([0, 0, 0, 0, 0, 0, 10, 60])


@st.composite
def hostile_mails(draw: st.DrawFn) -> bytes:
    """A whole mail: odd headers, a hostile MIME tree, sometimes huge, sometimes deep."""
    headers = [f"From: {draw(SENDERS)}", f"Subject: {draw(SUBJECTS)}", *draw(EXTRA_HEADERS)]
    size = draw(HUGE)
    if size:
        headers.append("X-Huge: " + "h" * size)
    if draw(st.integers(0, 9)) == 0:
        headers.append("Subject: " + "长" * 30_000)
    body = draw(PARTS[0])
    for level in range(draw(NESTING)):
        body = f'Content-Type: multipart/mixed; boundary="d{level}"\r\n\r\n--d{level}\r\n{body}'
    text = "\r\n".join(headers) + "\r\n" + body
    return HostileMail(text.encode("utf-8", "surrogateescape"))


def keep(raw: bytes) -> None:
    """Keep a mail that broke mailbot where `mailbot check` can be run on it."""
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    path = ARTIFACTS / f"hostile-{hashlib.sha256(raw).hexdigest()[:12]}.eml"
    path.write_bytes(raw)
    print(f"\nthe failing mail is kept in {path}")


@contextmanager
def watchdog(seconds: float) -> Iterator[None]:
    """Turn a hang into a failure that names the example, instead of a CI job that never ends."""

    def expire(_signum: int, _frame: FrameType | None) -> None:
        raise TimeoutError(f"parse_message + judge took over {seconds:g} s on one mail")

    previous = signal.signal(signal.SIGALRM, expire)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


def test_every_hostile_mail_gets_a_verdict(call: Call) -> None:
    tried: Counter[str] = Counter()

    @settings(
        max_examples=EXAMPLES,
        deadline=None,
        derandomize=True,
        database=None,
        # A failing example is reported as found: shrinking hostile mail that hangs takes hours.
        phases=[Phase.explicit, Phase.generate],
        suppress_health_check=list(HealthCheck),
    )
    @given(raw=hostile_mails())
    def run(raw: bytes) -> None:
        try:
            with watchdog(WATCHDOG):
                screen(raw, DEFAULT_POLICY)  # the limits read the same bytes before any parser
                verdict = verdict_for(parse_message(raw), call, None)
            data = json.loads(json.dumps(verdict.as_json(), ensure_ascii=False))
        except BaseException:
            keep(raw)
            raise
        assert data["status"] in {str(s) for s in Status}
        tried[str(verdict.status)] += 1

    run()
    print(f"\nhostile MIME trees: {sum(tried.values())} examples tried, statuses {dict(tried)}")
    assert sum(tried.values()) >= EXAMPLES
