"""`mailbot doctor`'s checks on this machine: config, rules, database, store, Maildir, digest."""

from __future__ import annotations

import os
import pwd
import stat
import tempfile
from pathlib import Path

from sqlalchemy import make_url
from sqlalchemy.exc import SQLAlchemyError

from mailbot.config import ConfigError, Settings, load_settings
from mailbot.doctor.findings import Finding, fail, ok, warn
from mailbot.errors import MailbotError
from mailbot.store.blobs import DIR_MODE, FILE_MODE
from mailbot.store.db import Database, head_revision

# A store walk names at most this many files or folders with the wrong mode.
_SHOWN = 3
# The store makes folders DIR_MODE and files FILE_MODE: none of these bits.
_OTHERS = 0o077 & ~(DIR_MODE | FILE_MODE)


def check_config(path: Path | None) -> tuple[Settings | None, Finding]:
    if path is None:
        return None, fail(
            "config",
            "no config given",
            "use --config PATH or MAILBOT_CONFIG (`mailbot init --config PATH` writes one)",
        )
    try:
        settings = load_settings(path)
    except ConfigError as exc:
        return None, fail("config", str(exc), "correct it; config.example.toml explains every key")
    return settings, ok("config", f"{path} read")


def _sqlite_file(url: str) -> Path | None:
    parsed = make_url(url)
    if not parsed.drivername.startswith("sqlite") or parsed.database in (None, "", ":memory:"):
        return None
    return Path(parsed.database or "")


def check_database(settings: Settings, config_path: Path) -> Finding:
    url = settings.database()
    init = f"run `mailbot --config {config_path} init`"
    sqlite = _sqlite_file(url)
    if sqlite is not None and not sqlite.exists():
        # Opening it would create an empty file: a check must leave nothing behind.
        return fail("database", f"there is no database at {sqlite}", init)
    db = Database(url)
    try:
        head = head_revision()
        current = db.revision()
    except SQLAlchemyError as exc:
        reason = " ".join(str(getattr(exc, "orig", None) or exc).split())
        return fail(
            "database",
            f"cannot reach {db.safe_url}: {reason}",
            "check database_url, that the server runs, and the password in it",
        )
    finally:
        db.dispose()
    if current != head:
        return fail(
            "database",
            f"the schema at {db.safe_url} is at {current or 'nothing'}, "
            f"not at {head}, this version's",
            init,
        )
    if sqlite is not None and sqlite.stat().st_mode & 0o077:
        return warn(
            "database",
            f"{sqlite} is at revision {head} but others than its owner may read it "
            f"(mode {stat.S_IMODE(sqlite.stat().st_mode):04o})",
            f"chmod 600 {sqlite}",
        )
    return ok("database", f"{db.safe_url} reachable, at revision {head} (the current one)")


def _nearest_existing(path: Path) -> Path:
    while not path.exists() and path != path.parent:
        path = path.parent
    return path


def _writable(folder: Path) -> str:
    """ "" when a file can be made in the folder, else why not (a real write: root too)."""
    try:
        handle, name = tempfile.mkstemp(dir=folder, prefix=".mailbot-doctor-")
    except OSError as exc:
        return exc.strerror or str(exc)
    os.close(handle)
    os.unlink(name)
    return ""


def _user(uid: int) -> str:
    try:
        return pwd.getpwuid(uid).pw_name
    except KeyError:
        return f"uid {uid}"


def check_store(settings: Settings) -> list[Finding]:
    root = settings.path(settings.store_dir)
    me = _user(os.geteuid())
    if not root.exists():
        base = _nearest_existing(root)
        why = _writable(base) if base.is_dir() else "not a folder"
        if why:
            return [
                fail(
                    "store",
                    f"{root} does not exist and cannot be made in {base}: {why}",
                    f"create it for the user mailbot runs as: mkdir -m 700 -p {root}",
                )
            ]
        return [ok("store", f"{root} does not exist yet; it is made (mode 0700) at the first mail")]
    if not root.is_dir():
        return [fail("store", f"{root} is not a folder", "set store_dir to a folder")]
    why = _writable(root)
    if why:
        owner_uid = root.stat().st_uid
        owner = _user(owner_uid)
        fix = (
            f"chmod u+rwx {root}"
            if owner_uid == os.geteuid()
            else f"chown -R {me} {root}, or run mailbot as {owner}"
        )
        return [
            fail("store", f"{root} is not writable by {me} (it belongs to {owner}): {why}", fix)
        ]
    findings = [ok("store", f"{root} writable by {me}")]
    owner_uid = root.stat().st_uid
    if owner_uid != os.geteuid():
        findings.append(
            warn(
                "store owner",
                f"{root} belongs to {_user(owner_uid)}, not to {me} who runs this check",
                "run the check as mailbot's own user",
            )
        )
    findings.append(_store_modes(root))
    return findings


def _store_modes(root: Path) -> Finding:
    """Blobs 0600 in folders 0700, as the store makes them: they hold applicants' mail."""
    wrong: list[str] = []
    for folder, dirs, files in os.walk(root):
        dirs.sort()
        for name in [folder, *(os.path.join(folder, f) for f in sorted(files))]:
            try:
                actual = stat.S_IMODE(os.lstat(name).st_mode)
            except FileNotFoundError:
                continue  # a temporary file renamed meanwhile
            if actual & _OTHERS:
                wrong.append(f"{os.path.relpath(name, root)} {actual:04o}")
    if wrong:
        shown = ", ".join(wrong[:_SHOWN]) + (", …" if len(wrong) > _SHOWN else "")
        return warn(
            "store modes",
            f"{len(wrong)} of the store's files or folders are open to others ({shown}); "
            "they hold applicants' mail",
            f"chmod -R u=rwX,go= {root}",
        )
    return ok(
        "store modes",
        f"nothing open to group or others (the store makes folders {DIR_MODE:04o}, "
        f"files {FILE_MODE:04o})",
    )


def check_maildir(settings: Settings) -> list[Finding]:
    source = settings.source
    path = settings.path(source.maildir.path)
    if not path.is_dir():
        return [
            fail(
                "Maildir",
                f"{path} does not exist",
                f"set [source.maildir] path, or create it: mkdir -p {path}/{{cur,new,tmp}}",
            )
        ]
    missing = [sub for sub in ("cur", "new", "tmp") if not (path / sub).is_dir()]
    if missing:
        return [
            fail(
                "Maildir",
                f"{path} is no Maildir: it lacks {', '.join(missing)}/",
                f"point [source.maildir] path at a Maildir, or mkdir {path}/{{cur,new,tmp}}",
            )
        ]
    why = _writable(path / "cur")
    if why:
        return [
            fail(
                "Maildir",
                f"{path}/cur is not writable: {why}",
                "mailbot files each mail it has judged: give its user write access",
            )
        ]
    waiting = sum(1 for entry in os.scandir(path / "new") if not entry.name.startswith("."))
    findings = [
        ok(
            "Maildir",
            f"{path}: {waiting} mails in new/; a mail's receipt time is its "
            "file's modification time (set it with touch -d)",
        )
    ]
    if source.after == "move":
        findings.append(_maildir_outcomes(settings, path))
    return findings


def _maildir_outcomes(settings: Settings, root: Path) -> Finding:
    from mailbot.sources.maildir import folder_path

    folders = settings.source.folders
    names = [folders.accepted, folders.needs_correction, folders.late, folders.ignored]
    try:
        there = {name: folder_path(root, name).is_dir() for name in names}
    except MailbotError as exc:
        return fail("outcome folders", str(exc), "fix [source.folders]")
    return ok("outcome folders", outcome_text(there))


def outcome_text(there: dict[str, bool]) -> str:
    """Which outcome folders exist and which the first mail of their status will create."""
    exist = [name for name, found in there.items() if found]
    made = [name for name, found in there.items() if not found]
    parts = []
    if exist:
        parts.append(f"{', '.join(exist)} {'exists' if len(exist) == 1 else 'exist'}")
    if made:
        parts.append(f"{', '.join(made)} will be created at the first mail filed there")
    return "; ".join(parts)


def check_outbox_dir(settings: Settings) -> Finding:
    path = settings.path(settings.replies.outbox_dir)
    base = path if path.is_dir() else _nearest_existing(path)
    why = _writable(base) if base.is_dir() else "not a folder"
    if why:
        return fail(
            "outbox folder",
            f"replies cannot be written to {path}: {why}",
            "set [replies] outbox_dir to a folder mailbot's user may write",
        )
    return warn(
        "outbox folder",
        f"replies are written as .eml files into {path}: no applicant receives them",
        'set [replies] transport = "smtp" to send them',
    )


def check_digest(settings: Settings) -> Finding:
    if not settings.digest.to:
        return warn(
            "digest",
            "nobody gets the daily digest ([digest] to is empty)",
            "add the secretariat's addresses to [digest] to",
        )
    return ok("digest", f"sent at {settings.digest.at} to {', '.join(settings.digest.to)}")
