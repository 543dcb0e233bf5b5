"""The mailbot command's shape: every command listed as before, and a quick start.

`mailbot --help` and `mailbot check` must not pay for the database, the desk
or the daemon: each command imports what it needs when it runs. These tests
guard which modules load, in a fresh interpreter; they time nothing (the
times are `python -m bench cli`'s).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from click.testing import CliRunner

from mailbot.cli import main
from tests.conftest import ROOT
from tests.daemon_support import settings_values, toml

# `mailbot --help`'s list of commands, as an operator reads it on 80 columns.
COMMANDS = [
    ("backup", "Copy the database (SQLite) and the store's new blobs..."),
    ("check", "Judge one mail (an .eml file, or - for standard input);..."),
    ("demo", "Run the whole pipeline on a sample Maildir of applicant..."),
    ("doctor", "Check config, rules, database, store, mailbox and SMTP..."),
    ("export", "Write the intake log to FILE.xlsx or FILE.csv, one row..."),
    ("form-template", "Write the call's blank bilingual proposal form to..."),
    ("init", "Write a new config (a missing file), or create or..."),
    ("log", "Print the intake log: one row per submission, then mail..."),
    ("packet", "Write OUT.zip: a folder per accepted submission with its..."),
    ("reprocess", "Judge every stored mail again under the current rules..."),
    ("restore", "Put a backup made by `mailbot backup` into the config's..."),
    ("run", "Watch the mailbox, judge and record every mail, answer..."),
    ("show", "Print one submission with all its versions, mails and..."),
    ("status", "Print whether the daemon runs, its last poll, waiting..."),
    ("user", "Accounts of the intake desk."),
    ("web", "Serve the secretariat's intake desk (sign in with an..."),
]

# What only the commands that use them may load: the database, the desk, the
# daemon, the replies' templates, the settings' schema, the documents' readers.
HEAVY = [
    "sqlalchemy",
    "alembic",
    "flask",
    "waitress",
    "jinja2",
    "apscheduler",
    "imapclient",
    "argon2",
    "pydantic",
    "mailparser",
    "docx",
    "lxml",
    "pypdf",
    "openpyxl",
]
# What `mailbot check` (parse and judge, print) never uses: the call's rules are
# read without pydantic (mailbot.schema), which only the settings need; python-docx
# writes the blank form only: the Word form is read from its XML with lxml.
NOT_FOR_CHECK = [
    *("sqlalchemy", "alembic", "flask", "waitress", "jinja2", "apscheduler", "argon2"),
    *("pydantic", "docx"),
]
# What `mailbot log` (read the database, print) never uses: Alembic changes the schema only;
# the replies' templates (jinja2) are read when a reply is written, not when the App is built.
NOT_FOR_LOG = [
    *("alembic", "flask", "waitress", "apscheduler", "imapclient", "docx", "lxml", "pypdf"),
    *("jinja2", "mailparser", "pypdfium2", "numpy"),
]

LOADED = "import json, sys\nprint(json.dumps(sorted({m.split('.')[0] for m in sys.modules})), file=sys.stderr)"


def python(code: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        cwd=ROOT,
        env={k: v for k, v in os.environ.items() if k != "MAILBOT_CONFIG"},
        check=False,
        timeout=120,
    )


def loaded(result: subprocess.CompletedProcess[str]) -> set[str]:
    assert result.returncode == 0, result.stderr[-2000:]
    return set(json.loads(result.stderr.strip().splitlines()[-1]))


def test_help_lists_every_command_as_before() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "mailbot", "--help"],
        capture_output=True,
        text=True,
        cwd=ROOT,
        env={**os.environ, "COLUMNS": "80"},
        check=False,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    listed = result.stdout.split("Commands:\n", 1)[1].splitlines()
    assert [tuple(line.split(maxsplit=1)) for line in listed] == COMMANDS


def test_importing_the_command_loads_no_database_desk_or_reader() -> None:
    modules = loaded(python(f"import mailbot.cli\n{LOADED}"))
    assert "click" in modules
    assert sorted(modules & set(HEAVY)) == []


def test_check_judges_a_mail_without_the_database_or_the_desk() -> None:
    mail = "tests/data/coremail-accepted.eml"
    code = (
        "from mailbot.cli import main\n"
        f"try:\n    main(['check', '--json', {mail!r}])\nexcept SystemExit as exit:\n"
        "    assert exit.code == 0, exit.code\n"
        f"{LOADED}"
    )
    result = python(code)
    modules = loaded(result)
    assert json.loads(result.stdout)["status"] == "accepted"
    assert "lxml" in modules, "the mail's Word form was read"
    assert "pypdf" in modules, "the mail's PDFs were read"
    assert "pypdfium2" in modules, "the scan's pages were rendered"
    assert "numpy" not in modules, "a page without red ink needs no seal finder"
    assert sorted(modules & set(NOT_FOR_CHECK)) == []


def test_log_reads_the_database_without_alembic_the_desk_or_the_readers(tmp_path: Path) -> None:
    config = tmp_path / "mailbot.toml"
    values = settings_values(tmp_path, f"sqlite:///{tmp_path / 'mailbot.sqlite3'}")
    config.write_text(toml(values), encoding="utf-8")
    made = CliRunner().invoke(main, ["--config", str(config), "init"])
    assert made.exit_code == 0, made.output
    code = (
        "from mailbot.cli import main\n"
        f"try:\n    main(['--config', {str(config)!r}, 'log'])\nexcept SystemExit as exit:\n"
        "    assert exit.code == 0, exit.code\n"
        f"{LOADED}"
    )
    result = python(code)
    modules = loaded(result)
    assert "0 submissions (none)" in result.stdout
    assert "sqlalchemy" in modules
    assert sorted(modules & set(NOT_FOR_LOG)) == []
