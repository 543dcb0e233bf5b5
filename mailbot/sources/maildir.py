"""The Maildir source: mail as files in a local Maildir++ tree, no server needed."""

from __future__ import annotations

import itertools
import os
import secrets
import socket
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import suppress
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from mailbot.sources.base import Cursor, Fetched, Filing, MoveTo, SourceError

BATCH_SIZE = 50
BATCH_BYTES = 16 * 1024 * 1024  # as the IMAP source: a backlog of scans is read in parts

_deliveries = itertools.count(1)


def folder_path(root: Path, folder: str) -> Path:
    """The directory of a folder: INBOX is the root, "a/b" is the Maildir++ subfolder ".a.b"."""
    if folder.upper() == "INBOX":
        return root
    parts = folder.split("/")
    # Maildir++ spells the hierarchy with dots, so a dot inside a level, an empty
    # level or a path separator would name another folder or leave the tree.
    if any(not part or "." in part or os.sep in part for part in parts):
        raise SourceError(f"maildir:{root}: {folder!r} cannot be a Maildir++ folder name")
    return root / ("." + ".".join(parts))


def message_key(filename: str) -> str:
    """The part of a Maildir file name that stays the same while its flags change."""
    # As in the standard library's mailbox module: the info follows the first colon.
    return filename.split(":", 1)[0]


def _flags(filename: str) -> str:
    _key, sep, info = filename.partition(":2,")
    return info if sep else ""


def _make_dirs(folder_dir: Path, subfolder: bool) -> None:
    for sub in ("tmp", "new", "cur"):
        (folder_dir / sub).mkdir(parents=True, exist_ok=True)
    if subfolder:
        # Maildir++ marks subfolders so that delivery agents and Dovecot know them.
        (folder_dir / "maildirfolder").touch(exist_ok=True)


def _new_key() -> str:
    now = time.time()
    seconds = int(now)
    micros = int((now - seconds) * 1_000_000)
    # The Maildir spec forbids "/" and ":" in names, and asks to escape them in the host.
    host = socket.gethostname().replace("/", r"\057").replace(":", r"\072")
    return f"{seconds}.M{micros}P{os.getpid()}Q{next(_deliveries)}R{secrets.token_hex(4)}.{host}"


def deliver(path: Path, raw: bytes, received_at: datetime, folder: str = "INBOX") -> str:
    """Write a mail into a folder's new/ as a delivery agent does; return its key.

    The file's mtime is set to received_at, which the source reads as the time
    the mail arrived.
    """
    if received_at.tzinfo is None or received_at.utcoffset() is None:
        raise ValueError("received_at must be timezone-aware")
    root = Path(path)
    folder_dir = folder_path(root, folder)
    _make_dirs(root, subfolder=False)
    _make_dirs(folder_dir, subfolder=folder_dir != root)
    key = _new_key()
    tmp = folder_dir / "tmp" / key
    with tmp.open("xb") as out:
        out.write(raw)
        out.flush()
        os.fsync(out.fileno())
    stamp = received_at.timestamp()
    # Before the rename, so no reader ever sees the file with the wrong time.
    os.utime(tmp, (stamp, stamp))
    os.rename(tmp, folder_dir / "new" / key)
    return key


@dataclass(frozen=True)
class _Entry:
    key: str
    path: Path
    mtime: float
    size: int = 0


def _runs(entries: list[_Entry]) -> Iterator[list[_Entry]]:
    """Batches of at most BATCH_SIZE mails and BATCH_BYTES (a bigger mail alone)."""
    run: list[_Entry] = []
    held = 0
    for entry in entries:
        if run and (len(run) == BATCH_SIZE or held + entry.size > BATCH_BYTES):
            yield run
            run, held = [], 0
        run.append(entry)
        held += entry.size
    if run:
        yield run


class MaildirMailbox:
    """A Maildir on local disk; a mail's location is its Maildir key."""

    def __init__(self, path: Path, *, flag: str = "$MailbotDone") -> None:
        self.path = Path(path)
        # Maildir has no portable keywords: flag mode marks the mail seen and leaves it.
        self.flag = flag
        self.name = f"maildir:{self.path}"

    def folders(self) -> list[str]:
        return ["INBOX"]

    def uidvalidity(self, folder: str) -> int | None:
        return None

    def fetch_new(
        self, folder: str, cursor: Cursor, before: Callable[[int], None] | None = None
    ) -> Iterator[list[Fetched]]:
        # Without UIDs every mail is "new"; the caller skips the locations it has.
        entries = sorted(self._entries(folder).values(), key=lambda e: (e.mtime, e.key))
        if entries and before is not None:
            before(len(entries))
        for run in _runs(entries):
            batch: list[Fetched] = []
            for entry in run:
                raw = self._read(entry)
                if raw is None:
                    continue
                batch.append(
                    Fetched(
                        folder=folder,
                        location=entry.key,
                        raw=raw,
                        received_at=datetime.fromtimestamp(entry.mtime, UTC),
                    )
                )
            if batch:
                yield batch

    def settle(self, folder: str, items: list[tuple[str, Filing]]) -> None:
        if not items:
            return
        source_dir = folder_path(self.path, folder)
        files = self._files(source_dir)
        for key, filing in items:
            path = files.get(key)
            if path is None:
                continue  # gone already: moved by an earlier settle or by a person
            target = filing.folder if isinstance(filing, MoveTo) else ""
            target_dir = folder_path(self.path, target) if target else source_dir
            if target_dir != source_dir:
                self._ensure(target_dir)
            flags = "".join(sorted(set(_flags(path.name)) | {"S"}))
            destination = target_dir / "cur" / f"{key}:2,{flags}"
            try:
                os.rename(path, destination)
            except FileNotFoundError:
                continue  # moved by someone else since the listing
            except OSError as exc:
                raise SourceError(f"{self.name}: cannot file {key} in {target!r}: {exc}") from exc

    def wait(self, stop: threading.Event, timeout: float) -> bool:
        stop.wait(max(0.0, timeout))
        return False

    def close(self) -> None:
        pass

    def _ensure(self, folder_dir: Path) -> None:
        try:
            _make_dirs(folder_dir, subfolder=folder_dir != self.path)
        except OSError as exc:
            raise SourceError(f"{self.name}: cannot create {folder_dir}: {exc}") from exc

    def _files(self, folder_dir: Path) -> dict[str, Path]:
        """Each mail's current file by key; names only, as settle needs no times."""
        files: dict[str, Path] = {}
        for sub in ("new", "cur"):
            try:
                names = os.listdir(folder_dir / sub)
            except FileNotFoundError:
                continue
            except OSError as exc:
                raise SourceError(f"{self.name}: cannot list {folder_dir / sub}: {exc}") from exc
            for name in names:
                if not name.startswith("."):
                    files.setdefault(message_key(name), folder_dir / sub / name)
        return files

    def _entries(self, folder: str) -> dict[str, _Entry]:
        folder_dir = folder_path(self.path, folder)
        found: dict[str, _Entry] = {}
        for sub in ("new", "cur"):
            try:
                with os.scandir(folder_dir / sub) as listing:
                    for item in listing:
                        entry = self._entry(item)
                        if entry is not None:
                            found.setdefault(entry.key, entry)
            except FileNotFoundError:
                continue  # an empty Maildir that nothing was delivered to yet
            except OSError as exc:
                raise SourceError(f"{self.name}: cannot list {folder_dir / sub}: {exc}") from exc
        return found

    @staticmethod
    def _entry(item: os.DirEntry[str]) -> _Entry | None:
        if item.name.startswith("."):
            return None  # not mail: hidden files of editors and tools
        try:
            if not item.is_file():
                return None
            stat = item.stat()
        except FileNotFoundError:
            return None  # moved between the listing and the stat
        return _Entry(message_key(item.name), Path(item.path), stat.st_mtime, stat.st_size)

    def _read(self, entry: _Entry) -> bytes | None:
        """The mail's bytes, followed if its flags changed meanwhile; None if it is gone."""
        candidates = [entry.path]
        try:
            for _attempt in range(2):
                for path in candidates:
                    with suppress(FileNotFoundError):
                        return path.read_bytes()
                # Another reader may have moved it from new/ to cur/ or changed its flags.
                folder_dir = entry.path.parent.parent
                candidates = [
                    folder_dir / sub / name
                    for sub in ("cur", "new")
                    if (folder_dir / sub).is_dir()
                    for name in os.listdir(folder_dir / sub)
                    if message_key(name) == entry.key
                ]
        except OSError as exc:
            raise SourceError(f"{self.name}: cannot read {entry.path}: {exc}") from exc
        return None
