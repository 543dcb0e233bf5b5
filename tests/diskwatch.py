"""Which files a piece of code opens for writing, seen by an audit hook (PEP 578)."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

_WATCHES: list[list[str]] = []  # the lists being filled; one hook serves them all


def _hook(event: str, args: tuple[Any, ...]) -> None:
    if event != "open" or not _WATCHES or not isinstance(args[0], str | bytes | Path):
        return
    mode = args[1] if len(args) > 1 and isinstance(args[1], str) else ""
    flags = args[2] if len(args) > 2 and isinstance(args[2], int) else 0
    if any(c in mode for c in "wax+") or flags & 0o3:  # O_WRONLY or O_RDWR
        for seen in _WATCHES:
            seen.append(str(args[0]))


sys.addaudithook(_hook)  # a hook cannot be removed; with no watch it does nothing


@contextmanager
def writes() -> Iterator[list[str]]:
    """The paths opened for writing inside the ``with`` block, in this process."""
    seen: list[str] = []
    _WATCHES.append(seen)
    try:
        yield seen
    finally:
        _WATCHES.remove(seen)
