"""`mailbot doctor` on the IMAP server: TCP, TLS, login, capabilities, folders, clock."""

from __future__ import annotations

import imaplib
from contextlib import suppress
from datetime import UTC, datetime

from mailbot.app import App
from mailbot.config import ConfigError, ImapSettings
from mailbot.doctor.connections import (
    check_tcp,
    clock_finding,
    credentials_fix,
    plain_warning,
    tls_failure,
    tls_success,
)
from mailbot.doctor.findings import Finding, fail, failed, ok, skip, warn
from mailbot.doctor.local import outcome_text
from mailbot.errors import MailbotError
from mailbot.net.tls import client_context
from mailbot.sources.base import SourceError
from mailbot.sources.imap import ImapMailbox, ImapProbe, LoginRefused

SECTION = "[source.imap]"

# What mailbot does without each capability, for the warning that names it.
_WITHOUT = {
    "IDLE": "new mail is seen only at each poll (poll_interval)",
    "MOVE": "mail is filed by COPY and delete",
    "UIDPLUS": "filing without MOVE expunges all mail marked deleted in the folder",
}


def check_imap(app: App) -> list[Finding]:
    settings = app.with_ca_path(app.settings.source.imap)
    findings = [check_tcp("IMAP", settings.host, settings.port, settings.timeout, SECTION)]
    if not failed(findings):
        findings.append(_check_tls(settings))
    if failed(findings):
        return [*findings, skip("IMAP login", "not checked: no connection")]
    try:
        mailbox = app.open_mailbox()
    except MailbotError as exc:
        return [
            *findings,
            fail(
                "IMAP login",
                str(exc),
                f"set {settings.password_env} in "
                "mailbot's environment (the systemd unit's EnvironmentFile)",
            ),
        ]
    assert isinstance(mailbox, ImapMailbox)
    try:
        findings += _check_session(app, mailbox)
    finally:
        mailbox.close()
    return findings


def _check_tls(settings: ImapSettings) -> Finding:
    if settings.security == "plain":
        return plain_warning("IMAP", settings.host, SECTION)
    where = f"{settings.host}:{settings.port}"
    try:
        context = client_context(settings, f"IMAP server {where}")
    except ConfigError as exc:
        return fail("IMAP TLS", str(exc), f"set ca_file in {SECTION} to a PEM file")
    connection: imaplib.IMAP4
    try:
        if settings.security == "ssl":
            connection = imaplib.IMAP4_SSL(
                settings.host, settings.port, ssl_context=context, timeout=settings.timeout
            )
        else:
            connection = imaplib.IMAP4(settings.host, settings.port, timeout=settings.timeout)
            if "STARTTLS" not in connection.capabilities:
                connection.shutdown()
                return fail(
                    "IMAP TLS",
                    f"{where} does not offer STARTTLS",
                    f'set security = "ssl" and port = 993 in {SECTION}',
                )
            connection.starttls(context)
    except (OSError, imaplib.IMAP4.error) as exc:
        return tls_failure("IMAP", where, exc, SECTION)
    cert = connection.sock.getpeercert()  # type: ignore[attr-defined]
    with suppress(OSError, imaplib.IMAP4.error):
        connection.logout()
    return tls_success("IMAP", cert, settings)


def _check_session(app: App, mailbox: ImapMailbox) -> list[Finding]:
    settings = mailbox.settings
    watched = mailbox.folders()
    outcomes = _outcome_folders(app)
    try:
        probe = mailbox.probe([*watched, *outcomes])
    except LoginRefused as exc:
        return [
            fail(
                "IMAP login",
                f"the server refused the login of {settings.username!r}: {exc}",
                credentials_fix(settings, SECTION),
            )
        ]
    except SourceError as exc:
        return [fail("IMAP login", str(exc), "see the server's log; try again with -v")]
    findings = [ok("IMAP login", f"logged in as {settings.username}"), _capabilities(probe)]
    missing = [folder for folder in watched if not probe.folders[folder]]
    if missing:
        findings.append(
            fail(
                "IMAP folders",
                f"the watched folder(s) {', '.join(missing)} do not exist on the server",
                f"correct folders in {SECTION}, or create them in the mailbox",
            )
        )
    else:
        findings.append(ok("IMAP folders", f"watching {', '.join(watched)}"))
    if outcomes:
        there = {folder: probe.folders[folder] for folder in outcomes}
        findings.append(ok("IMAP outcome folders", outcome_text(there)))
    else:
        findings.append(skip("IMAP outcome folders", 'not used: [source] after = "flag"'))
    findings.append(_clock(mailbox, probe, watched, outcomes))
    return findings


def _outcome_folders(app: App) -> list[str]:
    if app.settings.source.after != "move":
        return []
    folders = app.settings.source.folders
    return [folders.accepted, folders.needs_correction, folders.late, folders.ignored]


def _capabilities(probe: ImapProbe) -> Finding:
    wanted = ["IDLE", "MOVE", "UIDPLUS", "ID"]
    offered = [name for name in wanted if name in probe.capabilities]
    lacking = [name for name in _WITHOUT if name not in probe.capabilities]
    if lacking:
        return warn(
            "IMAP capabilities",
            f"offered: {', '.join(offered) or 'none of ' + ', '.join(wanted)}; "
            + "; ".join(f"no {name}: {_WITHOUT[name]}" for name in lacking),
            "nothing to do in mailbot; a server with these works better",
        )
    return ok("IMAP capabilities", f"offered: {', '.join(offered)}")


def _clock(
    mailbox: ImapMailbox, probe: ImapProbe, watched: list[str], outcomes: list[str]
) -> Finding:
    # Never a watched folder: a probe there could be fetched as an applicant's mail.
    usable = [f for f in outcomes if probe.folders[f] and f not in watched]
    if not usable or "UIDPLUS" not in probe.capabilities:
        return skip(
            "IMAP clock",
            "not read: it takes an outcome folder that exists and UIDPLUS "
            "(a probe is appended there and removed at once)",
        )
    before = datetime.now(UTC)
    try:
        theirs = mailbox.server_time(usable[-1])
    except SourceError as exc:
        return warn("IMAP clock", f"not read: {exc}")
    return clock_finding("IMAP", theirs, before, datetime.now(UTC))
