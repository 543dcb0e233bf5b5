"""`mailbot demo`, the README's first command: the whole pipeline with no server."""

from __future__ import annotations

import email
import email.policy
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import ROOT

# Every test here runs `mailbot demo` in its own process.
pytestmark = pytest.mark.slow


def mailbot(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "mailbot", *args],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=120,
        check=False,
    )


def test_demo_runs_the_pipeline_and_prints_the_intake_log(tmp_path: Path) -> None:
    target = tmp_path / "demo"
    result = mailbot("demo", "--dir", str(target))
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert "9 new (accepted 3, ignored 2, late 1, needs_correction 3)" in out
    assert "5 submissions (accepted 3, late 1, needs_correction 1)" in out
    assert "ANSO2021-0003   中国科学院大气物理研究所" in out
    assert "2 mails without a submission" in out
    replies = sorted((target / "outbox").glob("*.eml"))
    assert len(replies) == 7  # every mail but the out-of-office and the bounce
    for path in replies:
        reply = email.message_from_bytes(path.read_bytes(), policy=email.policy.default)
        assert reply["Auto-Submitted"] == "auto-replied"
        assert reply["In-Reply-To"]
    assert list((target / "Maildir" / "new").iterdir()) == []  # every mail filed

    again = mailbot("demo", "--dir", str(target))
    assert again.returncode == 0
    assert "9 new" in again.stdout

    show = mailbot("--config", str(target / "mailbot.toml"), "show", "ANSO2021-0002")
    assert show.returncode == 0
    assert "Version 1 (new, superseded): needs_correction" in show.stdout
    assert "Version 2 (resubmission, current): accepted" in show.stdout


def test_demo_refuses_a_folder_it_did_not_write(tmp_path: Path) -> None:
    (tmp_path / "precious.txt").write_text("keep me")
    result = mailbot("demo", "--dir", str(tmp_path))
    assert result.returncode == 2
    assert "not a mailbot demo" in result.stderr
    assert (tmp_path / "precious.txt").read_text() == "keep me"
