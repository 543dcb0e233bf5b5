"""Checks at start that what the settings name is there: templates, Maildir, a writable store.

The rules file is checked as the App is built. Each failure is one line
naming the setting, so `mailbot run` stops at once instead of polling an
empty folder or failing at the first reply.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

from mailbot.config import ConfigError, Settings
from mailbot.replies.reminders import REMINDER
from mailbot.replies.render import Renderer

# The replies the daemon writes by itself; each needs a template in some language.
DAEMON_REPLIES = ("accepted", "needs_correction", "late", "digest")


def check_templates(settings: Settings) -> None:
    """The templates folder exists and holds every reply the daemon writes."""
    folder = settings.templates_path()
    if not folder.is_dir():
        raise ConfigError(f"templates_dir = {settings.templates_dir!r}: no such folder {folder}")
    renderer = Renderer(folder)
    wanted = DAEMON_REPLIES + ((REMINDER,) if settings.reminders.hours_before else ())
    for name in wanted:
        if not renderer.languages_for(name):
            unless = " or set [reminders] hours_before = []" if name == REMINDER else ""
            raise ConfigError(
                f"templates_dir = {settings.templates_dir!r}: {folder} has no template "
                f"for the reply {name!r} (reply/{name}.zh.txt.j2){unless}"
            )


def check_maildir(settings: Settings) -> None:
    """A Maildir source names an existing Maildir (a folder with new/ and cur/)."""
    if settings.source.kind != "maildir":
        return
    path = settings.path(settings.source.maildir.path)
    if not (path / "new").is_dir() or not (path / "cur").is_dir():
        what = "no such folder" if not path.exists() else "not a Maildir"
        raise ConfigError(
            f"[source.maildir] path = {path}: {what} (a Maildir holds new/, cur/ and tmp/)"
        )


def check_store(settings: Settings) -> None:
    """The store's folder exists or can be made, and mailbot can write files in it."""
    root = settings.path(settings.store_dir)
    try:
        root.mkdir(mode=0o700, parents=True, exist_ok=True)
        handle, probe = tempfile.mkstemp(dir=root, prefix=".probe-")
        os.close(handle)
        Path(probe).unlink()
    except OSError as exc:
        raise ConfigError(
            f"store_dir = {root}: cannot write there: {exc.strerror or exc}"
        ) from None


def check_start(settings: Settings) -> None:
    """Everything `mailbot run` needs before it polls."""
    check_templates(settings)
    check_maildir(settings)
    check_store(settings)
