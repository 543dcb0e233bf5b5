"""The judging processes: several mails at once, in order, each under the limits, none left behind."""

from __future__ import annotations

import contextlib
import gc
import hashlib
import os
import signal
import socket
import subprocess
import sys
from collections.abc import Iterator
from datetime import datetime
from multiprocessing.connection import Connection
from multiprocessing.connection import wait as wait_for
from pathlib import Path

import pytest

from mailbot.calls import Call
from mailbot.judge import bounded as bounded_module
from mailbot.judge import processes as judges_module
from mailbot.judge.bounded import JudgeError
from mailbot.judge.policy import MB, IntakePolicy, JudgeLimits
from mailbot.judge.processes import KEEP_IN_STORE, Clock, Judged, Judges, judge_here
from mailbot.judge.verdict import Status
from mailbot.store.blobs import BlobStore, StoreError
from tests.conftest import ROOT
from tests.mailfactory import build_mail
from tests.mailfactory.base import Att
from tests.test_bounded import ON_TIME, SUBJECT, proposal

GARBAGE = b"\x00\xff garbage \x80"


def auto_reply() -> bytes:
    return build_mail(
        "gmail", subject="Out of office", headers=[("Auto-Submitted", "auto-replied")]
    )


def late(raw: bytes) -> tuple[bytes, datetime]:
    return raw, datetime(2021, 8, 2, 9, 0, tzinfo=ON_TIME.tzinfo)


@pytest.fixture
def pool(call: Call) -> Iterator[Judges]:
    judges = Judges(call, IntakePolicy(), processes=2, limits=JudgeLimits(timeout=20))
    yield judges
    judges.close()


def children() -> set[int]:
    """The pids of this process's live forks (Linux /proc): the servers the fixtures run are not."""
    me = os.getpid()
    ours = Path(f"/proc/{me}/cmdline").read_bytes()
    found = set()
    for name in os.listdir("/proc"):
        if name.isdigit():
            try:
                stat = Path(f"/proc/{name}/stat").read_text()
                command = Path(f"/proc/{name}/cmdline").read_bytes()
            except OSError:
                continue
            fields = stat.rsplit(")", 1)[1].split()
            if int(fields[1]) == me and fields[0] != "Z" and command == ours:
                found.add(int(name))
    return found


def test_a_batch_is_judged_as_one_process_judges_it_and_in_its_order(
    pool: Judges, call: Call
) -> None:
    mails = [
        (proposal(), ON_TIME),
        (GARBAGE, ON_TIME),
        late(proposal()),
        (auto_reply(), ON_TIME),
        (build_mail("outlook", subject=SUBJECT), ON_TIME),
    ]
    results = list(pool.judge_all(mails))
    alone = [judge_here(raw, call, when, IntakePolicy()) for raw, when in mails]
    assert results == alone
    statuses = [r.verdict.status for r in results if isinstance(r, Judged)]
    assert statuses == [
        Status.ACCEPTED,
        Status.IGNORED,
        Status.LATE,
        Status.IGNORED,
        Status.NEEDS_CORRECTION,
    ]


def test_the_processes_live_on_from_batch_to_batch(pool: Judges) -> None:
    list(pool.judge_all([(proposal(), ON_TIME)] * 3))
    before = children()
    assert len(before) == 2
    list(pool.judge_all([(proposal(), ON_TIME)] * 3))
    assert children() == before
    pool.close()
    assert children() == set()


def slow_or_greedy(raw: bytes, *args: object) -> object:
    if b"SLOW" in raw:
        # Stuck for good: the process stops itself, which the test's clock sees.
        os.kill(os.getpid(), signal.SIGSTOP)
        raise AssertionError("a stopped judging process was continued")
    if b"GREEDY" in raw:
        return bytearray(4096 * MB)
    if b"BROKEN" in raw:
        raise ValueError("a fault of mailbot's")
    return original_parse_and_judge(raw, *args)  # type: ignore[arg-type]


original_parse_and_judge = bounded_module.parse_and_judge


class StoppedClock(Clock):
    """Time that passes only for a judging process that stopped itself (SIGSTOP).

    A mail's time limit runs out when its process stops, and never because the
    machine is busy: a SIGCHLD (a child stopped or ended) wakes the wait, which
    then asks the kernel whether that very process is stopped.
    """

    def __init__(self) -> None:
        self.time = 0.0
        self.wakeup, self._writer = socket.socketpair()
        self._writer.setblocking(False)

    def __enter__(self) -> StoppedClock:
        self._handler = signal.signal(signal.SIGCHLD, lambda *_: None)
        self._fd = signal.set_wakeup_fd(self._writer.fileno(), warn_on_full_buffer=False)
        return self

    def __exit__(self, *exc: object) -> None:
        signal.set_wakeup_fd(self._fd)
        signal.signal(signal.SIGCHLD, self._handler)
        self.wakeup.close()
        self._writer.close()

    def now(self) -> float:
        return self.time

    def wait(self, conn: Connection, seconds: float, pid: int | None) -> bool:
        assert pid is not None
        while not conn.poll(0):
            stopped = os.waitid(os.P_PID, pid, os.WSTOPPED | os.WNOHANG | os.WNOWAIT)
            if stopped is not None and stopped.si_code == os.CLD_STOPPED:
                self.time += seconds
                return False
            wait_for([conn, self.wakeup])  # an answer, or a child stopped or ended
            with contextlib.suppress(BlockingIOError):
                self.wakeup.recv(4096, socket.MSG_DONTWAIT)
        return True


@pytest.mark.parametrize(
    ("marker", "reason"),
    [(b"SLOW", "took longer than 30 s"), (b"GREEDY", "needed more than 64 MB of memory")],
)
def test_a_mail_over_a_limit_is_too_complex_and_the_mails_around_it_are_judged(
    call: Call, monkeypatch: pytest.MonkeyPatch, marker: bytes, reason: str
) -> None:
    monkeypatch.setattr(judges_module, "parse_and_judge", slow_or_greedy)
    limits = JudgeLimits(timeout=30, memory=64 * MB)
    with StoppedClock() as clock:
        judges = Judges(call, IntakePolicy(), processes=2, clock=clock, limits=limits)
        try:
            overrun = build_mail("foxmail", subject=SUBJECT, headers=[("X-Case", marker.decode())])
            mails = [(proposal(), ON_TIME), (overrun, ON_TIME), (proposal(), ON_TIME)] * 2
            results = list(judges.judge_all(mails))
        finally:
            judges.close()
    verdicts = [r.verdict for r in results if isinstance(r, Judged)]
    assert [v.status for v in verdicts] == [Status.ACCEPTED, Status.IGNORED, Status.ACCEPTED] * 2
    for verdict in verdicts[1::3]:
        assert [p.code for p in verdict.problems] == ["too_complex"]
        assert reason in verdict.problems[0].en
    overran = results[1]
    assert isinstance(overran, Judged)
    assert overran.message.subject == SUBJECT


def test_a_fault_in_mailbot_comes_at_its_mail_and_the_rest_are_judged(
    call: Call, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(judges_module, "parse_and_judge", slow_or_greedy)
    judges = Judges(call, IntakePolicy(), processes=2)
    try:
        broken = build_mail("foxmail", subject=SUBJECT, headers=[("X-Case", "BROKEN")])
        results = list(judges.judge_all([(broken, ON_TIME), (proposal(), ON_TIME)]))
    finally:
        judges.close()
    assert isinstance(results[0], JudgeError)
    assert "a fault of mailbot's" in str(results[0])
    assert isinstance(results[1], Judged)
    assert results[1].verdict.status is Status.ACCEPTED


def test_a_batch_left_halfway_stops_the_work_under_way(pool: Judges) -> None:
    results = pool.judge_all([(proposal(), ON_TIME)] * 6)
    first = next(results)
    assert isinstance(first, Judged)
    results.close()  # the intake could not store the first: the rest waits for the next poll
    assert len(children()) <= 1  # the one that answered waits for more; the busy one is gone
    assert pool.judge(proposal(), ON_TIME).verdict.status is Status.ACCEPTED


def test_a_judging_process_holds_none_of_the_daemons_files(pool: Judges) -> None:
    listener = socket.create_server(("127.0.0.1", 0))
    try:
        pool.judge(proposal(), ON_TIME)
        (pid,) = children()
        held = os.listdir(f"/proc/{pid}/fd")
    finally:
        listener.close()
    # Standard input, output and error, and its pipe to the daemon: nothing else.
    assert len([fd for fd in held if int(fd) > 2]) == 1


def test_judging_processes_end_with_their_owner(call: Call) -> None:
    judges = Judges(call, IntakePolicy(), processes=2)
    list(judges.judge_all([(proposal(), ON_TIME)] * 2))
    assert len(children()) == 2
    del judges
    gc.collect()
    assert children() == set()


def test_without_isolation_the_mail_is_judged_in_the_daemon(call: Call) -> None:
    judges = Judges(call, IntakePolicy(), processes=2, limits=JudgeLimits(isolate=False))
    results = list(judges.judge_all([(proposal(), ON_TIME), (GARBAGE, ON_TIME)]))
    assert children() == set()
    assert [r.verdict.status for r in results if isinstance(r, Judged)] == [
        Status.ACCEPTED,
        Status.IGNORED,
    ]


def test_the_judging_processes_store_the_mail_and_keep_the_scans_out_of_the_daemon(
    call: Call, tmp_path: Path
) -> None:
    blobs = BlobStore(tmp_path / "store")
    judges = Judges(call, IntakePolicy(), processes=2, blobs=blobs)
    try:
        raw = proposal(Att("现场照片.jpg", os.urandom(400 * 1024)))
        judged = judges.judge(raw, ON_TIME)
    finally:
        judges.close()
    assert judged.stored
    assert blobs.get(judged.raw_sha256) == raw
    alone = judge_here(raw, call, ON_TIME, IntakePolicy())
    for kept, full in zip(judged.message.attachments, alone.message.attachments, strict=True):
        assert blobs.get(kept.sha256) == full.data
        assert kept.size == full.size
        assert kept.in_store == (full.size > KEEP_IN_STORE)
        assert kept.data == (b"" if kept.in_store else full.data)
    assert any(a.in_store for a in judged.message.attachments)
    assert judged.verdict == alone.verdict


def test_a_store_the_disk_refuses_is_a_store_error_and_the_process_goes_on(
    call: Call, tmp_path: Path
) -> None:
    (tmp_path / "store").write_text("not a folder")
    judges = Judges(call, IntakePolicy(), processes=1, blobs=BlobStore(tmp_path / "store"))
    try:
        results = list(judges.judge_all([(proposal(), ON_TIME)] * 2))
        assert all(isinstance(r, StoreError) for r in results)
        assert "cannot write to the store" in str(results[0])
        assert len(children()) == 1  # the same process, waiting for the next mail
    finally:
        judges.close()


@pytest.mark.parametrize(("cpus", "processes"), [(1, 1), (2, 1), (4, 3), (16, 15)])
def test_by_default_one_judging_process_per_cpu_but_the_daemons(
    monkeypatch: pytest.MonkeyPatch, cpus: int, processes: int
) -> None:
    monkeypatch.setattr(os, "sched_getaffinity", lambda _pid: set(range(cpus)), raising=False)
    assert judges_module.default_processes() == processes


def test_a_judging_process_is_replaced_after_so_many_mails(
    pool: Judges, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(judges_module, "RECYCLE_AFTER", 2)
    list(pool.judge_all([(proposal(), ON_TIME)] * 2))
    first = set(pool.pids())
    results = list(pool.judge_all([(proposal(), ON_TIME)] * 4))
    assert all(isinstance(r, Judged) and r.verdict.status is Status.ACCEPTED for r in results)
    assert first.isdisjoint(pool.pids())
    assert not first & children()


def test_a_big_mail_is_stored_first_and_read_back_when_its_process_overruns(
    call: Call, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """The daemon hears a big mail is in the store before it is judged, and keeps no copy."""
    monkeypatch.setattr(judges_module, "parse_within_limits", slow_or_greedy)
    monkeypatch.setattr(judges_module, "STORE_FIRST", 0)  # every mail counts as big here
    blobs = BlobStore(tmp_path / "store")
    overrun = build_mail("foxmail", subject=SUBJECT, headers=[("X-Case", "SLOW")])
    mails = [(proposal(), ON_TIME), (overrun, ON_TIME)]
    heard: list[tuple[int, str, bool]] = []

    def stored(index: int, sha256: str) -> None:
        heard.append((index, sha256, blobs.exists(sha256)))

    with StoppedClock() as clock:
        judges = Judges(call, IntakePolicy(), processes=2, blobs=blobs, clock=clock)
        try:
            results = list(judges.judge_all(mails, stored))
        finally:
            judges.close()
    hashes = [hashlib.sha256(raw).hexdigest() for raw, _ in mails]
    assert heard == [(0, hashes[0], True), (1, hashes[1], True)]
    accepted, too_complex = results
    assert isinstance(accepted, Judged)
    assert accepted.verdict.status is Status.ACCEPTED
    # Let go of once parsed, it is judged and stored as a mail held throughout is.
    again = BlobStore(tmp_path / "again")
    assert accepted == judge_here(mails[0][0], call, ON_TIME, IntakePolicy(), again)
    # Read back from the store for the fallback: the header block, the hash, the stored copy.
    assert isinstance(too_complex, Judged)
    assert [p.code for p in too_complex.verdict.problems] == ["too_complex"]
    assert too_complex.message.subject == SUBJECT
    assert too_complex.raw_sha256 == hashes[1]
    assert blobs.get(hashes[1]) == overrun


def test_a_big_mail_goes_to_the_store_not_down_the_pipe_and_the_daemon_lets_go_first(
    call: Call, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """The daemon and its judging process never hold a big mail's bytes at once."""
    big, small = proposal(), auto_reply()
    assert len(big) > len(small)
    monkeypatch.setattr(judges_module, "STORE_FIRST", (len(big) + len(small)) // 2)
    through_the_pipe: list[int] = []
    send_bytes = Connection.send_bytes

    def counted(conn: Connection, buf: bytes, *args: int) -> None:
        through_the_pipe.append(len(buf))
        send_bytes(conn, buf, *args)

    monkeypatch.setattr(Connection, "send_bytes", counted)
    blobs = BlobStore(tmp_path / "store")
    heard: list[tuple[int, str]] = []
    judges = Judges(call, IntakePolicy(), processes=1, blobs=blobs)
    try:
        results = list(
            judges.judge_all([(big, ON_TIME), (small, ON_TIME)], lambda i, h: heard.append((i, h)))
        )
    finally:
        judges.close()
    assert heard == [(0, hashlib.sha256(big).hexdigest())]
    assert len(small) in through_the_pipe
    assert len(big) not in through_the_pipe, "the big mail is read back from the store"
    proposal_judged, reply_judged = results
    assert isinstance(proposal_judged, Judged)
    assert isinstance(reply_judged, Judged)
    assert proposal_judged == judge_here(
        big, call, ON_TIME, IntakePolicy(), BlobStore(tmp_path / "b")
    )
    assert blobs.get(proposal_judged.raw_sha256) == big


IMPORTS_IN_A_JUDGING_PROCESS = """
import os, sys
from datetime import datetime, timezone
from pathlib import Path

from mailbot.bundled import DEFAULT_CALL
from mailbot.calls import load_call
from mailbot.judge.policy import IntakePolicy
from mailbot.judge.processes import Judges

log = Path(sys.argv[1])
daemon = os.getpid()


class Recorder:
    # On sys.meta_path before the fork: the judging process inherits it.
    def find_spec(self, name, path=None, target=None):
        if os.getpid() != daemon:
            with log.open("a") as out:
                out.write(name + "\\n")
        return None


sys.meta_path.insert(0, Recorder())
mails = [(Path(p).read_bytes(), datetime(2021, 7, 20, tzinfo=timezone.utc)) for p in sys.argv[2:]]
judges = Judges(load_call(DEFAULT_CALL), IntakePolicy(), processes=1)
try:
    results = list(judges.judge_all(mails))
finally:
    judges.close()
print(sum(1 for r in results if not isinstance(r, Exception)))
"""


@pytest.mark.slow  # a Python of its own judges the sample mails
def test_a_judging_process_imports_nothing_so_no_lock_of_the_daemons_threads_can_hold_it(
    tmp_path: Path,
) -> None:
    """A fork keeps the locks other threads held; an import would wait on one forever."""
    log = tmp_path / "imports.log"
    mails = sorted(str(path) for path in (ROOT / "tests" / "data").glob("*.eml"))
    result = subprocess.run(
        [sys.executable, "-c", IMPORTS_IN_A_JUDGING_PROCESS, str(log), *mails],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert result.returncode == 0, result.stderr[-4000:]
    assert int(result.stdout) == len(mails)
    imported = log.read_text().split() if log.exists() else []
    assert imported == [], "imported in a judging process: " + ", ".join(sorted(set(imported)))


def test_start_forks_the_processes_the_coming_mails_need_and_no_more(pool: Judges) -> None:
    assert children() == set()
    pool.start(1)
    assert len(children()) == 1
    pool.start(5)
    assert len(children()) == 2
    results = list(pool.judge_all([(proposal(), ON_TIME)] * 2))
    assert all(isinstance(r, Judged) for r in results)
    assert set(pool.pids()) == children()  # the same two, forked before the mail came
