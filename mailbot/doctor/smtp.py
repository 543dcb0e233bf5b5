"""`mailbot doctor` on the SMTP server: TCP, TLS, login, clock, a test message if asked."""

from __future__ import annotations

import smtplib
import socket
from datetime import UTC, datetime
from email.message import EmailMessage
from email.utils import format_datetime, formataddr, make_msgid
from typing import Any

from mailbot import __version__
from mailbot.app import App
from mailbot.config import ConfigError, SmtpSettings
from mailbot.doctor.connections import (
    banner_time,
    check_tcp,
    clock_finding,
    credentials_fix,
    plain_warning,
    tls_failure,
    tls_success,
)
from mailbot.doctor.findings import Finding, fail, failed, ok, skip
from mailbot.errors import MailbotError
from mailbot.net.tls import client_context
from mailbot.replies.transports import SmtpTransport

SECTION = "[replies.smtp]"


class _Greeted:
    """Keeps the server's 220 greeting, which smtplib reads and drops."""

    banner = ""

    def connect(self, host: str = "localhost", port: int = 0, source_address: Any = None) -> Any:
        code, message = super().connect(host, port, source_address)  # type: ignore[misc]
        self.banner = message.decode("utf-8", "replace")
        return code, message


class _SMTP(_Greeted, smtplib.SMTP):
    pass


class _SMTP_SSL(_Greeted, smtplib.SMTP_SSL):
    pass


def check_smtp(app: App, send_test: str | None) -> list[Finding]:
    settings = app.with_ca_path(app.settings.replies.smtp)
    findings = [check_tcp("SMTP", settings.host, settings.port, settings.timeout, SECTION)]
    banner = ""
    if not failed(findings):
        tls, banner, before, after = _check_tls(settings)
        findings.append(tls)
    if failed(findings):
        return [*findings, skip("SMTP login", "not checked: no connection")]
    findings.append(_check_login(app, settings, send_test))
    theirs = banner_time(banner)
    if theirs is None:
        findings.append(skip("SMTP clock", "not read: the server's greeting shows no time"))
    else:
        findings.append(clock_finding("SMTP", theirs, before, after))
    return findings


def _check_tls(settings: SmtpSettings) -> tuple[Finding, str, datetime, datetime]:
    where = f"{settings.host}:{settings.port}"
    before = datetime.now(UTC)
    try:
        context = client_context(settings, f"SMTP server {where}")
    except ConfigError as exc:
        return (
            fail("SMTP TLS", str(exc), f"set ca_file in {SECTION} to a PEM file"),
            "",
            before,
            before,
        )
    smtp: _SMTP | _SMTP_SSL
    # The host's own name: smtplib would otherwise ask DNS for this machine's.
    local = socket.gethostname()
    try:
        if settings.security == "ssl":
            smtp = _SMTP_SSL(
                settings.host,
                settings.port,
                local_hostname=local,
                timeout=settings.timeout,
                context=context,
            )
        else:
            smtp = _SMTP(
                settings.host, settings.port, local_hostname=local, timeout=settings.timeout
            )
    except (OSError, smtplib.SMTPException) as exc:
        return tls_failure("SMTP", where, exc, SECTION), "", before, datetime.now(UTC)
    after = datetime.now(UTC)
    try:
        finding = _handshake(smtp, settings, context, where)
    except (OSError, smtplib.SMTPException) as exc:
        smtp.close()
        return tls_failure("SMTP", where, exc, SECTION), smtp.banner, before, after
    try:
        smtp.quit()
    except (OSError, smtplib.SMTPException):
        smtp.close()
    return finding, smtp.banner, before, after


def _handshake(smtp: smtplib.SMTP, settings: SmtpSettings, context: Any, where: str) -> Finding:
    if settings.security == "plain":
        return plain_warning("SMTP", settings.host, SECTION)
    if settings.security == "starttls":
        smtp.ehlo()
        if not smtp.has_extn("starttls"):
            return fail(
                "SMTP TLS",
                f"{where} does not offer STARTTLS",
                f'set security = "ssl" and port = 465 in {SECTION}',
            )
        smtp.starttls(context=context)
    sock: Any = smtp.sock
    cert = sock.getpeercert() if sock is not None else None
    return tls_success("SMTP", cert, settings)


def _check_login(app: App, settings: SmtpSettings, send_test: str | None) -> Finding:
    try:
        transport = app.transport()
    except MailbotError as exc:
        return fail("SMTP login", str(exc), f"set {settings.password_env} in mailbot's environment")
    assert isinstance(transport, SmtpTransport)
    who = f"as {settings.username}" if settings.username else "without a login"
    try:
        transport.probe()
        if send_test:
            sender = app.settings.replies.from_address or app.call.call.mailbox
            transport.send(_test_message(app, sender, send_test), sender, [send_test])
    except MailbotError as exc:
        return fail(
            "SMTP login",
            str(exc),
            credentials_fix(settings, SECTION),
        )
    finally:
        transport.close()
    sent = f"; a test message went to {send_test}" if send_test else ""
    return ok("SMTP login", f"a session opened {who}{sent}")


def _test_message(app: App, sender: str, to: str) -> bytes:
    message = EmailMessage()
    message["From"] = formataddr((app.settings.replies.from_name, sender))
    message["To"] = to
    message["Subject"] = "mailbot doctor: test message"
    message["Date"] = format_datetime(datetime.now(UTC))
    message["Message-ID"] = make_msgid(domain=sender.rpartition("@")[2] or None)
    # Never answered by a machine: an auto-reply to it would be one more mail to judge.
    message["Auto-Submitted"] = "auto-generated"
    message.set_content(
        f"This message was sent by `mailbot doctor --send-test` (mailbot {__version__}) to show "
        f"that replies to applicants leave through {app.settings.replies.smtp.host}.\n"
    )
    return message.as_bytes()
