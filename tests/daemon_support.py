"""Support for the daemon tests: settings for real servers, sample mailboxes, a daemon process."""

from __future__ import annotations

import email
import os
import signal
import subprocess
import sys
import time
import zlib
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

from sqlalchemy import func, select

from mailbot.app import App
from mailbot.store.models import Mail, Reply
from tests.conftest import ROOT, RULES
from tests.docfactory import Form, form_docx
from tests.mailfactory import build_mail
from tests.mailfactory.base import Att
from tests.mailfactory.documents import pdf_bytes
from tests.servers.dovecot import Dovecot
from tests.servers.smtp import SmtpSink

BEIJING = timezone(timedelta(hours=8))
PASSWORD_ENV = "MAILBOT_TEST_IMAP_PASSWORD"
SMTP_PASSWORD_ENV = "MAILBOT_TEST_SMTP_PASSWORD"


def toml(values: dict[str, Any], prefix: str = "") -> str:
    """A small TOML writer for settings (strings, numbers, booleans, lists, tables)."""
    plain = {k: v for k, v in values.items() if not isinstance(v, dict)}
    tables = {k: v for k, v in values.items() if isinstance(v, dict)}
    lines = [f"[{prefix}]"] if prefix and plain else []
    for key, value in plain.items():
        lines.append(f"{key} = {_value(value)}")
    text = "\n".join(lines) + ("\n\n" if lines else "")
    for key, table in tables.items():
        text += toml(table, f"{prefix}.{key}" if prefix else key)
    return text


def _value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return str(value)
    if isinstance(value, list):
        return "[" + ", ".join(_value(v) for v in value) + "]"
    escaped = str(value).replace("\\", "\\\\").replace('"', '\\"')
    return f'"{escaped}"'


def settings_values(
    tmp_path: Path,
    database_url: str,
    *,
    imap: Dovecot | None = None,
    smtp: SmtpSink | None = None,
    **extra: Any,
) -> dict[str, Any]:
    values: dict[str, Any] = {
        "rules": str(RULES),
        "templates_dir": str(ROOT / "templates"),
        "database_url": database_url,
        "store_dir": str(tmp_path / "store"),
        "source": {
            "kind": "maildir",
            "poll_interval": "1s",
            "maildir": {"path": str(tmp_path / "Maildir")},
        },
        "replies": {
            "transport": "outbox_dir",
            "outbox_dir": str(tmp_path / "outbox"),
            "send_interval": "1s",
            "backoff_initial": "1s",
            "backoff_max": "2s",
        },
    }
    if imap is not None:
        values["source"] = {
            "kind": "imap",
            "poll_interval": "2s",
            "imap": {
                "host": imap.host,
                "port": imap.port,
                "security": "plain",
                "username": imap.user,
                "password_env": PASSWORD_ENV,
                "batch_size": 20,
            },
        }
    if smtp is not None:
        values["replies"] = {
            "transport": "smtp",
            "send_interval": "1s",
            "backoff_initial": "1s",
            "backoff_max": "2s",
            "smtp": {"host": smtp.host, "port": smtp.port, "security": "plain", "timeout": "5s"},
        }
    for key, value in extra.items():
        if isinstance(value, dict) and isinstance(values.get(key), dict):
            values[key] = {**values[key], **value}
        else:
            values[key] = value
    return values


INST, PI = "中国科学院植物研究所", "张喆"


def proposal(
    client: str,
    inst: str = INST,
    pi: str = PI,
    *,
    files: str = "good",
    subject: str | None = None,
    **kwargs: Any,
) -> bytes:
    """An applicant mail: files "good", "misnamed", "no_pdf", "pdf_only" or "none"."""
    stem = f"{inst}+{pi}"
    # Each applicant's scan is their own: the same file under two names is a finding.
    scan = f"proposal {zlib.crc32(stem.encode())}"
    choice = {
        "good": [
            Att(f"{stem}.docx", form_docx(Form(institution=inst, pi=pi))),
            Att(f"{stem}.pdf", pdf_bytes(2, scan)),
            Att("合作协议.pdf", pdf_bytes(1)),
        ],
        "misnamed": [
            Att("proposal.docx", form_docx(Form(institution=inst, pi=pi))),
            Att("scan.pdf", pdf_bytes(1, scan)),
            Att("合作协议.pdf", pdf_bytes(1)),
        ],
        "no_pdf": [
            Att(f"{stem}.docx", form_docx(Form(institution=inst, pi=pi))),
            Att("合作协议.pdf", pdf_bytes(1)),
        ],
        "pdf_only": [Att(f"{stem}（盖章版）.pdf", pdf_bytes(2, scan))],
        "none": [],
    }[files]
    return build_mail(
        client,
        subject=subject or f"合作专项建议书：{stem}",
        attachments=choice,
        sender=(pi, f"pi{zlib.crc32(stem.encode()) % 10_000}@example.ac.cn"),
        **kwargs,
    )


def july(day: int, hour: int = 10, minute: int = 0, second: int = 0) -> datetime:
    return datetime(2021, 7, day, hour, minute, second, tzinfo=BEIJING)


@dataclass
class DaemonProcess:
    process: subprocess.Popen[bytes]
    log: Path

    def text(self) -> str:
        return self.log.read_text(encoding="utf-8", errors="replace")


@contextmanager
def daemon_process(
    config: Path, env: dict[str, str], log: Path, *, verbose: bool = False
) -> Iterator[DaemonProcess]:
    """`mailbot run` in its own process, as an operator starts it (`-v`: debug logging)."""
    flags = ["-v"] if verbose else []
    with open(log, "ab") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", "mailbot", "--config", str(config), *flags, "run"],
            stdout=out,
            stderr=subprocess.STDOUT,
            env={**os.environ, **env},
            cwd=ROOT,
        )
    handle = DaemonProcess(process, log)
    try:
        yield handle
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


def wait_until(condition: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.1)
    raise AssertionError(f"timed out after {timeout:.0f}s waiting for {what}")


def count_mails(app: App) -> int:
    with app.db.transaction() as session:
        return session.scalar(select(func.count()).select_from(Mail)) or 0


def unsent_replies(app: App) -> int:
    """Replies still to go: pending, or caught mid-send."""
    with app.db.transaction() as session:
        return (
            session.scalar(
                select(func.count())
                .select_from(Reply)
                .where(Reply.state.in_(["pending", "sending", "handed"]))
            )
            or 0
        )


def message_id(raw: bytes) -> str:
    return str(email.message_from_bytes(raw)["Message-ID"]).strip()


def with_trace(raw: bytes, mailbox: str, hop: str) -> bytes:
    """The copy of a sent mail the mailbox gets by way of another address (cc, an alias):
    the same bytes under other trace headers, as each delivery writes its own."""
    trace = (
        f"Return-Path: <bounces+{hop}@example.ac.cn>\r\n"
        f"Delivered-To: {mailbox}\r\n"
        f"X-Original-To: {hop}@anso.org.cn\r\n"
        f"Received: from mx.{hop}.example.org (mx.{hop}.example.org [192.0.2.7])\r\n"
        f"\tby mail.anso.org.cn (Postfix) with ESMTPS id {hop.upper()}42\r\n"
        f"\tfor <{hop}@anso.org.cn>; Tue, 20 Jul 2021 10:00:0{len(hop) % 10} +0800\r\n"
    )
    return trace.encode() + raw
