"""`mailbot doctor`: every part a call's intake needs, checked before going live.

Each check prints one line: ok, a warning (works, but unwise), or FAIL with
what is wrong and how to fix it. Nothing is changed on the way: no database
or folder is created, no mail touched; the only writes are a temporary file
in the store (removed at once), an IMAP clock probe appended to an existing
outcome folder and expunged by UID, and a test message when asked for one.

    findings     one Finding per check, and how they are printed
    local        config, database, store, Maildir, outbox folder, digest
    connections  TCP, TLS certificates and clocks, for both servers
    imap, smtp   the two servers, logged in through the daemon's own code
    cli          the `mailbot doctor` command

The rules (and whatever else App.build loads) are checked here, by building
the daemon's own App.
"""

from __future__ import annotations

from pathlib import Path

from mailbot.app import App
from mailbot.calls import RulesError
from mailbot.config import Settings
from mailbot.doctor.findings import Finding, fail, ok, skip
from mailbot.doctor.imap import check_imap
from mailbot.doctor.local import (
    check_config,
    check_database,
    check_digest,
    check_maildir,
    check_outbox_dir,
    check_store,
)
from mailbot.doctor.smtp import check_smtp
from mailbot.errors import MailbotError

__all__ = ["Finding", "diagnose"]


def diagnose(config_path: Path | None, send_test: str | None = None) -> list[Finding]:
    """Run every check that applies to the config; a test message only when asked."""
    settings, finding = check_config(config_path)
    findings = [finding]
    if settings is None or config_path is None:
        return findings
    app, finding = _build(settings)
    findings += [finding, check_database(settings, config_path), *check_store(settings)]
    try:
        findings += _source(settings, app)
        findings += _replies(settings, app, send_test)
    finally:
        if app is not None:
            app.close()
    findings.append(check_digest(settings))
    return findings


def _build(settings: Settings) -> tuple[App | None, Finding]:
    """The daemon's own App, over an in-memory database: a check must create no file."""
    try:
        app = App.build(settings.model_copy(update={"database_url": "sqlite://"}))
    except RulesError as exc:
        return None, fail("rules", str(exc), "set rules in the config to the call's rules file")
    except MailbotError as exc:
        return None, fail("setup", str(exc), "correct the file or setting the message names")
    section = app.call.call
    return app, ok(
        "rules",
        f"{section.id} from {app.call.source}: mailbox {section.mailbox}, "
        f"deadline {section.deadline} ({section.timezone})",
    )


def _source(settings: Settings, app: App | None) -> list[Finding]:
    if settings.source.kind == "maildir":
        return check_maildir(settings)
    if app is None:
        return [skip("IMAP", "not checked: the rules must load first")]
    return check_imap(app)


def _replies(settings: Settings, app: App | None, send_test: str | None) -> list[Finding]:
    if settings.replies.transport != "smtp":
        findings = [check_outbox_dir(settings)]
        if send_test:
            findings.append(skip("SMTP", "no test message: replies go to the outbox folder"))
        return findings
    if app is None:
        return [skip("SMTP", "not checked: the rules must load first")]
    return check_smtp(app, send_test)
