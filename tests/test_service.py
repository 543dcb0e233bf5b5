"""Running mailbot as a service: systemd's notify protocol, the units, and `mailbot status`."""

from __future__ import annotations

import logging
import os
import re
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import threading
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from click.testing import CliRunner
from markupsafe import escape
from sqlalchemy import func, select

from mailbot.cli import main
from mailbot.service.daemon import STEP_GRACE, Daemon
from mailbot.service.notify import Notifier, Pulse
from mailbot.service.status import next_digest
from mailbot.sources.maildir import MaildirMailbox, deliver
from mailbot.store.models import Reply
from tests.conftest import ROOT
from tests.daemon_support import (
    daemon_process,
    july,
    proposal,
    settings_values,
    toml,
)
from tests.fixtures import AppFactory
from tests.web_support import Client, running_desk

UNITS = ROOT / "contrib" / "systemd"
BEIJING = ZoneInfo("Asia/Shanghai")


class FakeSystemd:
    """The service manager's end of NOTIFY_SOCKET: a unix datagram socket made by the test."""

    def __init__(self, address: str, bind_to: str | bytes) -> None:
        self.address = address  # as NOTIFY_SOCKET spells it
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(bind_to)
        self.sock.settimeout(90)  # a bound on a broken test only; each wait ends on a datagram
        self.seen: list[str] = []

    def next(self) -> str:
        message = self.sock.recv(4096).decode()
        self.seen.append(message)
        return message

    def wait_for(self, line: str) -> str:
        """The first datagram from now on that carries this line."""
        while True:
            message = self.next()
            if line in message.splitlines():
                return message

    def close(self) -> None:
        self.sock.close()


@pytest.fixture(params=["path", "abstract"])
def systemd(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[FakeSystemd]:
    if request.param == "path":
        path = tmp_path / "notify.sock"
        fake = FakeSystemd(str(path), str(path))
    else:
        name = f"mailbot-test-{secrets.token_hex(6)}"
        fake = FakeSystemd(f"@{name}", b"\0" + name.encode())
    yield fake
    fake.close()


def maildir_config(
    make_app: AppFactory, tmp_path: Path, poll_interval: str = "1s", **extra: Any
) -> Path:
    values = settings_values(tmp_path, f"sqlite:///{tmp_path / 'mailbot.sqlite3'}", **extra)
    values["source"]["poll_interval"] = poll_interval
    make_app(values)  # the schema, as `mailbot init` makes it
    config = tmp_path / "mailbot.toml"
    config.write_text(toml(values), encoding="utf-8")
    return config


def status_of(config: Path) -> str:
    result = CliRunner().invoke(main, ["--config", str(config), "status"])
    assert result.exit_code == 0, result.output
    return result.stdout


@pytest.mark.slow  # runs `mailbot run` in its own process
def test_the_daemon_says_ready_pings_the_watchdog_from_its_loop_and_says_stopping(
    tmp_path: Path, systemd: FakeSystemd, make_app: AppFactory
) -> None:
    # One poll only: a second one, however soon a busy machine lets it come, would be
    # the "last poll" that `mailbot status` shows. SIGTERM ends the wait.
    config = maildir_config(make_app, tmp_path, poll_interval="1h")
    deliver(tmp_path / "Maildir", proposal("outlook"), july(20))
    env = {"NOTIFY_SOCKET": systemd.address, "WATCHDOG_USEC": "2000000"}
    with daemon_process(config, env, tmp_path / "daemon.log") as daemon:
        first = systemd.next()
        assert "READY=1" in first.splitlines(), first
        # After its first poll the daemon says what it did, then keeps pinging.
        polled = systemd.wait_for("WATCHDOG=1")
        while not any(line.startswith("STATUS=last poll") for line in polled.splitlines()):
            polled = systemd.next()
        assert "1 new (accepted 1)" in polled
        systemd.wait_for("WATCHDOG=1")

        shown = status_of(config)
        assert re.search(r"daemon: +running, lease held by \S+ pid \d+", shown), shown
        assert "last poll:" in shown
        assert "1 new (accepted 1)" in shown

        daemon.process.send_signal(signal.SIGTERM)
        systemd.wait_for("STOPPING=1")
        assert daemon.process.wait(timeout=60) == 0, daemon.text()
    assert "not running: stopped cleanly" in status_of(config)


def test_without_notify_socket_the_daemon_sends_nothing_and_a_bad_one_is_ignored() -> None:
    assert not Notifier({}).enabled
    assert Notifier({}).watchdog_interval is None
    assert not Notifier({"NOTIFY_SOCKET": "relative/path"}).enabled
    # WATCHDOG_PID names the process the watchdog is meant for: not us, no pings.
    other = Notifier({"NOTIFY_SOCKET": "/run/x", "WATCHDOG_USEC": "4000000", "WATCHDOG_PID": "1"})
    assert other.watchdog_interval is None
    mine = Notifier(
        {"NOTIFY_SOCKET": "/run/x", "WATCHDOG_USEC": "4000000", "WATCHDOG_PID": str(os.getpid())}
    )
    assert mine.watchdog_interval == 2.0


def test_a_loop_stuck_past_its_step_is_overdue_so_the_watchdog_is_not_pinged() -> None:
    now = [1000.0]
    pulse = Pulse(clock=lambda: now[0])
    pulse.beat(30.0)  # e.g. a wait for news of 30 s
    now[0] += 29.0
    assert pulse.overdue() == 0.0
    now[0] += 5.0
    assert pulse.overdue() == 4.0
    pulse.beat(600.0)  # the loop moves on: pings resume
    assert pulse.overdue() == 0.0


@pytest.mark.servers  # systemd-analyze
def test_the_units_pass_systemd_analyze_verify(tmp_path: Path) -> None:
    analyze = shutil.which("systemd-analyze")
    if analyze is None:
        pytest.skip("no systemd-analyze here to verify the units: apt-get install systemd")
    # verify insists that ExecStart's program exists: point it at this venv's mailbot.
    mailbot = shutil.which("mailbot") or str(Path(sys.executable).parent / "mailbot")
    assert Path(mailbot).exists()
    copies = []
    for unit in (
        "mailbot.service",
        "mailbot-web.service",
        "mailbot-backup.service",
        "mailbot-backup.timer",
    ):
        text = (UNITS / unit).read_text(encoding="utf-8")
        assert "/opt/mailbot/.venv/bin/mailbot" in text or unit.endswith(".timer")
        copy = tmp_path / unit
        copy.write_text(text.replace("/opt/mailbot/.venv/bin/mailbot", mailbot), encoding="utf-8")
        copies.append(str(copy))
    result = subprocess.run(
        [analyze, "verify", *copies], capture_output=True, text=True, timeout=120, check=False
    )
    # Unknown or malformed settings are only warnings on stderr: none may appear.
    assert result.returncode == 0, result.stderr
    assert result.stderr.strip() == "", result.stderr
    daemon = (UNITS / "mailbot.service").read_text(encoding="utf-8")
    for setting in (
        "Type=notify",
        "WatchdogSec=",
        "User=mailbot",
        "StateDirectory=mailbot",
        "ProtectSystem=strict",
        "NoNewPrivileges=yes",
        "PrivateTmp=yes",
        "Restart=on-failure",
        "EnvironmentFile=",
    ):
        assert setting in daemon, setting


def closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
    return port


@pytest.mark.slow  # the whole pipeline
def test_status_shows_waiting_mail_the_outbox_and_the_last_error(
    tmp_path: Path, make_app: AppFactory
) -> None:
    smtp = {"host": "127.0.0.1", "port": closed_port(), "security": "plain", "timeout": "2s"}
    config = maildir_config(
        make_app,
        tmp_path,
        replies={"transport": "smtp", "max_attempts": 1, "smtp": smtp},
        digest={"to": ["secretariat@anso.org.cn"], "at": "08:00"},
    )
    before = status_of(config)
    assert "daemon:      has never run against this database" in before
    assert "outbox:      0 pending, 0 failed, 0 uncertain" in before

    from mailbot.app import App
    from mailbot.config import load_settings

    app = App.build(load_settings(config))
    for day in (20, 21):
        deliver(tmp_path / "Maildir", proposal("outlook", pi=f"张{day}"), july(day))
    Daemon(app).once()  # the SMTP server is down: each reply fails its only attempt
    with app.db.transaction() as session:
        failed = session.scalar(
            select(func.count()).select_from(Reply).where(Reply.state == "failed")
        )
    assert failed == 2
    shown = status_of(config)
    assert "daemon:      not running: stopped cleanly" in shown
    assert "2 new (accepted 2)" in shown
    assert "waiting:     0 mails in the mailbox" in shown
    assert "outbox:      0 pending, 2 failed, 0 uncertain" in shown
    assert re.search(r"next digest: \d{4}-\d\d-\d\d 08:00 CST", shown), shown

    # The store's disk goes away: the next mail stays in the mailbox and status says why.
    store = tmp_path / "store"
    store.rename(tmp_path / "store.gone")
    store.write_text("not a folder")
    deliver(tmp_path / "Maildir", proposal("outlook", pi="王五"), july(22))
    Daemon(app).once()
    shown = status_of(config)
    assert "waiting:     at least 1 mail in the mailbox not yet recorded" in shown
    assert re.search(r"last error: .*store.*\(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d CST", shown), shown
    app.close()


def test_the_next_digest_is_at_its_hour_in_the_calls_time_zone() -> None:
    morning = datetime(2021, 7, 30, 9, 0, tzinfo=BEIJING)
    assert next_digest("08:00", ["a@anso.org.cn"], BEIJING, morning) == datetime(
        2021, 7, 31, 8, 0, tzinfo=BEIJING
    )
    assert next_digest("08:00", [], BEIJING, morning) is None


@pytest.mark.slow  # fills a desk through the whole pipeline
def test_the_desk_shows_the_status_figures_in_a_strip_atop_its_pages(tmp_path: Path) -> None:
    with running_desk(tmp_path / "demo") as desk:
        client = Client(desk.url)
        assert client.login().status == 303
        config = desk.root / "mailbot.toml"
        expected = [line.split(":", 1) for line in status_of(config).splitlines() if ":" in line]
        for path in ("/", "/log", "/mails"):
            page = client.get(path)
            assert page.status == 200
            strip = re.search(r'<dl class="service"[^>]*>(.*?)</dl>', page.text, re.S)
            assert strip, page.text[:2000]
            for label, text in expected:
                assert f"<dt>{label}</dt>" in strip.group(1)
                # Ages move on between the two reads; the rest is the same.
                for part in re.split(r"\(\d+ (?:s|min|h|days) ago\)", text.strip()):
                    assert str(escape(part.strip())) in strip.group(1), (label, part)


class EventHandler(logging.Handler):
    """Sets an event when a log line says the given words."""

    def __init__(self, event: threading.Event, words: str) -> None:
        super().__init__()
        self.event = event
        self.words = words

    def emit(self, record: logging.LogRecord) -> None:
        if self.words in record.getMessage():
            self.event.set()


class HungMaildir(MaildirMailbox):
    """A Maildir whose wait for news hangs until released, as a stuck IDLE would."""

    def __init__(self, path: Path) -> None:
        super().__init__(path)
        self.entered = threading.Event()
        self.release = threading.Event()

    def wait(self, stop: threading.Event, timeout: float) -> bool:
        self.entered.set()
        self.release.wait()
        stop.wait(timeout)
        return False


class MainThreadClock:
    """The pulse's fake clock; counts the main thread's looks (one per watchdog tick)."""

    def __init__(self) -> None:
        self.now = 1000.0
        self.looks = 0
        self.changed = threading.Condition()

    def __call__(self) -> float:
        if threading.current_thread() is threading.main_thread():
            with self.changed:
                self.looks += 1
                self.changed.notify_all()
        return self.now

    def wait_looks(self, more: int) -> None:
        with self.changed:
            target = self.looks + more
            assert self.changed.wait_for(lambda: self.looks >= target, timeout=60)


def drain(systemd: FakeSystemd) -> list[str]:
    systemd.sock.setblocking(False)
    try:
        while True:
            systemd.next()
    except BlockingIOError:
        pass
    finally:
        systemd.sock.settimeout(90)
    return systemd.seen


@pytest.mark.slow  # the daemon loop, on each socket kind
def test_a_hung_intake_loop_stops_the_watchdog_pings_until_it_moves_again(
    tmp_path: Path, systemd: FakeSystemd, monkeypatch: pytest.MonkeyPatch, make_app: AppFactory
) -> None:
    app = make_app(settings_values(tmp_path, f"sqlite:///{tmp_path / 'mailbot.sqlite3'}"))
    mailbox = HungMaildir(tmp_path / "Maildir")
    monkeypatch.setattr(app, "open_mailbox", lambda: mailbox)
    daemon = Daemon(app)
    daemon.notifier = Notifier({"NOTIFY_SOCKET": systemd.address, "WATCHDOG_USEC": "200000"})
    clock = MainThreadClock()
    daemon.pulse = Pulse(clock=clock)
    hung = threading.Event()
    noticed = EventHandler(hung, "watchdog is no longer pinged")
    logging.getLogger("mailbot.service.daemon").addHandler(noticed)
    failures: list[BaseException] = []

    def observe() -> None:
        try:
            systemd.wait_for("READY=1")
            assert mailbox.entered.wait(60)  # the loop now waits for news (its step: 1 s)
            systemd.wait_for("WATCHDOG=1")
            clock.now += 1.0 + STEP_GRACE + 1.0  # ... and is still there long after
            assert hung.wait(60), "the daemon never noticed its loop hung"
            drain(systemd)  # the pings sent before it noticed
            seen = len(systemd.seen)
            clock.wait_looks(5)
            assert not any("WATCHDOG=1" in m for m in drain(systemd)[seen:])
            mailbox.release.set()  # the loop moves on: pings resume
            systemd.wait_for("WATCHDOG=1")
        except BaseException as exc:
            failures.append(exc)
        finally:
            mailbox.release.set()
            daemon.stop.set()

    handlers = {sig: signal.getsignal(sig) for sig in (signal.SIGTERM, signal.SIGINT)}
    observer = threading.Thread(target=observe)
    observer.start()
    try:
        daemon.run()  # in the main thread, as `mailbot run` runs it
    finally:
        daemon.stop.set()
        mailbox.release.set()
        observer.join(60)
        for sig, handler in handlers.items():
            signal.signal(sig, handler)
        logging.getLogger("mailbot.service.daemon").removeHandler(noticed)
    assert not failures, failures[0]
    assert any("STOPPING=1" in message.splitlines() for message in drain(systemd))
