"""A content-addressed store on disk: raw mail and attachments under their sha256."""

from __future__ import annotations

import contextlib
import hashlib
import os
import tempfile
from collections.abc import Iterable, Iterator
from pathlib import Path

from mailbot.errors import MailbotError

FILE_MODE = 0o600
DIR_MODE = 0o700


class StoreError(MailbotError):
    """A blob cannot be written: the disk is full, read-only, or not ours."""


class BlobStore:
    """Files named by their sha256, never by a name a sender chose.

    A blob is written to a temporary file, flushed to disk and renamed into
    place, and the folder that names it is flushed too, so a blob either is
    whole or is not there, and once put() returns it stays there through a
    crash. A mail's blobs are written together (batch()): every file first,
    then each file flushed once, renamed, and each folder flushed once. A
    writer that commits the rows naming many mails' blobs at once may leave
    the folders to one sync_folders() call before that commit (the intake's
    batch does): flushing a folder writes the file system's journal, and one
    flush of it carries every rename made before.
    Mail holds applicants' addresses and proposals: every file is readable
    by the daemon's user alone (0600), in folders only that user can enter
    (0700).
    """

    def __init__(self, root: Path) -> None:
        self.root = root

    def path(self, sha256: str) -> Path:
        if len(sha256) != 64 or not all(c in "0123456789abcdef" for c in sha256):
            raise ValueError(f"not a sha256: {sha256!r}")
        return self.root / sha256[:2] / sha256[2:4] / sha256

    def put(
        self, data: bytes, sha256: str | None = None, *, sync: bool = True, folders: bool = True
    ) -> str:
        """Store data (its hash may be given when already known); return its sha256.

        Raises StoreError, naming the store, when the disk refuses the write.
        """
        with self.batch(sync=sync, folders=folders) as batch:
            return batch.put(data, sha256)

    @contextlib.contextmanager
    def batch(self, *, sync: bool = True, folders: bool = True) -> Iterator[BlobBatch]:
        """Blobs put in the ``with`` block are in place and on disk when it ends.

        With ``folders=False`` their names are not yet: sync_folders() makes
        them durable. If the block raises, none of the blobs it put is left behind.
        """
        batch = BlobBatch(self, sync, folders)
        try:
            yield batch
        except BaseException:
            batch.abort()
            raise
        batch.commit()

    def sync_folders(self, sha256s: Iterable[str]) -> None:
        """Flush the folders that name these blobs (and the folders above), each once.

        After it, blobs written with ``folders=False`` stay where they are
        through a crash. Raises StoreError when the disk refuses.
        """
        folders: dict[Path, None] = {}
        for sha256 in sha256s:
            leaf = self.path(sha256).parent
            folders.update(dict.fromkeys((leaf, leaf.parent, self.root)))
        try:
            for folder in folders:
                _sync_folder(folder)
        except OSError as exc:
            raise StoreError(f"cannot write to the store {self.root}: {exc}") from exc

    def get(self, sha256: str) -> bytes:
        return self.path(sha256).read_bytes()

    def exists(self, sha256: str) -> bool:
        return self.path(sha256).exists()


class BlobBatch:
    """Blobs written now and made durable together by commit() (BlobStore.batch)."""

    def __init__(self, store: BlobStore, sync: bool, folders: bool = True) -> None:
        self.store = store
        self.sync = sync
        self.sync_folders = sync and folders
        self._pending: dict[Path, tuple[int, str]] = {}  # target: (open handle, temporary file)
        self._folders: dict[Path, None] = {}  # folders whose entries change, in order

    def put(self, data: bytes, sha256: str | None = None) -> str:
        """Write data to a temporary file beside its place; return its sha256."""
        digest = sha256 or hashlib.sha256(data).hexdigest()
        target = self.store.path(digest)
        if target in self._pending or target.exists():
            return digest
        try:
            self._write(data, target)
        except OSError as exc:
            raise StoreError(f"cannot write to the store {self.store.root}: {exc}") from exc
        return digest

    def _write(self, data: bytes, target: Path) -> None:
        root = self.store.root
        # mkdir(parents=True) would give the parents the umask's mode, not ours.
        for folder in (root, target.parent.parent, target.parent):
            if not folder.is_dir():
                folder.mkdir(mode=DIR_MODE, parents=folder == root, exist_ok=True)
                os.chmod(folder, DIR_MODE)
                self._folders[folder.parent] = None  # it names a new folder
        self._folders[target.parent] = None
        # mkstemp creates the file 0600 whatever the umask.
        handle, temporary = tempfile.mkstemp(dir=target.parent, prefix=".incoming-")
        self._pending[target] = (handle, temporary)
        with os.fdopen(handle, "wb", closefd=False) as out:
            out.write(data)

    def commit(self) -> None:
        """Flush every file, rename each into place, flush each folder once."""
        try:
            if self.sync:
                for handle, _temporary in self._pending.values():
                    os.fsync(handle)
            while self._pending:
                target, (handle, temporary) = next(iter(self._pending.items()))
                os.chmod(temporary, FILE_MODE)
                os.replace(temporary, target)
                del self._pending[target]
                os.close(handle)
            if self.sync_folders:
                for folder in self._folders:
                    _sync_folder(folder)
        except OSError as exc:
            raise StoreError(f"cannot write to the store {self.store.root}: {exc}") from exc
        finally:
            self.abort()

    def abort(self) -> None:
        """Remove the files not yet in place."""
        for handle, temporary in self._pending.values():
            with contextlib.suppress(OSError):
                os.close(handle)
            Path(temporary).unlink(missing_ok=True)
        self._pending.clear()


def _sync_folder(folder: Path) -> None:
    handle = os.open(folder, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(handle)
    finally:
        os.close(handle)
