"""The benchmark's side of the IMAP server: fill it, read it at full speed, put mail back.

Everything goes through imapclient on one connection, as a mail server's
delivery agent or a fast client would, so filling a mailbox costs what the
server costs and no login per message.
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from mailbot.sources.imap import quiet_imaplib
from tests.servers.dovecot import Dovecot

FETCH_ITEMS = [b"BODY.PEEK[]", b"INTERNALDATE"]  # what mailbot fetches, nothing more


@dataclass(frozen=True)
class Ceiling:
    mails: int
    bytes: int
    seconds: float
    batch_size: int
    tracing: bool = False

    @property
    def mails_per_s(self) -> float:
        return self.mails / self.seconds

    @property
    def mb_per_s(self) -> float:
        return self.bytes / 2**20 / self.seconds

    def as_json(self) -> dict[str, Any]:
        return {
            "mails": self.mails,
            "mb": round(self.bytes / 2**20, 1),
            "seconds": round(self.seconds, 3),
            "batch_size": self.batch_size,
            "imaplib_tracing": self.tracing,
            "mails_per_s": round(self.mails_per_s, 2),
            "mb_per_s": round(self.mb_per_s, 1),
        }


class Filler:
    """One logged-in connection that APPENDs mail with the receipt time given."""

    def __init__(self, dovecot: Dovecot) -> None:
        self.client = dovecot.client(timeout=120)

    def append(
        self, raw: bytes, received_at: datetime, folder: str = "INBOX", flags: Iterable[str] = ()
    ) -> None:
        self.client.append(folder, raw, flags=tuple(flags), msg_time=received_at)

    def multiappend(
        self, mails: list[tuple[bytes, datetime]], flags: Iterable[str] = (), folder: str = "INBOX"
    ) -> None:
        """Many small mails in one command (RFC 3502), for the idle mailboxes."""
        self.client.multiappend(
            folder, [{"msg": raw, "flags": tuple(flags), "date": when} for raw, when in mails]
        )

    def close(self) -> None:
        self.client.logout()

    def __enter__(self) -> Filler:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()


def fetch_all(
    dovecot: Dovecot, batch_size: int, folder: str = "INBOX", *, tracing: bool = False
) -> Ceiling:
    """The ceiling: log in, find every mail, fetch each one's raw bytes in batches, nothing else.

    imapclient switches imaplib's tracing on, which formats every response
    even when nobody logs it; ``tracing=False`` switches it off as mailbot does.
    """
    started = time.perf_counter()
    count = size = 0
    with dovecot.client(timeout=120) as client:
        if not tracing:
            quiet_imaplib(client)
        client.select_folder(folder, readonly=True)
        uids = sorted(client.search("ALL"))
        for start in range(0, len(uids), batch_size):
            response = client.fetch(uids[start : start + batch_size], FETCH_ITEMS)
            for data in response.values():
                size += len(data[b"BODY[]"])
                count += 1
            del response
    return Ceiling(count, size, time.perf_counter() - started, batch_size, tracing)


def folders(dovecot: Dovecot) -> dict[str, int]:
    """Every folder and how many mails it holds."""
    with dovecot.client() as client:
        names = [name for _flags, _sep, name in client.list_folders()]
        found = {}
        for name in names:
            status = client.folder_status(name, [b"MESSAGES"])
            found[name] = int(status[b"MESSAGES"])
        return found


def move_back(dovecot: Dovecot, into: str = "INBOX") -> int:
    """Put every filed mail back into INBOX and drop the folders mailbot made; return how many.

    MOVE keeps each mail's INTERNALDATE, so the next run judges the same mail
    received at the same time.
    """
    moved = 0
    with dovecot.client(timeout=120) as client:
        listed = [(flags, name) for flags, _sep, name in client.list_folders()]
        for flags, name in sorted(listed, key=lambda item: len(item[1]), reverse=True):
            if name.upper() == into.upper():
                continue
            if b"\\Noselect" not in flags:
                client.select_folder(name)
                uids = client.search("ALL")
                if uids:
                    client.move(uids, into)
                    moved += len(uids)
                client.unselect_folder()
            # Dovecot removes a \Noselect parent together with its last child.
            if client.folder_exists(name):
                client.delete_folder(name)
    return moved


def uid_layout(dovecot: Dovecot, folder: str = "INBOX") -> tuple[int, list[int]]:
    """The folder's UIDVALIDITY and its UIDs, oldest first."""
    with dovecot.client() as client:
        response = client.select_folder(folder, readonly=True)
        return int(response[b"UIDVALIDITY"]), sorted(client.search("ALL"))
