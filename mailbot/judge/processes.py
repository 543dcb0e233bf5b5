"""Judges: long-lived judging processes that parse, hash and judge mail ahead of the intake.

A fetched batch is judged by a few processes at once ([intake]
judge_processes; by default one per CPU but the daemon's own) while the
daemon records and answers the mail judged before it; the results come
back in the batch's order. A judging process also writes the mail and its
files to the blob store, and sends back only the small files' bytes; a big
mail (STORE_FIRST) the daemon writes itself and lets go of before handing
it over, and the process reads it back, so the two never hold it at once. Each
process is forked once, with the document readers the daemon imported for it
(preload: it imports nothing, so no lock of another thread can hold it), and judges mail
after mail under the limits mailbot.judge.bounded sets for one: the memory limit
is set when it starts (judge_memory beyond what it then holds), the time
limit is counted per mail from the moment the mail is handed over, on a
Clock (real time; a test's clock makes an overrun an event, not a matter of
the machine's speed). A process that overruns either limit, or dies, is killed and replaced, and
its mail is read from the header block alone and flagged ``too_complex``
(mailbot.judge.bounded's headers_only). A fault in mailbot's own code comes back
as a JudgeError in the mail's place in the batch, and a disk that refuses
the mail as a StoreError. A process is also replaced after RECYCLE_AFTER
mails.

A judging process keeps nothing of the daemon's open: right after the fork
it closes every file descriptor but its own pipe, so that a database or
IMAP connection, or another judge's pipe, is never held open by it, and it
ends when the daemon's end of its pipe closes (the daemon stopped or was
killed). As in mailbot.judge.bounded, it writes no log and touches no lock the
daemon's threads may hold.
"""

from __future__ import annotations

import collections
import contextlib
import dataclasses
import gc
import hashlib
import importlib
import itertools
import logging
import multiprocessing
import os
import time
import traceback
import warnings
import weakref
from collections.abc import Callable, Generator, Iterable, Iterator
from datetime import datetime
from multiprocessing.connection import Connection
from typing import Any

from mailbot.calls import Call
from mailbot.judge.bounded import (
    JudgeError,
    Overrun,
    bare_message,
    headers_only,
    how_it_ended,
    ignored,
    parse_and_judge,
    parse_within_limits,
    run_bounded,
)
from mailbot.judge.checks import verdict_for
from mailbot.judge.checks.limits import too_complex
from mailbot.judge.memory import limit_memory, release_large_blocks
from mailbot.judge.policy import IntakePolicy, JudgeLimits
from mailbot.judge.verdict import Verdict
from mailbot.mail.message import Message
from mailbot.store.blobs import BlobStore, StoreError
from mailbot.store.content import content_sha256

log = logging.getLogger(__name__)


# A judging process is replaced after judging this many mails: the C libraries under
# python-docx and pypdf keep a little of every document they read (about 0.15 MB a
# proposal, outside Python's own memory), which over a backlog of thousands adds up.
RECYCLE_AFTER = 200

# Files bigger than this stay in the blob store once a judging process stored them:
# the daemon does not need a scan's bytes to record and answer the mail.
KEEP_IN_STORE = 256 * 1024

# A mail this big is put in the blob store before it is judged, and the daemon is told
# at once, so that it lets go of its own copy while the judging process parses it.
STORE_FIRST = 8 * 1024 * 1024


# What a judging process would otherwise import while it judges: the readers of the
# proposal's files, and what they and the mail's text load on first use. The daemon
# imports them before it forks one (preload), so that a judging process imports nothing.
PRELOADED = (
    "lxml.etree",
    "numpy",
    "pypdf",
    "pypdfium2",
    "pypdf.filters",
    "pypdf._codecs._codecs",
    "PIL.Image",
    "PIL.ImageFile",
    "mailbot.documents.ink",
    "mailbot.documents.opc",
    "mailbot.documents.scan",
    "mailbot.documents.seal",
    "_strptime",
    *(f"encodings.{codec}" for codec in ("gbk", "gb18030", "gb2312", "big5", "hz", "utf_16")),
    *(f"encodings.{codec}" for codec in ("utf_32", "iso2022_jp", "shift_jis", "euc_kr")),
    *(f"encodings.{codec}" for codec in ("ascii", "cp437", "raw_unicode_escape", "latin_1")),
    *(f"encodings.{codec}" for codec in ("cp1252", "utf_8_sig", "unicode_escape")),
)


def preload() -> None:
    """Import, in the daemon, everything a judging process would import while judging.

    A fork copies only the thread that forks. A lock another of the daemon's
    threads held at that moment (the sender's, importing a module on its
    first reply) stays held for good in the judging process, and an import
    takes such a lock: a judging process that imported that module waited
    until its mail went over the time limit. What is imported before the
    fork is found in sys.modules after it, without a lock.
    """
    for name in PRELOADED:
        importlib.import_module(name)


class Clock:
    """How a judging process's time limit is kept: in real time, by default.

    A test gives one whose time passes on an event instead (a process that
    stops itself), so that a limit is overrun when the test says so and never
    because the machine is busy.
    """

    def now(self) -> float:
        return time.monotonic()

    def wait(self, conn: Connection, seconds: float, pid: int | None) -> bool:
        """Wait up to ``seconds`` for process ``pid``'s answer on ``conn``; False if none came."""
        return conn.poll(seconds)


@dataclasses.dataclass(frozen=True)
class Judged:
    """One mail judged: what it says, the verdict, and the two hashes it is stored under.

    ``stored``: the raw mail and every attachment are in the blob store
    already, and attachments over KEEP_IN_STORE are there only
    (``Attachment.in_store``).
    """

    message: Message
    verdict: Verdict
    raw_sha256: str
    content_sha256: str
    stored: bool = False


def judge_here(
    raw: bytes,
    call: Call,
    received_at: datetime | None,
    policy: IntakePolicy,
    blobs: BlobStore | None = None,
) -> Judged:
    """Hash, parse and judge one mail in this process (no time or memory limit).

    With ``blobs``, store the mail and its files too (StoreError if the
    disk refuses) and leave the large files' bytes there.
    """
    message, verdict = parse_and_judge(raw, call, received_at, policy)
    judged = Judged(message, verdict, hashlib.sha256(raw).hexdigest(), content_sha256(raw))
    return judged if blobs is None else store(judged, raw, blobs)


def judge_held(
    held: list[bytes],
    raw_sha256: str,
    call: Call,
    received_at: datetime | None,
    policy: IntakePolicy,
    blobs: BlobStore,
) -> Judged:
    """judge_here for a mail stored already (under ``raw_sha256``), held in ``held`` alone:
    let go of once parsed.

    The checks then read the decoded files without the raw mail beside them.
    """
    raw = held.pop()
    content = content_sha256(raw)
    message, verdict = parse_within_limits(raw, call, received_at, policy)
    del raw
    verdict = verdict or verdict_for(message, call, received_at, policy)
    return store(Judged(message, verdict, raw_sha256, content), None, blobs)


def store(judged: Judged, raw: bytes | None, blobs: BlobStore) -> Judged:
    """Write the mail and its files to the blob store; large files then live there only.

    They are written together and flushed together (BlobStore.batch): on
    disk when this returns. The folders that name them are flushed by the
    daemon, once for its whole batch, before it commits the rows
    (mailbot.intake.batch). ``raw`` is None when the mail is in the store already.
    """
    with blobs.batch(folders=False) as batch:
        if raw is not None:
            batch.put(raw, judged.raw_sha256)
        for attachment in judged.message.attachments:
            batch.put(attachment.data, attachment.sha256)
    kept = tuple(
        dataclasses.replace(a, data=b"", stored_size=len(a.data))
        if len(a.data) > KEEP_IN_STORE
        else a
        for a in judged.message.attachments
    )
    message = dataclasses.replace(judged.message, attachments=kept)
    return dataclasses.replace(judged, message=message, stored=True)


def default_processes() -> int:
    """One judging process per CPU but the daemon's own, and at least one."""
    cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return max(1, (cpus or 1) - 1)


class _Worker:
    """One judging process and the daemon's end of its pipe."""

    def __init__(self, judges: Judges) -> None:
        self.clock = judges.clock
        preload()
        context = multiprocessing.get_context("fork")
        self.conn, theirs = context.Pipe(duplex=True)
        args = (theirs, judges.call, judges.policy, judges.limits.memory, judges.blobs)
        self.process = context.Process(target=_serve, args=args, daemon=True, name="mailbot-judge")
        with warnings.catch_warnings():
            # Python 3.12 warns of any fork while threads run; the child is safe (preload).
            warnings.filterwarnings(
                "ignore", r".*fork\(\) may lead to deadlocks", DeprecationWarning
            )
            # The daemon's objects as they are now stay out of the judging process's
            # collections, which would otherwise copy every page that holds one.
            gc.freeze()
            try:
                self.process.start()
            finally:
                gc.unfreeze()
        theirs.close()
        self.started: float | None = None  # when its current mail was handed over
        self.pid = self.process.pid
        self.served = 0  # mails judged

    def hand(self, raw: bytes, received_at: datetime | None, stored_as: str | None = None) -> None:
        """Hand over a mail: its bytes, or where the blob store holds it (``stored_as``)."""
        self.started = self.clock.now()
        try:
            self.conn.send((received_at, stored_as))
            if stored_as is None:
                self.conn.send_bytes(raw)
        except OSError:
            # It stopped reading: ended, or could not hold the mail. What it
            # answered before, if anything, is still there for answer().
            pass
        self.served += 1

    def answer(self, timeout: float, stored: Callable[[str], None]) -> tuple[str, Any] | Overrun:
        """The answer for the mail handed over, or an Overrun (the process is then spent).

        ``stored`` hears first that a big mail is in the blob store (STORE_FIRST).
        """
        assert self.started is not None
        deadline = self.started + timeout
        self.started = None
        try:
            while True:
                left = max(0.0, deadline - self.clock.now())
                if not self.clock.wait(self.conn, left, self.pid):
                    return Overrun(f"took longer than {timeout:g} s")
                kind, value = self.conn.recv()
                if kind != "stored":
                    return kind, value
                stored(value)
        except (EOFError, OSError):
            self.process.join(5)
            return Overrun(
                f"the judging process ended without an answer ({how_it_ended(self.process)})"
            )

    def stop(self) -> None:
        self.conn.close()
        if self.process.is_alive():
            self.process.kill()
        self.process.join()
        self.process.close()


class Judges:
    """A few judging processes; see the module's documentation."""

    def __init__(
        self,
        call: Call,
        policy: IntakePolicy,
        processes: int = 0,
        blobs: BlobStore | None = None,
        clock: Clock | None = None,
        limits: JudgeLimits | None = None,
    ) -> None:
        self.call = call
        self.limits = limits or JudgeLimits()
        self.clock = clock or Clock()
        self.policy = policy
        self.blobs = blobs
        self.processes = processes or default_processes()
        self._idle: list[_Worker] = []
        # Processes left behind by an owner that forgot to close() stop with it.
        weakref.finalize(self, _stop_all, self._idle)

    def judge(self, raw: bytes, received_at: datetime | None) -> Judged:
        """Judge one mail; raises JudgeError for a fault in mailbot's own code."""
        result = next(self.judge_all([(raw, received_at)]))
        if isinstance(result, Exception):
            raise result
        return result

    def judge_all(
        self,
        mails: Iterable[tuple[bytes, datetime | None]],
        stored: Callable[[int, str], None] | None = None,
    ) -> Generator[Judged | Exception, None, None]:
        """Judge the mails, up to ``processes`` at once; yield the results in their order.

        For a mail mailbot itself failed on, the exception comes in its place
        (JudgeError from a judging process), for the caller's per-mail
        boundary. Closing the iterator early stops the work still under way.
        ``stored(i, sha256)`` hears when the i-th mail (from 0) is in the
        blob store before it is judged (a big one, STORE_FIRST): the caller
        may let go of its bytes, as this does.
        """
        if not self.limits.isolate:
            yield from self._judge_in_turn(mails)
            return
        # Not enumerate() or zip(), which keep the last mail they gave out.
        waiting, places = iter(mails), itertools.count()
        busy: collections.deque[_Handed] = collections.deque()
        try:
            while True:
                self._hand_out(waiting, places, busy, stored)
                if not busy:
                    return
                handed = busy.popleft()
                worker = handed.worker
                outcome = worker.answer(self.limits.timeout, handed.let_go(stored))
                if _spent(worker, outcome):
                    worker.stop()
                else:
                    self._idle.append(worker)
                try:
                    result: Judged | Exception = self._result(handed, outcome)
                except (JudgeError, StoreError) as exc:
                    result = exc
                yield result
        finally:
            for handed in busy:  # the caller stopped early
                handed.worker.stop()

    def _judge_in_turn(
        self, mails: Iterable[tuple[bytes, datetime | None]]
    ) -> Generator[Judged | Exception, None, None]:
        """Without isolation ([intake] isolate = false): each mail in this process, in turn."""
        for raw, received_at in mails:
            try:
                yield judge_here(raw, self.call, received_at, self.policy, self.blobs)
            except Exception as exc:  # the caller's per-mail boundary decides
                yield exc

    def _hand_out(
        self,
        waiting: Iterator[tuple[bytes, datetime | None]],
        places: Iterator[int],
        busy: collections.deque[_Handed],
        stored: Callable[[int, str], None] | None,
    ) -> None:
        """Hand waiting mail to judging processes until ``processes`` of them are busy.

        A big mail (STORE_FIRST) is put in the blob store here and let go of
        before the judging process reads it back: the two never hold it at once.
        """
        while len(busy) < self.processes:
            mail = next(waiting, None)
            if mail is None:
                return
            handed = _Handed(self._worker(), next(places), *mail)
            del mail
            stored_as = self._store_first(handed.raw)
            if stored_as is not None:
                handed.let_go(stored)(stored_as)
            handed.worker.hand(handed.raw, handed.received_at, stored_as)
            busy.append(handed)

    def _store_first(self, raw: bytes) -> str | None:
        """Where the blob store holds a big mail now; None for a small one, or a refusal.

        A disk that refuses is left for the judging process to meet again: its
        StoreError then comes in the mail's place.
        """
        if self.blobs is None or len(raw) < STORE_FIRST:
            return None
        try:
            return self.blobs.put(raw, folders=False)
        except StoreError:
            return None

    def start(self, mails: int) -> None:
        """Fork the judging processes ``mails`` mails need, before the mails are fetched.

        A process forked later carries a copy of the pages the daemon held
        at the fork, the fetched batch with them, for as long as it lives.
        """
        if self.limits.isolate:
            while len(self._idle) < min(self.processes, mails):
                self._idle.append(_Worker(self))

    def pids(self) -> list[int]:
        """The judging processes waiting for mail."""
        return [worker.pid for worker in self._idle if worker.pid is not None]

    def close(self) -> None:
        """Stop the judging processes (new ones start if more mail comes)."""
        _stop_all(self._idle)

    def _worker(self) -> _Worker:
        if self._idle:
            return self._idle.pop()
        return _Worker(self)

    def _result(self, handed: _Handed, outcome: tuple[str, Any] | Overrun) -> Judged:
        if not isinstance(outcome, Overrun):
            kind, value = outcome
            if kind == "done":
                judged: Judged = value
                return judged
            if kind == "error":
                raise JudgeError(f"judging failed in the judging process:\n{value}")
            if kind == "store":
                raise StoreError(value)
            outcome = Overrun(f"needed more than {self.limits.memory / 2**20:.0f} MB of memory")
        raw, received_at = handed.raw_mail(self.blobs), handed.received_at
        log.warning("a mail of %d bytes went over a limit (%s)", len(raw), outcome.reason)
        limits = self.limits
        head = run_bounded(headers_only, (raw, outcome.reason), limits.timeout, limits.memory)
        message = head if not isinstance(head, Overrun) else bare_message(raw, outcome.reason)
        verdict = ignored(message, self.call, received_at, too_complex(outcome.reason))
        judged = Judged(message, verdict, hashlib.sha256(raw).hexdigest(), content_sha256(raw))
        return judged if self.blobs is None else store(judged, raw, self.blobs)


@dataclasses.dataclass
class _Handed:
    """A mail handed to a judging process, until its answer is read."""

    worker: _Worker
    index: int  # its place among the mails judge_all was given
    raw: bytes  # empty once the judging process stored it (``stored_as``)
    received_at: datetime | None
    stored_as: str | None = None

    def let_go(self, stored: Callable[[int, str], None] | None) -> Callable[[str], None]:
        """What to do when the mail is in the blob store: let go of it here, tell the caller."""

        def note(sha256: str) -> None:
            self.raw, self.stored_as = b"", sha256
            if stored is not None:
                stored(self.index, sha256)

        return note

    def raw_mail(self, blobs: BlobStore | None) -> bytes:
        """The raw mail: as handed over, or read back from the store."""
        if self.stored_as is None or blobs is None:
            return self.raw
        return blobs.get(self.stored_as)


def _spent(worker: _Worker, outcome: tuple[str, Any] | Overrun) -> bool:
    """Out of time or memory, dead, failed in mailbot's code, or old: to be replaced."""
    return (
        isinstance(outcome, Overrun)
        or outcome[0] not in ("done", "store")
        or worker.served >= RECYCLE_AFTER
    )


def _stop_all(workers: list[_Worker]) -> None:
    while workers:
        workers.pop().stop()


def _serve(
    conn: Connection, call: Call, policy: IntakePolicy, memory: int, blobs: BlobStore | None
) -> None:
    """A judging process: mail after mail until the pipe closes or a limit is reached."""
    logging.disable(logging.CRITICAL)
    _close_inherited(conn.fileno())
    release_large_blocks()  # the readers were imported before the fork (preload)
    limit_memory(memory)
    while True:
        try:
            received_at, stored_as = conn.recv()
            raw = conn.recv_bytes() if stored_as is None else b""
        except (EOFError, OSError):
            return
        except MemoryError:  # the mail alone is over the limit
            conn.send(("memory", ""))
            return
        held = [raw]
        del raw  # _judge_one may let go of it halfway (judge_held)
        answer = _judge_one(conn, held, received_at, call, policy, blobs, stored_as)
        del held
        try:
            conn.send(answer)
        except MemoryError:
            conn.send(("memory", ""))
        if answer[0] not in ("done", "store"):
            return  # a process that ran out of memory or failed is replaced


def _judge_one(
    conn: Connection,
    held: list[bytes],
    received_at: datetime | None,
    call: Call,
    policy: IntakePolicy,
    blobs: BlobStore | None,
    stored_as: str | None = None,
) -> tuple[str, Any]:
    """Judge (and store) the mail in ``held`` in a judging process: the answer to send back.

    A big mail is in the blob store already (``stored_as``: the daemon put it
    there) and is read back from it; one the daemon could not store is stored
    first here, the daemon told at once. Either is let go of here once it is
    parsed (STORE_FIRST, judge_held).
    """
    try:
        if blobs is None:
            return ("done", judge_here(held[0], call, received_at, policy))
        if stored_as is not None:
            try:
                held[0] = blobs.get(stored_as)
            except OSError as exc:
                return ("store", f"cannot read the mail back from the store {blobs.root}: {exc}")
        elif len(held[0]) >= STORE_FIRST:
            stored_as = blobs.put(held[0], folders=False)
            conn.send(("stored", stored_as))
        else:
            return ("done", judge_here(held[0], call, received_at, policy, blobs))
        # The store named it by its sha256: the mail is not hashed again.
        return ("done", judge_held(held, stored_as, call, received_at, policy, blobs))
    except MemoryError:
        return ("memory", "")
    except StoreError as exc:  # the disk: the mail stays in the mailbox for the next poll
        return ("store", str(exc))
    except BaseException:  # sent to the daemon, which raises it at its per-mail boundary
        return ("error", traceback.format_exc())


def _close_inherited(keep: int) -> None:
    """Close every file descriptor above stderr but ``keep``."""
    try:
        open_fds = sorted(int(name) for name in os.listdir("/proc/self/fd"))
    except OSError:  # not Linux
        os.closerange(3, keep)
        os.closerange(keep + 1, 65536)
        return
    for fd in open_fds:
        if fd > 2 and fd != keep:
            with contextlib.suppress(OSError):  # the listing's own descriptor, gone
                os.close(fd)
