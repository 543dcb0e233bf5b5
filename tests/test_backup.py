"""`mailbot backup DIR` and `mailbot restore DIR`: a copy taken while mail comes in, and its way back."""

from __future__ import annotations

import hashlib
import json
import threading
from pathlib import Path

import pytest
from click.testing import CliRunner
from sqlalchemy import select

from mailbot.app import App
from mailbot.cli import main
from mailbot.config import load_settings
from mailbot.intake.poll import PollReport, poll
from mailbot.service.daemon import Daemon
from mailbot.sources import maildir as maildir_module
from mailbot.sources.maildir import deliver
from mailbot.store.models import Attachment, Mail
from tests.daemon_support import (
    july,
    proposal,
    settings_values,
    toml,
)
from tests.fixtures import AppFactory

# Every test here runs the pipeline and `mailbot backup`/`restore` in their own processes.
pytestmark = pytest.mark.slow

MAILS = 12
PAUSE_AT = 5  # the intake is held after this many mails while the first backup runs


def config_at(folder: Path, database_url: str | None = None) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    values = settings_values(folder, database_url or f"sqlite:///{folder / 'mailbot.sqlite3'}")
    config = folder / "mailbot.toml"
    config.write_text(toml(values), encoding="utf-8")
    return config


def mailbot(config: Path, *args: str) -> str:
    result = CliRunner().invoke(main, ["--config", str(config), *args])
    assert result.exit_code == 0, result.output
    return result.stdout


def stored_files(config: Path) -> dict[str, str]:
    """Every file the database names, by sha256, with the sha256 of the bytes in the store."""
    app = App.build(load_settings(config))
    try:
        with app.db.transaction() as session:
            names = set(session.scalars(select(Mail.raw_sha256)))
            names |= set(session.scalars(select(Attachment.sha256)))
        return {name: hashlib.sha256(app.blobs.get(name)).hexdigest() for name in names}
    finally:
        app.close()


def fill_maildir(maildir: Path) -> None:
    files = ("good", "misnamed", "no_pdf", "pdf_only")
    for n in range(MAILS):
        raw = proposal(
            ("outlook", "foxmail", "gmail")[n % 3],
            f"中国科学院第{n}研究所",
            f"张{n}",
            files=files[n % len(files)],
        )
        deliver(maildir, raw, july(20 + n % 10, 9 + n))


class HeldIntake:
    """The intake in a thread of its own, held after PAUSE_AT mails until released."""

    def __init__(self, config: Path) -> None:
        self.app = App.build(load_settings(config))
        self.reached = threading.Event()
        self.release = threading.Event()
        self.recorded = 0
        self.report: PollReport | None = None
        self.thread = threading.Thread(target=self._run, name="intake")

    def _on_mail(self, _mail: Mail) -> None:
        self.recorded += 1
        if self.recorded == PAUSE_AT:  # committed: the backup sees it
            self.reached.set()
            assert self.release.wait(120), "the test never released the intake"

    def _run(self) -> None:
        mailbox = self.app.open_mailbox()
        try:
            self.report = poll(self.app, mailbox, on_mail=self._on_mail)
        finally:
            mailbox.close()
            self.app.close()
            self.reached.set()


def test_a_backup_during_intake_restores_its_log_and_every_file(
    tmp_path: Path, make_app: AppFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A batch of mail is committed at once: batches of PAUSE_AT mails put the hold between two.
    monkeypatch.setattr(maildir_module, "BATCH_SIZE", PAUSE_AT)
    source = config_at(tmp_path / "live")
    make_app(
        settings_values(tmp_path / "live", f"sqlite:///{tmp_path / 'live' / 'mailbot.sqlite3'}")
    )
    fill_maildir(tmp_path / "live" / "Maildir")
    intake = HeldIntake(source)
    intake.thread.start()
    try:
        assert intake.reached.wait(300), "the intake never got going"
        log_then = mailbot(source, "log")
        files_then = stored_files(source)
        out = mailbot(source, "backup", str(tmp_path / "backup"))
        assert f"{len(files_then)} new" in out
    finally:
        intake.release.set()
    # A second backup while the intake runs on, unheld, to a place of its own.
    mailbot(source, "backup", str(tmp_path / "backup-live"))
    intake.thread.join(300)
    assert intake.report is not None
    assert intake.report.new == MAILS
    log_now = mailbot(source, "log")
    assert log_now != log_then  # the first backup really was taken halfway

    restored = config_at(tmp_path / "restored")
    out = mailbot(restored, "restore", str(tmp_path / "backup"))
    assert "restored: database written to" in out
    assert mailbot(restored, "log") == log_then
    assert stored_files(restored) == files_then
    assert all(name == digest for name, digest in files_then.items())

    # The copy taken while mail came in is whole: each file it names is there, intact.
    unheld = config_at(tmp_path / "restored-live")
    mailbot(unheld, "restore", str(tmp_path / "backup-live"))
    unheld_files = stored_files(unheld)
    assert all(name == digest for name, digest in unheld_files.items())
    assert set(files_then) <= set(unheld_files) <= set(stored_files(source))

    # Later backups into the same folder copy only the new blobs.
    files_now = stored_files(source)
    out = mailbot(source, "backup", str(tmp_path / "backup"))
    new_blobs = len(set(files_now) - set(files_then))
    assert f"{new_blobs} new" in out
    assert new_blobs > 0
    manifest = json.loads((tmp_path / "backup" / "manifest.json").read_text(encoding="utf-8"))
    assert manifest["database"] == "mailbot.sqlite3"
    assert manifest["revision"]
    assert manifest["blobs_named_by_database"] == len(files_now)
    mailbot(restored, "restore", "--force", str(tmp_path / "backup"))
    assert mailbot(restored, "log") == log_now
    assert stored_files(restored) == files_now


def test_restore_refuses_a_database_or_store_in_use_unless_forced(
    tmp_path: Path, make_app: AppFactory
) -> None:
    source = config_at(tmp_path / "live")
    make_app(
        settings_values(tmp_path / "live", f"sqlite:///{tmp_path / 'live' / 'mailbot.sqlite3'}")
    )
    fill_maildir(tmp_path / "live" / "Maildir")
    mailbot(source, "run", "--once")
    mailbot(source, "backup", str(tmp_path / "backup"))
    log = mailbot(source, "log")

    result = CliRunner().invoke(
        main, ["--config", str(source), "restore", str(tmp_path / "backup")]
    )
    assert result.exit_code == 2
    assert result.stderr.startswith("mailbot: the database ")
    assert "--force" in result.stderr
    assert result.stderr.count("\n") == 1
    assert mailbot(source, "log") == log  # untouched

    empty = tmp_path / "empty"
    empty.mkdir()
    result = CliRunner().invoke(main, ["--config", str(source), "restore", str(empty)])
    assert result.exit_code == 2
    assert result.stderr == f"mailbot: {empty} holds no mailbot backup (no manifest.json)\n"


def test_a_postgresql_backup_copies_the_store_and_names_pg_dump(
    tmp_path: Path, database_url: str, make_app: AppFactory
) -> None:
    source = config_at(tmp_path / "live", database_url)
    app = make_app(settings_values(tmp_path / "live", database_url))
    fill_maildir(tmp_path / "live" / "Maildir")
    assert Daemon(app).once()[0].new == MAILS
    result = CliRunner().invoke(main, ["--config", str(source), "backup", str(tmp_path / "b")])
    assert result.exit_code == 0, result.output
    assert "pg_dump" in result.stderr
    manifest = json.loads((tmp_path / "b" / "manifest.json").read_text(encoding="utf-8"))
    assert manifest["database"] is None
    files = stored_files(source)
    for name in files:
        copy = tmp_path / "b" / "store" / name[:2] / name[2:4] / name
        assert hashlib.sha256(copy.read_bytes()).hexdigest() == name


def test_a_backup_before_the_first_mail_restores_an_empty_log(
    tmp_path: Path, make_app: AppFactory
) -> None:
    source = config_at(tmp_path / "live")
    make_app(
        settings_values(tmp_path / "live", f"sqlite:///{tmp_path / 'live' / 'mailbot.sqlite3'}")
    )
    out = mailbot(source, "backup", str(tmp_path / "backup"))
    assert "0 blobs in the store, 0 new" in out  # no store folder yet: nothing is wrong
    restored = config_at(tmp_path / "restored")
    mailbot(restored, "restore", str(tmp_path / "backup"))
    assert mailbot(restored, "log") == mailbot(source, "log")
