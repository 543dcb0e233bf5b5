"""A content-addressed store on disk: raw mail and attachments under their sha256."""

from __future__ import annotations

import hashlib
import os
import tempfile
from pathlib import Path

from mailbot.errors import MailbotError

FILE_MODE = 0o600
DIR_MODE = 0o700


class StoreError(MailbotError):
    """A blob cannot be written: the disk is full, read-only, or not ours."""


class BlobStore:
    """Files named by their sha256, never by a name a sender chose.

    A blob is written to a temporary file, flushed to disk and renamed into
    place, so a blob either is whole or is not there. Mail holds applicants'
    addresses and proposals: every file is readable by the daemon's user
    alone (0600), in folders only that user can enter (0700).
    """

    def __init__(self, root: Path) -> None:
        self.root = root

    def path(self, sha256: str) -> Path:
        if len(sha256) != 64 or not all(c in "0123456789abcdef" for c in sha256):
            raise ValueError(f"not a sha256: {sha256!r}")
        return self.root / sha256[:2] / sha256[2:4] / sha256

    def put(self, data: bytes, sha256: str | None = None, *, sync: bool = True) -> str:
        """Store data (its hash may be given when already known); return its sha256.

        Raises StoreError, naming the store, when the disk refuses the write.
        """
        digest = sha256 or hashlib.sha256(data).hexdigest()
        target = self.path(digest)
        if target.exists():
            return digest
        try:
            self._write(data, target, sync)
        except OSError as exc:
            raise StoreError(f"cannot write to the store {self.root}: {exc}") from exc
        return digest

    def _write(self, data: bytes, target: Path, sync: bool) -> None:
        # mkdir(parents=True) would give the parents the umask's mode, not ours.
        for folder in (self.root, target.parent.parent, target.parent):
            if not folder.is_dir():
                folder.mkdir(mode=DIR_MODE, parents=folder == self.root, exist_ok=True)
                os.chmod(folder, DIR_MODE)
        # mkstemp creates the file 0600 whatever the umask.
        handle, temporary = tempfile.mkstemp(dir=target.parent, prefix=".incoming-")
        try:
            with os.fdopen(handle, "wb") as out:
                out.write(data)
                if sync:
                    out.flush()
                    os.fsync(out.fileno())
            os.chmod(temporary, FILE_MODE)
            os.replace(temporary, target)
        except BaseException:
            Path(temporary).unlink(missing_ok=True)
            raise

    def get(self, sha256: str) -> bytes:
        return self.path(sha256).read_bytes()

    def exists(self, sha256: str) -> bool:
        return self.path(sha256).exists()
