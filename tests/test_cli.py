"""The `mailbot check` command as a user runs it: exit codes, errors, broken mail, real corpora."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from mailbot.cli import main
from tests.conftest import RULES, SHARED, CheckRunner, codes, write_rules
from tests.docfactory import form_docx
from tests.mailfactory import build_mail
from tests.mailfactory.base import Att
from tests.mailfactory.broken import broken_bad_base64, broken_no_boundary, broken_unknown_charset
from tests.mailfactory.documents import pdf_bytes

ROOT = RULES.parent.parent
STEM = "中国科学院植物研究所+张喆"


def mailbot(*args: str, stdin: bytes | None = None) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run(
        [sys.executable, "-m", "mailbot", *args],
        input=stdin,
        capture_output=True,
        cwd=ROOT,
        check=False,
        timeout=60,
    )


def test_the_shipped_sample_is_accepted() -> None:
    result = mailbot("check", "tests/data/coremail-accepted.eml", "--json")
    assert result.returncode == 0, result.stderr
    verdict = json.loads(result.stdout)
    assert verdict["status"] == "accepted"
    assert verdict["institution"] == "中国科学院植物研究所"


@pytest.mark.slow  # `mailbot check` in its own process
def test_human_output_reads_chinese_first() -> None:
    result = mailbot("check", "tests/data/coremail-accepted.eml")
    assert result.returncode == 0
    text = result.stdout.decode()
    assert "accepted（已受理）" in text
    assert f"word       {STEM}.docx" in text


@pytest.mark.slow  # `mailbot check` in its own process
def test_standard_input() -> None:
    raw = (ROOT / "tests/data/coremail-accepted.eml").read_bytes()
    result = mailbot("check", "-", "--json", stdin=raw)
    assert json.loads(result.stdout)["status"] == "accepted"


def test_an_unreadable_file_is_one_line_on_stderr_and_exit_2(tmp_path: Path) -> None:
    result = mailbot("check", str(tmp_path / "absent.eml"), "--json")
    assert result.returncode == 2
    assert result.stdout == b""
    lines = result.stderr.decode().strip().splitlines()
    assert len(lines) == 1
    assert lines[0].startswith("mailbot: cannot read")
    directory = mailbot("check", str(tmp_path), "--json")
    assert directory.returncode == 2
    assert b"Traceback" not in directory.stderr


def test_a_broken_rules_file_is_one_line_and_exit_2(tmp_path: Path) -> None:
    text = RULES.read_text(encoding="utf-8").replace("Asia/Shanghai", "Mars/Base")
    rules = write_rules(tmp_path, text, "r.toml")
    result = CliRunner().invoke(
        main, ["check", "tests/data/coremail-accepted.eml", "--rules", str(rules)]
    )
    assert result.exit_code == 2
    assert (
        result.stderr.strip() == f"mailbot: {rules}: [call] timezone: unknown time zone 'Mars/Base'"
    )


def test_a_bad_received_at_is_a_usage_error() -> None:
    result = CliRunner().invoke(
        main, ["check", "tests/data/coremail-accepted.eml", "--received-at", "yesterday"]
    )
    assert result.exit_code == 2
    assert "ISO-8601" in result.output


@pytest.mark.parametrize(
    "maker",
    [broken_no_boundary, broken_bad_base64, broken_unknown_charset],
    ids=lambda f: f.__name__,
)
def test_broken_mail_gets_a_verdict(maker: object, check: CheckRunner) -> None:
    verdict = check(maker(), "2021-07-20T10:00:00+08:00")  # type: ignore[operator]
    assert verdict["status"] in ("accepted", "needs_correction")
    assert verdict["institution"] == "中国科学院植物研究所"


def test_no_boundary_still_finds_the_attachments(check: CheckRunner) -> None:
    verdict = check(broken_no_boundary(), "2021-07-20T10:00:00+08:00")
    assert {a["role"] for a in verdict["attachments"]} >= {"word", "pdf"}


def test_unknown_charset_keeps_the_chinese_subject(check: CheckRunner) -> None:
    verdict = check(broken_unknown_charset(), "2021-07-20T10:00:00+08:00")
    assert "subject_format" not in codes(verdict)


@pytest.mark.slow  # `mailbot check` in its own process, per input
@pytest.mark.parametrize(
    "raw",
    [
        b"",
        b"\x00" * 100,
        b"\xff\xfe garbage \x80\x81",
        b"Subject: " + b"A" * 100_000 + b"\r\n\r\n",
        b"From: a@b.cn\r\nContent-Type: multipart/mixed; boundary=z\r\n\r\n"
        + b"--z\r\nContent-Type: multipart/mixed; boundary=z\r\n\r\n" * 2000,
        b'From: a@b.cn\r\nContent-Type: text/plain; charset="\xff\xfe"\r\nContent-Transfer-Encoding: base64\r\n\r\n@@@@',
        b"From: a@b.cn\r\nContent-Disposition: attachment; filename*=bogus''%ZZ%\r\n\r\nx",
    ],
    ids=["empty", "nul", "binary", "huge-header", "deep-nesting", "bad-charset-b64", "bad-2231"],
)
def test_garbage_gets_valid_json_and_exit_0(raw: bytes, tmp_path: Path) -> None:
    path = tmp_path / "g.eml"
    path.write_bytes(raw)
    result = mailbot("check", str(path), "--json", "--received-at", "2021-07-20T10:00:00+08:00")
    assert result.returncode == 0, result.stderr
    verdict = json.loads(result.stdout)
    assert verdict["status"] in ("accepted", "needs_correction", "late", "ignored")


def _corpus(name: str) -> list[Path]:
    folder = SHARED / "corpora" / name
    if not folder.is_dir():
        pytest.skip(f"{folder} is absent: the team's sample corpora are not beside this checkout")
    return sorted(
        p for p in folder.iterdir() if p.is_file() and p.name not in ("LICENSE", "NOTICE")
    )


@pytest.mark.parametrize("corpus", ["mail-parser", "sisimai-bounces"])
def test_every_corpus_mail_gets_a_verdict(corpus: str, tmp_path: Path) -> None:
    from mailbot.calls import load_call
    from mailbot.judge.checks import verdict_for
    from mailbot.mail.parsing import parse_message

    call = load_call(RULES)
    files = _corpus(corpus)
    statuses: dict[str, int] = {}
    for path in files:
        verdict = verdict_for(parse_message(path.read_bytes()), call)
        json.dumps(verdict.as_json())
        statuses[str(verdict.status)] = statuses.get(str(verdict.status), 0) + 1
    print(f"{corpus}: {len(files)} mails, {statuses}")
    assert sum(statuses.values()) == len(files) > 0


@pytest.mark.slow  # `mailbot check` in its own process
def test_the_cli_on_a_corpus_mail() -> None:
    [first, *_] = _corpus("mail-parser")
    result = mailbot("check", str(first), "--json")
    assert result.returncode == 0
    json.loads(result.stdout)


@pytest.mark.slow  # `mailbot check` in its own process
def test_a_good_mail_from_the_factory_via_the_real_command(tmp_path: Path) -> None:
    raw = build_mail(
        "outlook",
        subject=f"合作专项建议书：{STEM}",
        attachments=[Att(f"{STEM}.docx", form_docx()), Att(f"{STEM}.pdf", pdf_bytes())],
    )
    path = tmp_path / "o.eml"
    path.write_bytes(raw)
    result = mailbot("check", str(path), "--json", "--received-at", "2021-07-30T23:59:59+08:00")
    assert json.loads(result.stdout)["status"] == "accepted"
