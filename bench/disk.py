"""The disk's own bound: how fast this disk takes files flushed one by one with fdatasync.

Writes as many files as the corpus has mails, each the corpus's mean mail
size (so the corpus's bytes in all), into the bench's scratch folder, with an
fdatasync after each, as a store that keeps mail durably must; then the
files are removed. The rate sets a bound on mailbot that no code can beat:
the bytes its blob store writes for the corpus (raw mails and decoded files,
measured from the store after the SQLite run) at that rate.
"""

from __future__ import annotations

import os
import shutil
import time
from pathlib import Path
from typing import Any


def fdatasync_rate(folder: Path, files: int, file_bytes: int) -> dict[str, Any]:
    """Write ``files`` files of ``file_bytes`` each under ``folder``, fdatasync each; time it."""
    folder.mkdir(parents=True, exist_ok=True)
    block = os.urandom(min(file_bytes, 1 << 20)) or b"\0"
    began = time.perf_counter()
    for number in range(files):
        with open(folder / f"{number}.bin", "wb") as out:
            left = file_bytes
            while left > 0:
                left -= out.write(block[:left])
            out.flush()
            os.fdatasync(out.fileno())
    seconds = time.perf_counter() - began
    shutil.rmtree(folder, ignore_errors=True)
    total = files * file_bytes
    return {
        "files": files,
        "file_mb": round(file_bytes / 2**20, 2),
        "mb": round(total / 2**20, 1),
        "seconds": round(seconds, 3),
        "mb_per_s": round(total / 2**20 / seconds, 1),
        "files_per_s": round(files / seconds, 1),
    }


def store_size(store: Path) -> tuple[int, int]:
    """Files under a blob store and their bytes."""
    files = size = 0
    for path in store.rglob("*"):
        if path.is_file():
            files += 1
            size += path.stat().st_size
    return files, size


def bound(rate: dict[str, Any], mails: int, store_bytes: int) -> dict[str, Any]:
    """The fastest mails/s the disk allows: the store's bytes for ``mails`` at the measured rate."""
    seconds = store_bytes / 2**20 / rate["mb_per_s"]
    return {
        "store_mb": round(store_bytes / 2**20, 1),
        "flush_s": round(seconds, 3),
        "bound_mails_per_s": round(mails / seconds, 1) if seconds else None,
    }
