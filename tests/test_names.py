"""Names that lie: a sender's file name is data, shown escaped and short, never a path."""

from __future__ import annotations

import email
import email.policy
import logging
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
from click.testing import CliRunner
from sqlalchemy import select

from mailbot.cli import main
from mailbot.cli.report import show
from mailbot.mail.names import shown
from mailbot.service.daemon import Daemon
from mailbot.sources.maildir import deliver
from mailbot.store.models import Attachment
from tests import diskwatch
from tests.conftest import RULES, CheckRunner
from tests.daemon_support import settings_values
from tests.docfactory import form_docx
from tests.fixtures import AppFactory
from tests.mailfactory import build_mail
from tests.mailfactory.base import Att
from tests.mailfactory.documents import pdf_bytes

BEIJING = timezone(timedelta(hours=8))
ON_TIME = datetime(2021, 7, 20, 10, 0, tzinfo=BEIJING)
INST, PI = "中国科学院植物研究所", "张喆"
STEM = f"{INST}+{PI}"
SUBJECT = f"合作专项建议书：{STEM}"

RLO = "\u202e"
# What a hostile sender names files: a right-to-left override that shows "协议exe.pdf"
# for an .exe, a path out of any folder, a NUL with control characters, 1,000 characters.
SPOOFED = f"合作协议{RLO}fdp.exe"
TRAVERSAL = "../../../../../../../tmp/mailbot-names-escape.docx"
CONTROL = "扫描件\x00\x1b[31m\r\nX-Injected: yes\t.pdf"
# As parsed: line breaks never survive a header, NUL is kept visible as ␀ (see storable).
CONTROL_PARSED = "扫描件\u2400\x1b[31mX-Injected: yes\t.pdf"
LONG = "长" * 996 + ".pdf"
# The bidi and invisible characters that reorder or hide text on screen.
HIDDEN = [
    "\u200b",
    "\u200e",
    "\u200f",
    "\u061c",
    "\u202a",
    "\u202b",
    "\u202c",
    "\u202d",
    RLO,
    "\u2066",
    "\u2067",
    "\u2068",
    "\u2069",
    "\ufeff",
    "\u2028",
]


# --- shown() ----------------------------------------------------------------------------------


def test_an_ordinary_name_is_shown_as_it_is() -> None:
    for name in (f"{STEM}.docx", "合作协议（盖章版）.pdf", "Letter of Support - Dr. Smith.pdf"):
        assert shown(name) == name


def test_the_right_to_left_override_is_written_out() -> None:
    assert shown(SPOOFED) == "合作协议\\u202efdp.exe"


@pytest.mark.parametrize("char", HIDDEN)
def test_every_bidi_and_invisible_control_is_escaped(char: str) -> None:
    assert shown(f"a{char}b.pdf") == f"a\\u{ord(char):04x}b.pdf"


def test_nul_and_control_characters_are_escaped() -> None:
    result = shown(CONTROL)
    assert result == "扫描件\\u0000\\u001b[31m\\u000d\\u000aX-Injected: yes\\u0009.pdf"
    assert all(char.isprintable() for char in result)


def test_path_separators_stay_visible_but_separate_nothing() -> None:
    result = shown(TRAVERSAL)
    assert "/" not in result
    assert "\\" not in result
    assert result == "..∕" * 7 + "tmp∕mailbot-names-escape.docx"
    assert shown("..\\..\\x.pdf") == "..⧵..⧵x.pdf"


def test_a_long_name_is_shortened_in_the_middle_keeping_its_extension() -> None:
    result = shown(LONG)
    assert len(result) <= 120
    assert result.startswith("长" * 60)
    assert result.endswith("长.pdf")
    assert "…" in result
    assert len(shown(LONG, limit=40)) <= 40


def test_shortening_never_cuts_an_escape() -> None:
    name = RLO * 500 + ".docx"
    result = shown(name, limit=50)
    assert len(result) <= 50
    body = result.removesuffix(".docx").replace("…", "")
    assert body.replace("\\u202e", "") == ""


def test_surrogates_are_escaped() -> None:
    assert shown("a\udcff.pdf") == "a\\udcff.pdf"
    shown("a\udcff.pdf").encode("utf-8")  # what a log or a database can take


# --- in the verdict and what mailbot check prints ---------------------------------------------


def hostile_mail(client: str = "foxmail") -> bytes:
    files = [
        Att(TRAVERSAL, form_docx()),
        Att(CONTROL, pdf_bytes()),
        Att(LONG, pdf_bytes()),
        Att(SPOOFED, b"MZ\x90\x00"),
    ]
    return build_mail(client, subject=SUBJECT, attachments=files)


@pytest.mark.parametrize("client", ["foxmail", "outlook", "gmail", "applemail"])
def test_problem_messages_show_names_escaped(client: str, check: CheckRunner) -> None:
    verdict = check(hostile_mail(client), ON_TIME)
    assert verdict["status"] == "needs_correction"
    text = "".join(p["message"] for p in verdict["problems"])
    assert RLO not in text
    assert "\x00" not in text
    assert "\x1b" not in text
    assert "/" not in text
    assert "扫描件\u2400\\u001b[31mX-Injected: yes\\u0009.pdf" in text
    assert "..∕..∕" in text
    assert "长" * 200 not in text  # shortened
    # The verdict's own record of the files keeps the names as sent (they are data).
    names = {a["filename"] for a in verdict["attachments"]}
    assert TRAVERSAL in names
    assert SPOOFED in names
    assert LONG in names


def test_the_human_verdict_escapes_names(tmp_path: Path) -> None:
    path = tmp_path / "mail.eml"
    path.write_bytes(hostile_mail())
    result = CliRunner().invoke(main, ["check", str(path), "--rules", str(RULES)])
    assert result.exit_code == 0, result.output
    assert RLO not in result.stdout
    assert "\x1b" not in result.stdout
    assert "合作协议\\u202efdp.exe" in result.stdout
    assert max(len(line) for line in result.stdout.splitlines()) < 400


# --- through the daemon: store, database, reply, intake log, logs -----------------------------


def test_names_never_touch_the_disk_and_are_escaped_wherever_shown(
    tmp_path: Path, db_url: str, caplog: pytest.LogCaptureFixture, make_app: AppFactory
) -> None:
    app = make_app(settings_values(tmp_path / "work", db_url))
    maildir = tmp_path / "work" / "Maildir"
    accepted = build_mail(
        "outlook",
        subject=SUBJECT,
        attachments=[
            Att(f"{STEM}.docx", form_docx()),
            Att(f"{STEM}.pdf", pdf_bytes(2)),
            Att(SPOOFED, pdf_bytes()),
            Att(CONTROL, pdf_bytes()),
            Att(LONG, pdf_bytes()),
        ],
    )
    deliver(maildir, accepted, ON_TIME)
    deliver(maildir, hostile_mail("coremail"), ON_TIME + timedelta(hours=1))
    with caplog.at_level(logging.DEBUG), diskwatch.writes() as written:
        Daemon(app).once()

    # Nothing on disk is named after a sender: the store by SHA-256, the outbox by reply id.
    assert written  # the store, the database and the outbox were written
    markers = ("escape", "协议", "扫描", "长", RLO)
    for path in [*written, *(str(p) for p in (tmp_path / "work").rglob("*"))]:
        assert not any(marker in path for marker in markers), path
    assert not Path("/tmp/mailbot-names-escape.docx").exists()

    # The database keeps each name as sent; only NUL, which no text column holds, is ␀.
    with app.db.transaction() as session:
        stored = set(session.scalars(select(Attachment.filename)))
        assert {SPOOFED, LONG, TRAVERSAL, CONTROL_PARSED} <= stored
        shown_log = show(session, app.call, "ANSO2021-0001")
    assert RLO not in shown_log
    assert "\x1b" not in shown_log
    assert "\x00" not in shown_log
    assert "合作协议\\u202efdp.exe" in shown_log

    replies = sorted((tmp_path / "work" / "outbox").glob("*.eml"))
    assert len(replies) == 2
    texts = []
    for reply in replies:
        letter = email.message_from_bytes(reply.read_bytes(), policy=email.policy.default)
        assert "X-Injected" not in letter
        body = letter.get_body(preferencelist=("plain",))
        assert body is not None
        texts.append(body.get_content())
    for text in texts:
        assert RLO not in text
        assert "\x1b" not in text
        assert "\x00" not in text
    accepted_text, correction_text = texts
    # A letter never repeats a name the sender chose: the files are listed by kind.
    assert "fdp.exe" not in accepted_text
    assert "PDF 文件（文件名不在回复中重复）" in accepted_text
    assert "escape" not in correction_text
    assert "..∕..∕" not in correction_text

    for record in caplog.records:
        line = record.getMessage()
        assert RLO not in line, line
        assert "\x1b" not in line, line
        assert "\x00" not in line, line
