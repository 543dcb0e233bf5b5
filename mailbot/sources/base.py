"""The Mailbox protocol every source implements, and what a fetch yields."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from typing import Protocol

from mailbot.errors import MailbotError


class SourceError(MailbotError):
    """The mailbox cannot be reached or refused an operation (worth a retry)."""


@dataclass(frozen=True)
class Cursor:
    """How far a folder has been processed: its UIDVALIDITY and the highest UID done."""

    uidvalidity: int | None = None
    last_uid: int = 0


@dataclass(frozen=True)
class Fetched:
    """One mail as it sits in the mailbox, with its raw bytes and receipt time.

    Once the mail is in the blob store, release() lets go of the bytes (a
    big mail need not be held while it is judged and recorded): ``raw`` is
    then empty and ``stored_as`` names the blob; ``size`` stays.
    """

    folder: str
    location: str  # unique in the source: "UIDVALIDITY:UID" (IMAP) or the file key (Maildir)
    raw: bytes = field(repr=False)
    received_at: datetime  # aware: IMAP INTERNALDATE, the Maildir file's time
    uid: int | None = None
    uidvalidity: int | None = None
    size: int = field(init=False)  # of the raw mail, released or not
    stored_as: str | None = field(default=None, init=False)  # its sha256 once released

    def __post_init__(self) -> None:
        object.__setattr__(self, "size", len(self.raw))

    def release(self, sha256: str) -> None:
        """The raw mail is in the blob store under ``sha256``: let go of the bytes here."""
        object.__setattr__(self, "stored_as", sha256)
        object.__setattr__(self, "raw", b"")


@dataclass(frozen=True)
class MoveTo:
    """File the mail by moving it to this folder (created if missing)."""

    folder: str


@dataclass(frozen=True)
class Flag:
    """File the mail by flagging it as processed where it is."""


# How one processed mail is filed: the config's `source.after` chooses.
Filing = MoveTo | Flag


class Mailbox(Protocol):
    """A source of mail. It fetches and files mail; it never judges it.

    The caller keeps the cursor (in the database, in the same transaction as
    the mails it covers) and passes it back; a source keeps no state of its
    own beyond its connection.
    """

    name: str  # stored with each mail, e.g. "imap://user@host:993" or "maildir:/srv/mail"

    def folders(self) -> list[str]:
        """The folders to watch."""
        ...

    def uidvalidity(self, folder: str) -> int | None:
        """The folder's UIDVALIDITY now (None where the source has none)."""
        ...

    def fetch_new(
        self, folder: str, cursor: Cursor, before: Callable[[int], None] | None = None
    ) -> Iterator[list[Fetched]]:
        """Mail newer than the cursor, oldest first, in batches; nothing is marked read.

        When the folder's UIDVALIDITY differs from the cursor's, every mail in
        the folder is yielded (the caller recognises what it already has).
        ``before(n)`` is called once there are n mails to fetch, before any is
        read (the intake forks its judging processes then), and not if none.
        """
        ...

    def settle(self, folder: str, items: list[tuple[str, Filing]]) -> None:
        """File processed mail, given as (location, filing) pairs: move each to its
        folder (MoveTo) or only flag it as processed where it is (Flag). A move
        into the folder itself is a flag. A location whose UIDVALIDITY is no
        longer the folder's is skipped: that mail comes back in the
        resynchronisation."""
        ...

    def wait(self, stop: threading.Event, timeout: float) -> bool:
        """Block until new mail may have arrived (IMAP IDLE), ``timeout`` passes or
        ``stop`` is set; True when the server announced news."""
        ...

    def close(self) -> None: ...
