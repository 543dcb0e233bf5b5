"""Backup and restore: a consistent copy of the database and the blob store, and its way back.

``mailbot backup DIR`` copies the SQLite database with SQLite's online
backup API (one consistent snapshot, taken while the daemon works), then
every blob of the store not yet in DIR. The order matters: a blob is written
before the transaction that names it commits, so every blob the snapshot
names is on disk by the time the store is copied. Blobs never change once
written (their name is their sha256), so a later backup into the same DIR
copies only the new ones; each copied blob is checked against its name.
``manifest.json`` says when, from which schema revision, and what was
copied, and every blob the copied database names is confirmed present.

A PostgreSQL database is not copied here: pg_dump it first, then run
``mailbot backup`` for the store (the README's "Service, status, backup").

``mailbot restore DIR`` puts both back into the places the config names,
refusing a database with tables in it or a non-empty store unless forced.

Layout of DIR::

    manifest.json
    mailbot.sqlite3          (SQLite only)
    store/ab/cd/abcd…        (the blobs, as in the store)
"""

from __future__ import annotations

import hashlib
import json
import os
import sqlite3
import tempfile
from collections.abc import Iterator
from contextlib import closing
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy import create_engine, inspect, make_url

from mailbot import __version__
from mailbot.errors import MailbotError
from mailbot.store.blobs import DIR_MODE, FILE_MODE

DATABASE_FILE = "mailbot.sqlite3"
MANIFEST = "manifest.json"
STORE = "store"
_CHUNK = 1 << 20


class BackupError(MailbotError):
    """A backup or a restore cannot go on: it names the place and what is wrong there."""


@dataclass(frozen=True)
class BlobCopy:
    """What one pass over a store copied."""

    total: int = 0
    copied: int = 0
    copied_bytes: int = 0


@dataclass(frozen=True)
class BackupReport:
    directory: Path
    database: str  # "copied" or why not
    revision: str | None
    blobs: BlobCopy
    referenced: int  # blobs the copied database names (all present)

    def summary(self) -> str:
        return (
            f"backup in {self.directory}: database {self.database}"
            f"{f' at revision {self.revision}' if self.revision else ''}; "
            f"{_plural(self.blobs.total, 'blob')} in the store, "
            f"{self.blobs.copied} new ({self.blobs.copied_bytes:,} bytes)"
        )


def _plural(count: int, noun: str) -> str:
    return f"{count} {noun}" if count == 1 else f"{count} {noun}s"


def sqlite_path(url: str) -> Path | None:
    """The file of a SQLite URL; None for any other database (or SQLite in memory)."""
    parsed = make_url(url)
    if parsed.get_backend_name() != "sqlite" or not parsed.database:
        return None
    if parsed.database == ":memory:":
        return None
    return Path(parsed.database)


def backup(database_url: str, store: Path, directory: Path) -> BackupReport:
    """Copy the database (SQLite), then the store's new blobs, into directory."""
    _make_private_dir(directory)
    source = sqlite_path(database_url)
    referenced: set[str] = set()
    revision: str | None = None
    if source is not None:
        if not source.is_file():
            raise BackupError(f"no database at {source}: nothing to back up")
        target = directory / DATABASE_FILE
        copy_sqlite(source, target)
        revision, referenced = _read_copy(target)
        database = "copied"
    else:
        database = "not copied (PostgreSQL: back it up with pg_dump before this command)"
    blobs = copy_blobs(store, directory / STORE)
    missing = sorted(sha for sha in referenced if not _blob_path(directory / STORE, sha).is_file())
    if missing:
        raise BackupError(
            f"the store {store} lacks {_plural(len(missing), 'blob')} the database names "
            f"(first {missing[0]}): the backup in {directory} is incomplete"
        )
    _write_manifest(directory, database, revision, blobs, len(referenced))
    return BackupReport(directory, database, revision, blobs, len(referenced))


def copy_sqlite(source: Path, target: Path) -> None:
    """One consistent copy of a live SQLite database (its WAL included), written 0600."""
    handle, temporary = tempfile.mkstemp(dir=target.parent, prefix=".db-", suffix=".tmp")
    os.close(handle)
    try:
        # The URI's mode=ro keeps this from creating a database where none is.
        with _connect(f"file:{source}?mode=ro", uri=True) as src, _connect(temporary) as dst:
            src.backup(dst)  # all pages in one step: one snapshot
        os.chmod(temporary, FILE_MODE)
        for stale in ("-wal", "-shm"):  # a replaced database's log must not be replayed on it
            Path(f"{target}{stale}").unlink(missing_ok=True)
        os.replace(temporary, target)
    except sqlite3.Error as exc:
        Path(temporary).unlink(missing_ok=True)
        raise BackupError(f"cannot copy the database {source} to {target}: {exc}") from None


def _connect(target: str, *, uri: bool = False) -> closing[sqlite3.Connection]:
    """A sqlite3 connection closed on leaving the block (sqlite3's own block only commits)."""
    return closing(sqlite3.connect(target, uri=uri, timeout=30))


def _read_copy(database: Path) -> tuple[str | None, set[str]]:
    """The copy's schema revision and every blob it names (raw mails and attachments)."""
    with _connect(str(database)) as connection:
        try:
            row = connection.execute("SELECT version_num FROM alembic_version").fetchone()
            names = {sha for (sha,) in connection.execute("SELECT raw_sha256 FROM mails")}
            names |= {sha for (sha,) in connection.execute("SELECT sha256 FROM attachments")}
        except sqlite3.Error as exc:
            raise BackupError(f"{database} is not a mailbot database ({exc})") from None
    return (row[0] if row else None), names


def _blob_path(root: Path, sha256: str) -> Path:
    return root / sha256[:2] / sha256[2:4] / sha256


def _blobs(root: Path) -> Iterator[Path]:
    """Every blob under a store's root (its temporary files left out)."""
    if not root.is_dir():
        return
    for path in sorted(root.glob("??/??/*")):
        if path.is_file() and len(path.name) == 64 and not path.name.startswith("."):
            yield path


def copy_blobs(source: Path, target: Path) -> BlobCopy:
    """Copy the blobs target lacks, each checked against its sha256 on the way.

    A store not made yet (no mail recorded) is an empty one: what the database
    names is checked against the copy afterwards.
    """
    _make_private_dir(target)
    total = copied = size = 0
    for blob in _blobs(source):
        total += 1
        destination = target / blob.relative_to(source)
        if destination.is_file() and destination.stat().st_size == blob.stat().st_size:
            continue
        size += _copy_checked(blob, destination)
        copied += 1
    return BlobCopy(total, copied, size)


def _copy_checked(blob: Path, destination: Path) -> int:
    for folder in (destination.parent.parent, destination.parent):
        _make_private_dir(folder)
    digest = hashlib.sha256()
    handle, temporary = tempfile.mkstemp(dir=destination.parent, prefix=".incoming-")
    try:
        with blob.open("rb") as src, os.fdopen(handle, "wb") as out:
            while chunk := src.read(_CHUNK):
                digest.update(chunk)
                out.write(chunk)
            out.flush()
            os.fsync(out.fileno())
        if digest.hexdigest() != blob.name:
            raise BackupError(f"{blob} does not hash to its name: the store is damaged there")
        os.chmod(temporary, FILE_MODE)
        os.replace(temporary, destination)
    except OSError as exc:
        raise BackupError(f"cannot copy {blob} to {destination}: {exc}") from None
    finally:
        Path(temporary).unlink(missing_ok=True)
    return blob.stat().st_size


def _make_private_dir(folder: Path) -> None:
    try:
        if not folder.is_dir():
            folder.mkdir(mode=DIR_MODE, parents=True, exist_ok=True)
            os.chmod(folder, DIR_MODE)
    except OSError as exc:
        raise BackupError(f"cannot create {folder}: {exc.strerror or exc}") from None


def _write_manifest(
    directory: Path, database: str, revision: str | None, blobs: BlobCopy, referenced: int
) -> None:
    manifest = {
        "format": 1,
        "created_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "mailbot": __version__,
        "database": DATABASE_FILE if database == "copied" else None,
        "revision": revision,
        "blobs": blobs.total,
        "blobs_named_by_database": referenced,
    }
    path = directory / MANIFEST
    path.write_text(json.dumps(manifest, indent=2) + "\n", encoding="utf-8")
    os.chmod(path, FILE_MODE)


# -- restore -------------------------------------------------------------------------


@dataclass(frozen=True)
class RestoreReport:
    database: str
    revision: str | None
    blobs: BlobCopy

    def summary(self) -> str:
        return (
            f"restored: database {self.database}"
            f"{f' at revision {self.revision}' if self.revision else ''}; "
            f"{_plural(self.blobs.total, 'blob')} in the backup, {self.blobs.copied} copied "
            "into the store"
        )


def read_manifest(directory: Path) -> dict[str, object]:
    path = directory / MANIFEST
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise BackupError(f"{directory} holds no mailbot backup (no {MANIFEST})") from None
    except (OSError, ValueError) as exc:
        raise BackupError(f"cannot read {path}: {exc}") from None
    if not isinstance(data, dict) or data.get("format") != 1:
        raise BackupError(f"{path} is not a mailbot backup manifest this version reads")
    return data


def restore(directory: Path, database_url: str, store: Path, *, force: bool) -> RestoreReport:
    """Put a backup's database and blobs into the configured places."""
    manifest = read_manifest(directory)
    target = sqlite_path(database_url)
    if manifest.get("database") and target is None:
        raise BackupError(
            "the backup holds a SQLite database but the config names another database: "
            "set database_url to a SQLite file, or load the data into PostgreSQL yourself"
        )
    if not force:
        _refuse_to_overwrite(database_url, target, store)
    revision = manifest.get("revision")
    if manifest.get("database") and target is not None:
        _make_private_dir(target.parent)
        copy_sqlite(directory / DATABASE_FILE, target)
        database = f"written to {target}"
    else:
        database = "not in the backup (PostgreSQL: restore it with pg_restore)"
    blobs = copy_blobs(directory / STORE, store)
    return RestoreReport(database, str(revision) if revision else None, blobs)


def _refuse_to_overwrite(database_url: str, target: Path | None, store: Path) -> None:
    if target is not None and target.is_file() and target.stat().st_size > 0:
        engine = create_engine(database_url)
        try:
            tables = inspect(engine).get_table_names()
        finally:
            engine.dispose()
        if tables:
            raise BackupError(
                f"the database {target} is not empty: restore refuses to overwrite it "
                "(--force overwrites it)"
            )
    if store.is_dir() and any(_blobs(store)):
        raise BackupError(
            f"the store {store} is not empty: restore refuses to mix backups into it "
            "(--force adds the backup's blobs to it)"
        )
