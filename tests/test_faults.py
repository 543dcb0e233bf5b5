"""The fault matrix: `mailbot run` against real Dovecot, SMTP and PostgreSQL servers, killed
at five points of the pipeline and starved of its mailbox, its SMTP server, its disk and
its database. Every case ends with every mail recorded once and every reply sent once at
most, and prints its figures: faults injected, mails lost, duplicate replies.

The kills use the test hook in mailbot/service/faults.py (MAILBOT_FAULT=POINT:N). Every daemon
runs with -v (debug logging) and real passwords, and no log may show one.
"""

from __future__ import annotations

import errno
import os
import signal
import stat
import subprocess
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select

from mailbot.service.daemon import Daemon
from mailbot.sources.maildir import deliver
from mailbot.store.models import Mail, Reply
from tests.daemon_support import (
    PASSWORD_ENV,
    SMTP_PASSWORD_ENV,
    DaemonProcess,
    count_mails,
    daemon_process,
    july,
    message_id,
    proposal,
    settings_values,
    toml,
    unsent_replies,
    wait_until,
)
from tests.fixtures import AppFactory
from tests.servers.dovecot import Dovecot
from tests.servers.postgres import Postgres
from tests.servers.smtp import SmtpSink

MAILS = 5
CLIENTS = ["outlook", "foxmail", "coremail", "gmail", "qqmail", "applemail"]


@dataclass(frozen=True)
class Figures:
    case: str
    faults: int
    mails: int
    lost: int
    recorded_twice: int
    replies: int
    duplicate_replies: int
    uncertain: int

    def line(self) -> str:
        return (
            f"fault matrix: {self.case:<16} faults injected {self.faults}, mails {self.mails}, "
            f"mails lost {self.lost}, recorded twice {self.recorded_twice}, replies delivered "
            f"{self.replies}, duplicate replies {self.duplicate_replies}, "
            f"uncertain {self.uncertain}"
        )


FIGURES: list[Figures] = []


@pytest.fixture(scope="module", autouse=True)
def _summary(request: pytest.FixtureRequest) -> Iterator[None]:
    yield
    capture = request.config.pluginmanager.get_plugin("capturemanager")
    if capture is None or not FIGURES:
        return
    total = Figures(
        "all cases",
        *(sum(getattr(f, name) for f in FIGURES) for name in list(Figures.__annotations__)[1:]),
    )
    with capture.global_and_fixture_disabled():
        print("\n" + "\n".join(figures.line() for figures in [*FIGURES, total]))


class Rig:
    """One daemon's surroundings: its mailbox, SMTP server (with a login), database, logs."""

    def __init__(
        self,
        make_app: AppFactory,
        tmp_path: Path,
        imap: Dovecot,
        smtp: SmtpSink,
        database_url: str,
        **extra: Any,
    ) -> None:
        self.tmp_path, self.imap, self.smtp = tmp_path, imap, smtp
        values = settings_values(tmp_path, database_url, imap=imap, smtp=smtp, **extra)
        values["replies"]["smtp"] |= {"username": smtp.user, "password_env": SMTP_PASSWORD_ENV}
        self.app = make_app(values)
        self.values = values
        self.config = tmp_path / "mailbot.toml"
        self.config.write_text(toml(values))
        self.env = {PASSWORD_ENV: imap.password, SMTP_PASSWORD_ENV: smtp.password}
        self.secrets = {"IMAP": imap.password, "SMTP": smtp.password}
        self.sent: list[str] = []  # the Message-IDs of what the applicants sent
        self.logs: list[Path] = []

    def append(self, count: int) -> None:
        for _ in range(count):
            n = len(self.sent)
            raw = proposal(CLIENTS[n % len(CLIENTS)], f"中国科学院第{n}研究所", f"李{n}")
            self.imap.append("INBOX", raw, july(20, 9, n))
            self.sent.append(message_id(raw))

    def fetch_batches_of(self, size: int) -> None:
        """Fetch (and so record) at most ``size`` mails at once."""
        self.values["source"]["imap"]["batch_size"] = size
        self.config.write_text(toml(self.values))

    @contextmanager
    def daemon(self, name: str, **env: str) -> Iterator[DaemonProcess]:
        log = self.tmp_path / f"{name}.log"
        self.logs.append(log)
        with daemon_process(self.config, {**self.env, **env}, log, verbose=True) as handle:
            yield handle

    def settled(self) -> bool:
        """Every mail recorded and filed, and every reply gone."""
        return (
            count_mails(self.app) == len(self.sent)
            and unsent_replies(self.app) == 0
            and self.imap.list_uids("INBOX") == []
        )

    def waiting_in_the_mailbox(self) -> int:
        """Mails still in the inbox, untouched: neither moved, nor flagged, nor seen."""
        with self.imap.client() as client:
            client.select_folder("INBOX", readonly=True)
            flags = client.get_flags(client.search("ALL"))
        assert all(not set(f) & {b"$MailbotDone", b"\\Seen"} for f in flags.values()), flags
        return len(flags)

    def log_text(self) -> str:
        return "".join(path.read_text(errors="replace") for path in self.logs)

    def warnings(self, text: str) -> list[str]:
        return [
            line for line in self.log_text().splitlines() if " WARNING " in line and text in line
        ]

    def figures(self, case: str, faults: int, capsys: pytest.CaptureFixture[str]) -> Figures:
        """Account for every mail and reply, check the logs hold no password; print."""
        with self.app.db.transaction() as session:
            recorded = Counter(session.scalars(select(Mail.message_id)))
            states = Counter(session.scalars(select(Reply.state)))
            uncertain = list(
                session.scalars(
                    select(Mail.message_id).join(Reply.mail).where(Reply.state == "uncertain")
                )
            )
            blobs = list(session.scalars(select(Mail.raw_sha256)))
        delivered = Counter(m.message["In-Reply-To"].strip() for m in self.smtp.messages)
        figures = Figures(
            case=case,
            faults=faults,
            mails=len(self.sent),
            lost=sum(1 for mid in self.sent if not recorded[mid]),
            recorded_twice=sum(count - 1 for count in recorded.values() if count > 1),
            replies=sum(delivered.values()),
            duplicate_replies=sum(count - 1 for count in delivered.values() if count > 1),
            uncertain=states["uncertain"],
        )
        FIGURES.append(figures)
        with capsys.disabled():
            print(f"\n{figures.line()}")
        assert (figures.lost, figures.recorded_twice, figures.duplicate_replies) == (0, 0, 0)
        assert set(recorded) == set(self.sent)
        assert all(self.app.blobs.exists(sha) for sha in blobs)
        # Every applicant heard back exactly once: an uncertain reply had arrived.
        assert delivered == Counter(self.sent)
        assert states["sent"] + states["uncertain"] == len(self.sent), states
        assert all(delivered[mid] == 1 for mid in uncertain)
        assert {m.auth_user for m in self.smtp.messages} == {self.smtp.user}
        assert self.imap.list_uids("INBOX") == []
        text = self.log_text()
        leaked = [name for name, secret in self.secrets.items() if secret in text]
        assert leaked == [], "these passwords reached the log"
        return figures


@pytest.fixture
def rig(mailbox: Dovecot, smtp_sink: SmtpSink, tmp_path: Path, make_app: AppFactory) -> Rig:
    return Rig(make_app, tmp_path, mailbox, smtp_sink, f"sqlite:///{tmp_path / 'mailbot.sqlite3'}")


@pytest.fixture
def either_rig(
    mailbox: Dovecot, smtp_sink: SmtpSink, tmp_path: Path, make_app: AppFactory, db_url: str
) -> Rig:
    """A rig on SQLite, then on PostgreSQL: a batch's one transaction is proved on both."""
    return Rig(make_app, tmp_path, mailbox, smtp_sink, db_url)


# --------------------------------------------------------------------------- SIGKILL


def _states(rig: Rig) -> Counter[str]:
    with rig.app.db.transaction() as session:
        return Counter(session.scalars(select(Reply.state)))


def _unsettled(rig: Rig) -> int:
    with rig.app.db.transaction() as session:
        return (
            session.scalar(select(func.count()).select_from(Mail).where(Mail.settled.is_(False)))
            or 0
        )


# What the killed daemon must have left behind: proof that the kill hit its point. Each
# fetch batch is recorded in one transaction: with batches of one mail, every mail is
# committed on its own...
KILLS: dict[str, Callable[[Rig], bool]] = {
    "after_fetch:3": lambda rig: count_mails(rig.app) == 2,
    "after_store:3": lambda rig: count_mails(rig.app) == 2,
    "after_verdict:3": lambda rig: count_mails(rig.app) == 3 and _unsettled(rig) >= 1,
    "during_send:2": lambda rig: _states(rig)["sending"] == 1,
    "after_send:2": lambda rig: _states(rig)["handed"] == 1,
}
# ... and with the five mails in one batch (the default), all of them are committed together.
BATCH_KILLS: dict[str, Callable[[Rig], bool]] = {
    "after_fetch:3": lambda rig: count_mails(rig.app) == 0,
    "after_store:3": lambda rig: count_mails(rig.app) == 0,
    "after_verdict:3": lambda rig: count_mails(rig.app) == MAILS and _unsettled(rig) >= 1,
}
INTAKE = [fault for fault in KILLS if fault in BATCH_KILLS]


@pytest.mark.parametrize(
    ("fault", "batch"),
    [
        *(pytest.param(fault, 1, id=fault) for fault in INTAKE),
        *(pytest.param(fault, None, id=f"{fault} one batch") for fault in INTAKE),
        *(pytest.param(fault, None, id=fault) for fault in KILLS if fault not in INTAKE),
    ],
)
def test_sigkill_loses_no_mail_and_sends_no_reply_twice(
    either_rig: Rig, fault: str, batch: int | None, capsys: pytest.CaptureFixture[str]
) -> None:
    rig = either_rig
    if batch is not None:
        rig.fetch_batches_of(batch)
    rig.append(MAILS)
    with rig.daemon("killed", MAILBOT_FAULT=fault) as killed:
        assert killed.process.wait(timeout=90) == -signal.SIGKILL, killed.text()
    proof = KILLS[fault] if batch == 1 else BATCH_KILLS.get(fault, KILLS[fault])
    assert proof(rig), f"{fault}: {count_mails(rig.app)} mails, {_states(rig)}"
    with rig.daemon("restarted") as restarted:
        # Well within the lease's 60 s: the killed daemon's lease is taken over at once.
        wait_until(rig.settled, 40, "every mail recorded and answered after the restart")
        restarted.process.send_signal(signal.SIGTERM)
        assert restarted.process.wait(timeout=30) == 0
    rig.figures(fault, 1, capsys)
    if fault == "after_send:2":
        assert _states(rig)["uncertain"] == 1
        assert "marked uncertain" in restarted.text()


# --------------------------------------------------------------------------- servers failing


def test_dovecot_restart_mid_run(rig: Rig, capsys: pytest.CaptureFixture[str]) -> None:
    rig.append(3)
    with rig.daemon("run") as daemon:
        wait_until(lambda: count_mails(rig.app) >= 1, 60, "the first mail")
        rig.imap.restart()
        rig.append(2)
        wait_until(rig.settled, 90, "every mail after the restart")
    failed = rig.warnings("cannot fetch mail")
    assert len(failed) <= 1, failed  # the outage makes one line, however many retries
    assert not failed or "is reachable again" in daemon.text()
    rig.figures("dovecot restart", 1, capsys)


def test_smtp_down_replies_wait_in_the_outbox(rig: Rig, capsys: pytest.CaptureFixture[str]) -> None:
    rig.smtp.stop()
    rig.append(MAILS)
    with rig.daemon("run") as daemon:
        wait_until(lambda: count_mails(rig.app) == MAILS, 60, "the mails recorded")

        def retried() -> bool:
            with rig.app.db.transaction() as session:
                tries = session.scalar(select(func.min(Reply.attempts))) or 0
            return tries >= 3

        wait_until(retried, 60, "three tries of every reply")
        assert rig.imap.list_uids("INBOX") == []  # the intake carries on meanwhile
        assert _states(rig) == {"pending": MAILS}
        rig.smtp.start()
        wait_until(rig.settled, 60, "the outbox to empty")
        text = daemon.text()
    down = rig.warnings("the SMTP server")
    assert len(down) == 1, down  # one line says what is wrong and what happens next
    assert "replies wait in the outbox" in down[0]
    assert "replies go out again" in text
    rig.figures("smtp down", 1, capsys)


@contextmanager
def small_disk(where: Path) -> Iterator[Path]:
    """A 2 MB tmpfs: a disk that fills up."""
    if os.geteuid() != 0:
        pytest.skip("the disk-full case mounts a 2 MB tmpfs, which needs root")
    where.mkdir()
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=2m,mode=0700", "tmpfs", str(where)],
        capture_output=True,
        text=True,
        check=False,
    )
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {mounted.stderr.strip()}")
    try:
        yield where
    finally:
        subprocess.run(["umount", "-l", str(where)], check=False)


def fill(disk: Path) -> Path:
    filler = disk / "filler"
    with open(filler, "wb") as out:
        try:
            while True:
                out.write(b"\0" * 65536)
                out.flush()
        except OSError as exc:
            assert exc.errno == errno.ENOSPC
    return filler


def test_disk_full_leaves_the_mail_in_the_mailbox(
    mailbox: Dovecot,
    smtp_sink: SmtpSink,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    make_app: AppFactory,
) -> None:
    with small_disk(tmp_path / "disk") as disk:
        rig = Rig(
            make_app,
            tmp_path,
            mailbox,
            smtp_sink,
            f"sqlite:///{tmp_path / 'mailbot.sqlite3'}",
            store_dir=str(disk / "store"),
        )
        rig.append(2)
        with rig.daemon("run") as daemon:
            wait_until(lambda: count_mails(rig.app) == 2, 60, "the first mails")
            filler = fill(disk)
            rig.append(3)
            wait_until(lambda: "No space left" in daemon.text(), 30, "the disk to fill")
            wait_until(lambda: daemon.text().count("No space left") >= 4, 30, "a few more tries")
            assert count_mails(rig.app) == 2
            assert rig.waiting_in_the_mailbox() == 3
            filler.unlink()
            wait_until(rig.settled, 60, "the rest once there is room")
        full = rig.warnings("No space left on device")
        assert len(full) == 1, full
        assert "waits unprocessed in the mailbox" in full[0]
        assert "works again" in daemon.text()
        rig.figures("disk full", 1, capsys)


def test_database_down_leaves_the_mail_in_the_mailbox(
    mailbox: Dovecot,
    smtp_sink: SmtpSink,
    postgres: Postgres,
    database_url: str,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    make_app: AppFactory,
) -> None:
    rig = Rig(make_app, tmp_path, mailbox, smtp_sink, database_url)
    rig.secrets["database"] = postgres.password
    rig.append(2)
    with rig.daemon("run") as daemon:
        wait_until(
            lambda: count_mails(rig.app) == 2 and unsent_replies(rig.app) == 0, 60, "two mails"
        )
        rig.app.close()
        postgres.stop()
        try:
            rig.append(3)
            wait_until(lambda: "the database: cannot reach it" in daemon.text(), 30, "the outage")
            wait_until(
                lambda: daemon.text().count("Connection refused") >= 4, 30, "a few more tries"
            )
            assert rig.waiting_in_the_mailbox() == 3
        finally:
            postgres.start()
        wait_until(rig.settled, 90, "the rest once the database is back")
    down = rig.warnings("the database")
    assert len(down) == 1, down
    assert "waits unprocessed in the mailbox" in down[0]
    assert "the database works again" in daemon.text()
    rig.figures("database down", 1, capsys)


# --------------------------------------------------------------------------- on disk


def test_raw_mail_replies_and_the_database_are_for_the_daemons_user_alone(
    tmp_path: Path,
    make_app: AppFactory,
) -> None:
    old = os.umask(0o022)  # a usual umask, which alone would let everyone read
    try:
        database = f"sqlite:///{tmp_path / 'db' / 'mailbot.sqlite3'}"
        app = make_app(settings_values(tmp_path, database))
        deliver(tmp_path / "Maildir", proposal("outlook"), july(20))
        report, sent = Daemon(app).once()
    finally:
        os.umask(old)
    assert (report.new, sent.sent) == (1, 1)
    checked = Counter[str]()
    for top in (tmp_path / "store", tmp_path / "outbox", tmp_path / "db"):
        for path in [top, *top.rglob("*")]:
            mode = stat.S_IMODE(path.stat().st_mode)
            wanted = 0o700 if path.is_dir() else 0o600
            assert mode == wanted, f"{path} is {oct(mode)}"
            checked["dir" if path.is_dir() else "file"] += 1
    assert checked["file"] >= 5  # the raw mail, three attachments, the reply, the database
