"""The peer: mbsync (isync) pulling the bench's mailbox into a fresh Maildir, fsyncing each mail.

What a secretariat would run instead of mailbot just to get the mailbox onto
disk durably. Each round writes its own mbsyncrc into a folder of its own,
with an empty Maildir and no sync state, so every round pulls every mail:

- the account: this Dovecot on 127.0.0.1, its port and user, ``SSLType None``
  (the bench's Dovecot speaks plain IMAP only); the password reaches mbsync
  through ``PassCmd`` printing an environment variable set for mbsync's
  process alone, never in the file or on a command line;
- the Maildir store: a fresh ``Path`` and ``Inbox`` each round;
- the channel: ``Patterns INBOX``, ``Sync Pull``, ``Create Near``,
  ``Expunge None``, ``SyncState *`` (the state in the new Maildir);
  ``FSync yes`` globally (mbsync's default, written out).

A round is ``mbsync -c RC -a`` timed whole, from spawn to exit (start,
login, fetch, write, fsync). Then the round is checked: the Maildir's cur/
and new/ must hold every mail, and their bytes, less the X-TUID header mbsync
adds, must be the corpus's bytes with CRLF turned into LF (as a Maildir keeps
mail). The far side is left as it was: a pull reads mail with BODY.PEEK and
writes nothing there.
"""

from __future__ import annotations

import os
import resource
import shutil
import statistics
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tests.servers.dovecot import Dovecot

# mbsync reads the password from this variable, set in its environment only.
PASSWORD_VARIABLE = "MAILBOT_BENCH_MBSYNC_PASSWORD"
CHANNEL = "bench"
FOLDER = "INBOX"
TUID_HEADER = b"X-TUID: "  # mbsync's own header on each mail it copies
HEADER_READ = 1 << 16  # enough of a mail to hold its header block


class MbsyncMissingError(RuntimeError):
    """No mbsync on this machine: the peer's row is skipped with this reason."""


@dataclass(frozen=True)
class Pulled:
    """What one mbsync round left in its Maildir, and how long it took."""

    seconds: float
    cpu_s: float
    mails: int
    bytes: int  # as the files hold them
    mail_bytes: int  # the same less mbsync's X-TUID header lines

    def as_json(self) -> dict[str, Any]:
        return {
            "seconds": round(self.seconds, 3),
            "cpu_s": round(self.cpu_s, 3),
            "mails": self.mails,
            "bytes": self.bytes,
            "mail_bytes": self.mail_bytes,
        }


def mbsync_binary() -> str:
    binary = shutil.which("mbsync")
    if binary is None:
        raise MbsyncMissingError(
            "mbsync not found; install the Debian package 'isync' (apt-get install -y isync)"
        )
    return binary


def mbsync_version(binary: str) -> str:
    found = subprocess.run([binary, "--version"], capture_output=True, text=True, check=False)
    return found.stdout.strip() or "?"


def mbsyncrc(dovecot: Dovecot, maildir: Path) -> str:
    """The configuration of one round: this Dovecot into the empty Maildir ``maildir``."""
    return "\n".join([
        "FSync yes",
        "",
        "IMAPAccount far",
        f"Host {dovecot.host}",
        f"Port {dovecot.port}",
        f"User {dovecot.user}",
        f'PassCmd "printenv {PASSWORD_VARIABLE}"',
        "SSLType None",
        "",
        "IMAPStore far",
        "Account far",
        "",
        "MaildirStore near",
        f"Path {maildir}/",
        f"Inbox {maildir}/{FOLDER}",
        "",
        f"Channel {CHANNEL}",
        "Far :far:",
        "Near :near:",
        f"Patterns {FOLDER}",
        "Sync Pull",
        "Create Near",
        "Expunge None",
        "SyncState *",
        "",
    ])  # fmt: skip


def pull(dovecot: Dovecot, folder: Path, *, timeout: float = 3600) -> Pulled:
    """One round: mbsync into a fresh Maildir under ``folder``, timed whole, then counted."""
    binary = mbsync_binary()
    maildir = folder / "Maildir"
    shutil.rmtree(folder, ignore_errors=True)
    maildir.mkdir(parents=True)
    config = folder / "mbsyncrc"
    config.write_text(mbsyncrc(dovecot, maildir), encoding="utf-8")
    env = {**os.environ, PASSWORD_VARIABLE: dovecot.password}
    cpu_before = _children_cpu()
    began = time.perf_counter()
    with open(folder / "mbsync.log", "wb") as log:
        done = subprocess.run(
            [binary, "-c", str(config), "-a"],
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            timeout=timeout,
            check=False,
        )
    seconds = time.perf_counter() - began
    cpu = _children_cpu() - cpu_before
    if done.returncode != 0:
        tail = (folder / "mbsync.log").read_text(errors="replace")[-3000:]
        raise RuntimeError(f"mbsync exited {done.returncode}\n{tail}")
    mails, size, mail_bytes = _count(maildir / FOLDER)
    shutil.rmtree(maildir, ignore_errors=True)  # a round's Maildir is as big as the mailbox
    return Pulled(seconds, cpu, mails, size, mail_bytes)


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def _count(mailbox: Path) -> tuple[int, int, int]:
    """Files in cur/ and new/, their bytes, and their bytes less mbsync's X-TUID lines."""
    mails = size = tuid = 0
    for sub in ("cur", "new"):
        for path in (mailbox / sub).iterdir():
            mails += 1
            size += path.stat().st_size
            tuid += _tuid_length(path)
    return mails, size, size - tuid


def _tuid_length(path: Path) -> int:
    """The length of the X-TUID header line in the mail's header block, 0 without one."""
    with open(path, "rb") as mail:
        head = mail.read(HEADER_READ)
    end = head.find(b"\n\n")
    head = b"\n" + (head if end < 0 else head[: end + 1])
    start = head.find(b"\n" + TUID_HEADER)
    if start < 0:
        return 0
    return head.index(b"\n", start + 1) - start


def summary(pulls: list[Pulled], corpus: dict[str, Any], version: str) -> dict[str, Any]:
    """The rounds' median and spread, and whether every round pulled every mail whole."""
    seconds = [found.seconds for found in pulls]
    median = statistics.median(seconds)
    return {
        "version": version,
        "config": "SSLType None, Patterns INBOX, Sync Pull, Create Near, Expunge None, FSync yes",
        "rounds": [found.as_json() for found in pulls],
        "seconds_median": round(median, 3),
        "seconds_spread": round(max(seconds) - min(seconds), 3),
        "mails_per_s": round(corpus["mails"] / median, 2),
        "mb_per_s": round(corpus["bytes"] / 2**20 / median, 1),
        "pulled_every_mail": all(
            found.mails == corpus["mails"] and found.mail_bytes == corpus["bytes_lf"]
            for found in pulls
        ),
    }
