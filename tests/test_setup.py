"""A secretariat's first day: init writes a config, every command honours it, run checks at start.

Each test runs `mailbot` as a process from a folder outside the checkout, as
an operator does after installing it, so nothing here can lean on the
checkout's rules/ or templates/ being in the working directory.
"""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
import tomllib
from pathlib import Path
from typing import Any

import pytest

from mailbot.sources.maildir import deliver
from tests.conftest import ROOT, mailbot_in_process
from tests.daemon_support import july, proposal, settings_values, toml
from tests.mailfactory import build_mail

# Every test here runs `mailbot` in its own process, as an operator does (the one check
# that compares verdicts only runs `check` in this process).
pytestmark = pytest.mark.slow

EXAMPLE = ROOT / "config.example.toml"


def mailbot(
    *args: str, cwd: Path, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    """`mailbot ARGS` from cwd, without MAILBOT_CONFIG unless env gives it."""
    base = {k: v for k, v in os.environ.items() if k != "MAILBOT_CONFIG"}
    return subprocess.run(
        [sys.executable, "-m", "mailbot", *args],
        capture_output=True,
        text=True,
        cwd=cwd,
        env={**base, **(env or {})},
        timeout=300,
        check=False,
    )


def one_line_error(result: subprocess.CompletedProcess[str]) -> str:
    assert result.returncode == 2, (result.stdout, result.stderr)
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert "Traceback" not in result.stderr, result.stderr
    return lines[0]


# --------------------------------------------------------------------------- init


def test_init_on_a_missing_file_writes_a_commented_config_with_absolute_paths(
    tmp_path: Path,
) -> None:
    office = tmp_path / "office"
    office.mkdir()
    config = tmp_path / "etc" / "mailbot" / "config.toml"
    result = mailbot("init", "--config", str(config), "--data-dir", "../srv/mailbot", cwd=office)
    assert result.returncode == 0, result.stderr
    data_dir = (office / "../srv/mailbot").absolute()
    text = config.read_text(encoding="utf-8")
    values = tomllib.loads(text)
    assert values["database_url"] == f"sqlite:///{data_dir / 'mailbot.sqlite3'}"
    assert values["store_dir"] == str(data_dir / "store")
    assert values["replies"]["outbox_dir"] == str(data_dir / "outbox")
    assert values["source"]["maildir"]["path"] == str(data_dir / "Maildir")
    assert values["rules"] == "anso2021"
    assert values["templates_dir"] == ""
    # Every comment of the example is kept: the operator reads the file, not the code.
    comments = [line for line in EXAMPLE.read_text(encoding="utf-8").splitlines() if "#" in line]
    assert all(line in text for line in comments)
    assert "[source.imap]" in result.stdout
    assert f"--config {config} init" in result.stdout
    # Nothing is created yet beside the config: the operator edits it first.
    assert not data_dir.exists()

    # Run again, the existing file gets its database (here under the data folder).
    again = mailbot("--config", str(config), "init", cwd=office)
    assert again.returncode == 0, again.stderr
    assert "database ready" in again.stdout
    assert (data_dir / "mailbot.sqlite3").is_file()
    assert tomllib.loads(config.read_text(encoding="utf-8")) == values  # not rewritten


def test_a_config_copied_elsewhere_still_finds_the_call_and_its_templates(tmp_path: Path) -> None:
    """The README used to say `cp config.example.toml /etc/mailbot/config.toml`: its
    rules = "rules/anso2021.toml" then pointed under /etc, at nothing."""
    config = tmp_path / "etc" / "config.toml"
    config.parent.mkdir()
    config.write_text(
        EXAMPLE.read_text(encoding="utf-8")
        .replace('"sqlite:///var/', f'"sqlite:///{tmp_path}/var/')
        .replace('"var/', f'"{tmp_path}/var/'),
        encoding="utf-8",
    )
    assert mailbot("--config", str(config), "init", cwd=tmp_path).returncode == 0
    log = mailbot("--config", str(config), "log", cwd=tmp_path)
    assert log.returncode == 0, log.stderr
    assert "ANSO2021" not in log.stdout  # an empty log, of the bundled call
    assert not (config.parent / "var").exists()


def test_an_old_relative_rules_path_says_how_to_name_the_bundled_call(tmp_path: Path) -> None:
    config = tmp_path / "config.toml"
    config.write_text('rules = "rules/anso2021.toml"\n', encoding="utf-8")
    line = one_line_error(mailbot("--config", str(config), "init", cwd=tmp_path))
    assert "no such rules file" in line
    assert 'rules = "anso2021"' in line


# --------------------------------------------------------------------------- no config


@pytest.mark.parametrize(
    "args",
    [
        ["log"],
        ["show", "ANSO2021-0001"],
        ["export", "x.csv"],
        ["packet", "packet.zip"],
        ["reprocess"],
        ["run", "--once"],
        ["init"],
        ["web"],
        ["user", "add", "wang.fang"],
        ["user", "list"],
        ["user", "disable", "wang.fang"],
        ["user", "unlock", "wang.fang"],
    ],
    ids=lambda args: args[0],
)
def test_commands_that_need_a_database_refuse_to_run_without_a_config(
    tmp_path: Path, args: list[str]
) -> None:
    line = one_line_error(mailbot(*args, cwd=tmp_path))
    assert line == "mailbot: no config given: use --config or MAILBOT_CONFIG"
    assert list(tmp_path.iterdir()) == []  # no var/mailbot.sqlite3 where it stands


def test_mailbot_config_in_the_environment_is_the_config(tmp_path: Path) -> None:
    config = tmp_path / "c.toml"
    config.write_text(
        'database_url = "sqlite:///db.sqlite3"\n[intake]\ndeny = ["*@spam.example"]\n',
        encoding="utf-8",
    )
    env = {"MAILBOT_CONFIG": str(config)}
    assert mailbot("init", cwd=tmp_path, env=env).returncode == 0
    assert mailbot("log", cwd=tmp_path, env=env).returncode == 0
    assert (tmp_path / "db.sqlite3").is_file()
    mail = tmp_path / "spam.eml"
    mail.write_bytes(
        build_mail("outlook", subject="合作专项建议书：A+B", sender=("B", "b@spam.example"))
    )
    verdict = json.loads(mailbot("check", str(mail), "--json", cwd=tmp_path, env=env).stdout)
    assert [p["code"] for p in verdict["problems"]] == ["denied_sender"]


# --------------------------------------------------------------------------- form-template


def test_form_template_makes_the_folder_or_says_why_not_in_one_line(tmp_path: Path) -> None:
    target = tmp_path / "no" / "such" / "dir" / "form.docx"
    result = mailbot("form-template", str(target), cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert target.stat().st_size > 0
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    line = one_line_error(mailbot("form-template", str(blocker / "form.docx"), cwd=tmp_path))
    assert line == f"mailbot: cannot write {blocker / 'form.docx'}: {blocker} is not a folder"


def test_form_template_uses_the_configs_rules(tmp_path: Path) -> None:
    rules = (ROOT / "rules" / "anso2021.toml").read_text(encoding="utf-8")
    (tmp_path / "mine.toml").write_text(
        rules.replace('["项目名称"', '["课题名称"'), encoding="utf-8"
    )
    for listed in (ROOT / "rules").glob("*.txt"):
        (tmp_path / listed.name).write_bytes(listed.read_bytes())
    assert "课题名称" in (tmp_path / "mine.toml").read_text(encoding="utf-8")
    config = tmp_path / "c.toml"
    config.write_text('rules = "mine.toml"\n', encoding="utf-8")
    from docx import Document

    def labels(path: Path) -> str:
        document = Document(str(path))
        cells = [c.text for t in document.tables for row in t.rows for c in row.cells]
        return "\n".join([*cells, *(p.text for p in document.paragraphs)])

    assert mailbot("--config", str(config), "form-template", "a.docx", cwd=tmp_path).returncode == 0
    assert mailbot("form-template", "b.docx", cwd=tmp_path).returncode == 0
    assert "课题名称" in labels(tmp_path / "a.docx")
    assert "课题名称" not in labels(tmp_path / "b.docx")


# --------------------------------------------------------------------------- check as the daemon


def test_check_with_a_config_judges_as_the_daemon_does(tmp_path: Path) -> None:
    values = settings_values(tmp_path, f"sqlite:///{tmp_path / 'db.sqlite3'}")
    values["intake"] = {"deny": ["*@spam.example"], "own_addresses": ["office@anso.org.cn"]}
    config = tmp_path / "mailbot.toml"
    config.write_text(toml(values), encoding="utf-8")
    when = july(20)
    mails = {
        "denied": build_mail(
            "outlook",
            subject="合作专项建议书：中国科学院微生物研究所+李娜",
            sender=("李娜", "offers@spam.example"),
            received_at=when,
        ),
        "own": build_mail(
            "coremail",
            subject="合作专项建议书：中国科学院植物研究所+张喆",
            sender=("ANSO", "office@anso.org.cn"),
            received_at=when,
        ),
        "applicant": proposal("qqmail", received_at=when),
    }
    checked, unconfigured = {}, {}
    for name, raw in mails.items():
        path = tmp_path / f"{name}.eml"
        path.write_bytes(raw)
        deliver(tmp_path / "Maildir", raw, when)
        # In this process: the verdicts are what is compared, not the process (the paths
        # are absolute; the config's own run below goes through a process as an operator's).
        result = mailbot_in_process("--config", str(config), "check", str(path), "--json")
        assert result.exit_code == 0, result.stderr
        verdict = json.loads(result.stdout)
        checked[name] = (
            verdict["status"],
            sorted(p["code"] for p in verdict["problems"]),
        )
        unset = {"MAILBOT_CONFIG": None}
        plain = json.loads(mailbot_in_process("check", str(path), "--json", env=unset).stdout)
        unconfigured[name] = (plain["status"], [p["code"] for p in plain["problems"]])
    assert checked["denied"] == ("ignored", ["denied_sender"])
    assert checked["own"][0] == "ignored"
    assert "own_address" in checked["own"][1]
    assert checked["applicant"][0] == "accepted"
    # Without the config, the deny list and the alias are unknown: the difference is real.
    assert unconfigured["denied"][0] != "ignored"
    # The alias is then only a colleague at the call's domain (own_domain), not an own address.
    assert "own_address" not in unconfigured["own"][1]

    assert mailbot("--config", str(config), "init", cwd=tmp_path).returncode == 0
    run = mailbot("--config", str(config), "run", "--once", cwd=tmp_path)
    assert run.returncode == 0, run.stderr
    with sqlite3.connect(tmp_path / "db.sqlite3") as db:
        rows = db.execute("SELECT sender, status, problems FROM mails").fetchall()
    by_sender = {
        sender: (status, sorted(p["code"] for p in json.loads(problems)))
        for sender, status, problems in rows
    }
    assert by_sender["offers@spam.example"] == checked["denied"]
    assert by_sender["office@anso.org.cn"] == checked["own"]
    assert len(by_sender) == 3
    assert checked["applicant"] in by_sender.values()


# --------------------------------------------------------------------------- checks at start


def _start_config(tmp_path: Path, **extra: Any) -> Path:
    values = settings_values(tmp_path, f"sqlite:///{tmp_path / 'db.sqlite3'}", **extra)
    config = tmp_path / "mailbot.toml"
    config.write_text(toml(values), encoding="utf-8")
    assert mailbot("--config", str(config), "init", cwd=tmp_path).returncode == 0
    return config


def test_a_missing_maildir_stops_run_instead_of_an_empty_poll(tmp_path: Path) -> None:
    config = _start_config(tmp_path)
    line = one_line_error(mailbot("--config", str(config), "run", "--once", cwd=tmp_path))
    assert line == (
        f"mailbot: [source.maildir] path = {tmp_path / 'Maildir'}: no such folder "
        "(a Maildir holds new/, cur/ and tmp/)"
    )
    deliver(tmp_path / "Maildir", proposal("outlook"), july(20))
    ran = mailbot("--config", str(config), "run", "--once", cwd=tmp_path)
    assert ran.returncode == 0, ran.stderr
    assert "1 new" in ran.stdout, ran.stderr


def test_a_missing_templates_folder_stops_run(tmp_path: Path) -> None:
    config = _start_config(tmp_path, templates_dir=str(tmp_path / "letters"))
    deliver(tmp_path / "Maildir", proposal("outlook"), july(20))
    line = one_line_error(mailbot("--config", str(config), "run", "--once", cwd=tmp_path))
    assert line.endswith(f"no such folder {tmp_path / 'letters'}")
    (tmp_path / "letters" / "reply").mkdir(parents=True)
    line = one_line_error(mailbot("--config", str(config), "run", "--once", cwd=tmp_path))
    assert "has no template for the reply 'accepted'" in line
    with sqlite3.connect(tmp_path / "db.sqlite3") as db:
        assert db.execute("SELECT count(*) FROM mails").fetchone() == (0,)


def test_an_unwritable_store_stops_run(tmp_path: Path) -> None:
    (tmp_path / "disk").write_text("a file where the store's folder should be")
    config = _start_config(tmp_path, store_dir=str(tmp_path / "disk" / "store"))
    deliver(tmp_path / "Maildir", proposal("outlook"), july(20))
    line = one_line_error(mailbot("--config", str(config), "run", "--once", cwd=tmp_path))
    assert line.startswith(f"mailbot: store_dir = {tmp_path / 'disk' / 'store'}: cannot write")


def test_a_missing_rules_file_stops_every_command(tmp_path: Path) -> None:
    config = tmp_path / "c.toml"
    config.write_text('rules = "calls/anso2022.toml"\n', encoding="utf-8")
    for args in (["init"], ["check", str(EXAMPLE)], ["form-template", "x.docx"]):
        line = one_line_error(mailbot("--config", str(config), *args, cwd=tmp_path))
        assert line == f"mailbot: {tmp_path / 'calls' / 'anso2022.toml'}: no such rules file"
    line = one_line_error(
        mailbot("--config", str(config), "check", str(EXAMPLE), "--rules", "anso2099", cwd=tmp_path)
    )
    assert "rules = 'anso2099': no call of that name ships with mailbot" in line


# --------------------------------------------------------------------------- documentation


def test_the_maildir_receipt_time_is_documented_with_how_to_set_it() -> None:
    for text in (EXAMPLE.read_text("utf-8"), (ROOT / "README.md").read_text("utf-8")):
        assert "modification time" in text
        assert "touch -d" in text


def test_readme_install_line_makes_a_virtual_environment_in_one_line() -> None:
    """A stock Debian 12 / Ubuntu 24.04 python3 refuses `pip install` outside a venv (PEP 668)."""
    readme = (ROOT / "README.md").read_text("utf-8")
    first_block = readme.split("```sh\n", 1)[1].split("```", 1)[0].strip()
    assert first_block == (
        "python3 -m venv .venv && .venv/bin/pip install -e . && .venv/bin/mailbot demo"
    )
    ci = (ROOT / ".ci" / "run").read_text("utf-8")
    assert "python3 -m venv .venv" in ci
    assert "python3-venv" in ci
    assert ".venv/bin/python -m pip install" in ci
    assert ".venv/bin/python -m pytest" in ci
    assert ".venv/" in (ROOT / ".gitignore").read_text("utf-8").split()
