"""What the secretariat's commands print: counts that agree in number, problems in words."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest

from mailbot.sources.maildir import deliver
from tests.conftest import mailbot_in_process
from tests.daemon_support import july, proposal, settings_values, toml, with_trace

# The test runs the whole pipeline through the `mailbot` commands (in this process).
pytestmark = pytest.mark.slow

MAILBOX = "anso2021program@anso.org.cn"


def test_one_of_each_reads_singular_and_the_log_shows_each_problem_once_in_words(
    tmp_path: Path,
) -> None:
    config = tmp_path / "mailbot.toml"
    values = settings_values(tmp_path, f"sqlite:///{tmp_path / 'mailbot.sqlite3'}")
    config.write_text(toml(values), encoding="utf-8")
    maildir = tmp_path / "Maildir"
    # Word and PDF both misnamed: the same code twice in the verdict.
    misnamed = proposal("foxmail", files="misnamed")
    deliver(maildir, with_trace(misnamed, MAILBOX, "direct"), july(20))
    deliver(maildir, with_trace(misnamed, MAILBOX, "cc"), july(20, 10, 1))  # a cc copy

    def mailbot(*args: str) -> str:
        result = mailbot_in_process("--config", str(config), *args)
        assert result.exit_code == 0, result.stderr
        return result.stdout

    mailbot("init")
    fetched = mailbot("run", "--once")
    assert "2 new (ignored 1, needs_correction 1), 0 already recorded, 0 failed, 1 duplicate;" in (
        fetched
    )
    log = mailbot("log")
    assert "1 submission (needs_correction 1) for" in log
    assert "1 mail without a submission:" in log
    row = next(line for line in log.splitlines() if line.startswith("ANSO2021-0001"))
    assert row.count("文件名不符 file misnamed") == 1
    assert "attachment_name" not in log
    assert "重复邮件 duplicate" in log  # the cc copy, in words too
    assert mailbot("reprocess").splitlines() == [
        "1 mail judged again: 0 verdicts changed, 0 submissions changed"
    ]
    assert mailbot("export", str(tmp_path / "log.csv")).strip() == (
        f"1 submission written to {tmp_path / 'log.csv'}"
    )
    with (tmp_path / "log.csv").open(encoding="utf-8-sig") as handle:
        rows = list(csv.DictReader(handle))
    assert rows[0]["问题 Problems"] == "文件名不符 file misnamed"
