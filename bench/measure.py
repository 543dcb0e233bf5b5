"""The measurements: end to end in a child process (time and peak RSS), idle polls, reply latency.

Peak RSS is taken with os.wait4 by a tiny Python process that spawns the
measured one. A child's ru_maxrss starts from the RSS of the process it was
forked from (Linux carries the old address space's high-water mark across
exec), so the benchmark, which holds a large corpus plan and the SMTP sink,
never spawns the measured process itself.
"""

from __future__ import annotations

import json
import os
import random
import shutil
import signal
import statistics
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import func, insert, select, update

from bench.corpus import MIX, Applicants, MailBuilder, Planned, message_id, plan, small_mails
from bench.disk import store_size
from bench.mailbox import Filler, uid_layout
from mailbot.app import App
from mailbot.config import load_settings
from mailbot.intake.poll import poll
from mailbot.replies.sender import send_pending
from mailbot.store.db import Database
from mailbot.store.models import FolderState, Mail, Reply
from tests.conftest import RULES
from tests.daemon_support import PASSWORD_ENV, daemon_process, settings_values, toml
from tests.servers.dovecot import Dovecot
from tests.servers.smtp import SmtpSink

ROOT = Path(__file__).resolve().parent.parent

# Spawns argv[2:] and writes its exit status, peak RSS, CPU and wall time to argv[1], with the
# peak of all its processes together sampled every 20 ms (mailbot and its judging processes).
RSS_WRAPPER = """\
import json, os, sys, threading, time
began = time.monotonic()
session = os.getsid(0)
peak = {"pss_kb": 0, "rss_kb": 0, "parts": {}}
spawned = {"pid": 0}
done = threading.Event()

def field(text, name):
    for line in text.splitlines():
        if line.startswith(name):
            return int(line.split()[1])
    return 0

def sample():
    # Every process of the measured session but this one: mailbot and its judging processes.
    while not done.wait(0.02):
        pss = rss = 0
        parts = {}
        for name in os.listdir("/proc"):
            if not name.isdigit() or int(name) == os.getpid():
                continue
            try:
                if os.getsid(int(name)) != session:
                    continue
                with open(f"/proc/{name}/smaps_rollup") as rollup:
                    text = rollup.read()
            except OSError:
                continue
            pss += field(text, "Pss:")
            rss += field(text, "Rss:")
            role = "mailbot" if int(name) == spawned["pid"] else f"child {name}"
            parts[role] = field(text, "Pss:")
        if pss > peak["pss_kb"]:
            peak["parts"] = parts
        peak["pss_kb"] = max(peak["pss_kb"], pss)
        peak["rss_kb"] = max(peak["rss_kb"], rss)

watcher = threading.Thread(target=sample, daemon=True)
watcher.start()
pid = spawned["pid"] = os.posix_spawn(sys.argv[2], sys.argv[2:], os.environ)
_, status, usage = os.wait4(pid, 0)
done.set()
watcher.join()
with open(sys.argv[1], "w") as out:
    json.dump({"exit": os.waitstatus_to_exitcode(status), "maxrss_kb": usage.ru_maxrss,
               "tree_pss_kb": peak["pss_kb"], "tree_rss_kb": peak["rss_kb"],
               "tree_pss_parts_kb": peak["parts"],
               "cpu_s": usage.ru_utime + usage.ru_stime, "wall_s": time.monotonic() - began}, out)
"""


@dataclass
class Bench:
    """What every measurement shares: the servers, a scratch folder, the corpus builder."""

    work: Path
    dovecot: Dovecot
    sink: SmtpSink
    builder: MailBuilder
    batch_size: int | None = None
    log: Callable[[str], None] = print
    judge_processes: int | None = None  # [intake] judge_processes; None: mailbot's default

    @property
    def env(self) -> dict[str, str]:
        return {**os.environ, PASSWORD_ENV: self.dovecot.password}

    def settings(
        self,
        name: str,
        database_url: str | None = None,
        *,
        rules: Path | None = None,
        **source: Any,
    ) -> Path:
        """A config file for a run named ``name``: this Dovecot, this sink, mailbot's defaults."""
        folder = self.work / name
        folder.mkdir(parents=True, exist_ok=True)
        url = database_url or f"sqlite:///{folder / 'mailbot.sqlite3'}"
        values = settings_values(folder, url, imap=self.dovecot, smtp=self.sink)
        if rules is not None:
            values["rules"] = str(rules)
        # The tests shorten intervals and batches; the benchmark keeps mailbot's defaults.
        values["source"].pop("poll_interval")
        values["source"]["imap"].pop("batch_size")
        if self.batch_size:
            values["source"]["imap"]["batch_size"] = self.batch_size
        values["source"].update(source)
        if self.judge_processes is not None:
            values.setdefault("intake", {})["judge_processes"] = self.judge_processes
        # A whole call's mail in one run: no hourly limit per domain (qq.com alone
        # would pass it), as none is meant for a backlog.
        values["replies"] = {
            "transport": "smtp",
            "smtp": values["replies"]["smtp"],
            "per_domain_hourly_limit": 0,
        }
        config = folder / "mailbot.toml"
        config.write_text(toml(values), encoding="utf-8")
        app = App.build(load_settings(config))
        app.db.upgrade()
        app.db.dispose()
        return config


def run_child(
    bench: Bench,
    config: Path,
    name: str,
    *,
    profile: Path | None = None,
    timeout: float = 3600,
) -> dict[str, Any]:
    """`mailbot run --once` in a child process: its time from inside, its peak RSS from outside."""
    folder = config.parent
    rss_path, result_path = folder / f"{name}.rss.json", folder / f"{name}.result.json"
    command = [sys.executable, "-m", "bench.child", str(config), str(result_path)]
    if profile is not None:
        command.append(str(profile))
    with open(folder / f"{name}.log", "wb") as log:
        wrapper = subprocess.Popen(
            [sys.executable, "-c", RSS_WRAPPER, str(rss_path), *command],
            cwd=ROOT,
            env=bench.env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # so a timeout can end the measured process too
        )
        try:
            wrapper.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            os.killpg(wrapper.pid, signal.SIGKILL)
            wrapper.wait()
            raise RuntimeError(
                f"{name}: no result within {timeout:.0f} s; see {log.name}"
            ) from None
    rss = json.loads(rss_path.read_text())
    if rss["exit"] != 0:
        tail = (folder / f"{name}.log").read_text(errors="replace")[-3000:]
        raise RuntimeError(f"{name}: mailbot exited {rss['exit']}\n{tail}")
    result = json.loads(result_path.read_text())
    return {
        **result,
        "peak_rss_mb": round(rss["maxrss_kb"] / 1024, 1),
        # Sampled every 20 ms: all of mailbot's processes together (PSS counts a page
        # the judging processes share with the daemon once; RSS counts it in each).
        "peak_tree_pss_mb": round(rss["tree_pss_kb"] / 1024, 1),
        "peak_tree_rss_mb": round(rss["tree_rss_kb"] / 1024, 1),
        # At that peak, each process's share (PSS): "mailbot" and its judging processes.
        "peak_tree_pss_parts_mb": {
            role: round(kb / 1024, 1) for role, kb in rss.get("tree_pss_parts_kb", {}).items()
        },
        "cpu_s": round(rss["cpu_s"], 2),
        "wall_s": round(rss["wall_s"], 2),
    }


def verify(database_url: str, expected: dict[str, str]) -> dict[str, Any]:
    """What mailbot recorded against what the corpus planned: statuses, replies."""
    db = Database(database_url)
    try:
        with db.transaction() as session:
            got = dict(session.execute(select(Mail.message_id, Mail.status)).tuples().all())
            replies = dict(
                session.execute(select(Reply.state, func.count()).group_by(Reply.state))
                .tuples()
                .all()
            )
    finally:
        db.dispose()
    wrong = {mid: (want, got.get(mid)) for mid, want in expected.items() if got.get(mid) != want}
    return {
        "recorded": len(got),
        "statuses": dict(Counter(got.values())),
        "mismatches": len(wrong),
        "mismatch_examples": dict(list(wrong.items())[:5]),
        "replies": replies,
    }


# --------------------------------------------------------------------- end to end


def end_to_end(
    bench: Bench,
    name: str,
    expected: dict[str, str],
    database_url: str | None = None,
    *,
    profile: Path | None = None,
) -> dict[str, Any]:
    """Process the whole INBOX once, as `mailbot run --once` does, on a fresh database."""
    config = bench.settings(name, database_url)
    url = load_settings(config).database()
    bench.sink.clear()
    timeout = 120 + 3 * len(expected)
    result = run_child(bench, config, name, profile=profile, timeout=timeout)
    result["check"] = verify(url, expected)
    result["replies_at_sink"] = len(bench.sink.messages)
    # What the run's blob store holds: the bytes mailbot had to flush (the disk's bound).
    result["store_files"], result["store_bytes"] = store_size(config.parent / "store")
    # A run's blob store holds about twice its mailbox: gone before the next run.
    shutil.rmtree(config.parent / "store", ignore_errors=True)
    return result


def one_big_mail(bench: Bench, size_mb: float) -> tuple[bytes, Planned]:
    """An accepted proposal whose scan makes the whole mail about ``size_mb`` MB."""
    item = plan(1, seed=99, answered_only=True)[0]
    item = Planned(0, "accepted", "accepted", item.applicant, item.received_at)
    scan = int(size_mb * 2**20 / 1.372) - 900 * 1024  # base64 and the other two files
    raw = bench.builder.build(item, scan_size=max(scan, 2**20))
    return raw, item


# -------------------------------------------------------------------------- idle


def _fill_processed(
    app: App,
    source: str,
    start: int,
    mails: list[tuple[str, datetime]],
    uidvalidity: int,
    uids: list[int],
) -> None:
    """Record mails as mailbot would have after processing them in flag mode."""
    statuses = [status for status, share in MIX.values() for _ in range(round(share * 100))]
    now = datetime.now(UTC)
    rows, replies = [], []
    for offset, ((mid, when), uid) in enumerate(zip(mails, uids, strict=True)):
        index = start + offset
        status = statuses[index % len(statuses)]
        address = f"pi{index}@example.ac.cn"
        rows.append({
            "id": index + 1, "call_id": app.call.id, "source": source, "folder": "INBOX",
            "location": f"{uidvalidity}:{uid}", "uidvalidity": uidvalidity, "uid": uid,
            "message_id": mid, "raw_sha256": f"{index:064x}", "raw_size": 2400,
            "sender": address, "sender_name": f"张{index}", "reply_to": None,
            "subject": f"合作专项建议书：中国科学院第{index}研究所+张{index}",
            "received_at": when, "processed_at": now, "status": status, "problems": [],
            "institution": f"中国科学院第{index}研究所", "pi": f"张{index}", "form": None,
            "pdf_pages": 3, "settled": True, "settled_folder": None,
        })  # fmt: skip
        if status != "ignored":
            replies.append({
                "mail_id": index + 1, "to_address": address, "template": status,
                "message_id": f"<mailbot.bench{index}@anso.org.cn>", "subject": "回复",
                "raw": b"x" * 2000, "state": "sent", "queued_at": now, "sent_at": now,
                "attempts": 1,
            })  # fmt: skip
    with app.db.transaction() as session:
        session.execute(insert(Mail), rows)
        if replies:
            session.execute(insert(Reply), replies)
        state = session.scalar(select(FolderState).where(FolderState.source == source))
        if state is None:
            session.add(
                FolderState(
                    source=source, folder="INBOX", uidvalidity=uidvalidity, last_uid=max(uids)
                )
            )
        else:
            session.execute(update(FolderState).values(last_uid=max(uids)))


def idle_polls(bench: Bench, sizes: list[int], repeats: int) -> list[dict[str, Any]]:
    """The time of a poll that finds nothing new, N processed mails left in INBOX (flag mode)."""
    bench.dovecot.clear()
    config = bench.settings("idle", after="flag")
    app = App.build(load_settings(config))
    flag = app.settings.source.flag
    source = app.open_mailbox().name
    results, have = [], 0
    try:
        for size in sorted(sizes):
            began = time.perf_counter()
            new = list(small_mails(size - have, start=have))
            with Filler(bench.dovecot) as filler:
                for chunk in range(0, len(new), 500):
                    filler.multiappend(
                        [(raw, when) for raw, when, _ in new[chunk : chunk + 500]], [flag]
                    )
            uidvalidity, uids = uid_layout(bench.dovecot)
            _fill_processed(
                app, source, have, [(mid, when) for _, when, mid in new], uidvalidity, uids[have:]
            )
            have = size
            filled = time.perf_counter() - began
            results.append({"mails": size, "fill_s": round(filled, 1), **_idle_costs(app, repeats)})
            bench.log(
                f"  idle poll on {size:,} processed mails: {results[-1]['poll_ms_median']} ms"
            )
    finally:
        app.db.dispose()
    return results


def _idle_costs(app: App, repeats: int) -> dict[str, Any]:
    """A first poll (with the login), then ``repeats`` polls and outbox checks."""
    mailbox = app.open_mailbox()
    try:
        first = _timed_poll(app, mailbox)
        polls = [_timed_poll(app, mailbox) for _ in range(repeats)]
    finally:
        mailbox.close()
    transport = app.transport()
    outbox = []
    for _ in range(repeats):
        began = time.perf_counter()
        send_pending(app.db, transport, app.settings.replies, lambda: datetime.now(UTC))
        outbox.append(time.perf_counter() - began)
    return {
        "first_poll_ms": round(first * 1000, 2),
        "poll_ms_median": round(statistics.median(polls) * 1000, 2),
        "poll_ms_p95": round(_percentile(polls, 95) * 1000, 2),
        "outbox_check_ms_median": round(statistics.median(outbox) * 1000, 2),
        "repeats": repeats,
    }


def _timed_poll(app: App, mailbox: Any) -> float:
    began = time.perf_counter()
    report = poll(app, mailbox)
    elapsed = time.perf_counter() - began
    if report.new or report.known or report.failed:
        raise RuntimeError(f"an idle poll found work: {report.summary()}")
    return elapsed


def _percentile(values: list[float], percent: float) -> float:
    """Nearest-rank percentile."""
    ordered = sorted(values)
    rank = max(1, -(-len(ordered) * percent // 100))
    return ordered[int(rank) - 1]


# ----------------------------------------------------------------------- latency


def reply_latency(bench: Bench, count: int) -> dict[str, Any]:
    """`mailbot run` waiting in IDLE; APPEND one mail at a time, time it until its reply arrives."""
    bench.dovecot.clear()
    bench.sink.clear()
    config = bench.settings("latency")
    items = plan(count + 1, seed=23, answered_only=True)
    # New applicants only: the corpus of the other runs is not in this database.
    people = Applicants(random.Random(5))
    items = [
        Planned(
            i.index,
            i.kind if not i.completes else "accepted",
            i.expected,
            people.new(),
            i.received_at,
        )
        for i in items
    ]
    latencies = []
    env = {PASSWORD_ENV: bench.dovecot.password}
    with (
        daemon_process(config, env, config.parent / "daemon.log"),
        Filler(bench.dovecot) as filler,
    ):
        for number, item in enumerate(items):
            raw = bench.builder.build(item)
            began = time.perf_counter()
            filler.append(raw, item.received_at)
            got = bench.sink.wait_for(number + 1, timeout=60 if number == 0 else 30)
            elapsed = time.perf_counter() - began
            answered = got[-1].message["In-Reply-To"]
            if (answered or "").strip() != message_id(raw):
                raise RuntimeError(f"reply {number} answers {answered}, not {message_id(raw)}")
            if number:  # the first one warms the daemon up (imports, connections)
                latencies.append(elapsed)
            time.sleep(0.2)
    return {
        "mails": len(latencies),
        "p50_s": round(_percentile(latencies, 50), 3),
        "p95_s": round(_percentile(latencies, 95), 3),
        "max_s": round(max(latencies), 3),
        "mean_s": round(statistics.fmean(latencies), 3),
        "all_s": [round(x, 3) for x in latencies],
    }


# ---------------------------------------------------------------------- settling


SETTLE_WINDOW = 90.0  # [intake] settle_window's default, which the benchmark keeps


def settling(bench: Bench, pairs: int, *, lone: bool = True) -> dict[str, Any]:
    """Word and PDF in two mails a second apart, received now: one letter a pair, and when.

    The reply latency row's mails carry July 2021 receipt times, so the settling
    window (counted from receipt) is long over for them; these are received now,
    under the call's rules with a deadline not yet passed.
    Each pair is timed from the PDF's APPEND to its letter; then one mail
    missing its PDF, alone, from its APPEND to its letter (the window, plus up
    to one send interval), unless ``lone`` is false.
    """
    bench.dovecot.clear()
    bench.sink.clear()
    # Received now, the mails would be late for the 2021 call: the same call, open longer.
    rules = bench.work / "settling-rules" / RULES.name
    shutil.copytree(RULES.parent, rules.parent)  # with the lists the rules name
    rules.write_text(
        RULES.read_text(encoding="utf-8").replace(
            'deadline = "2021-07-30 24:00"', 'deadline = "2099-12-31 24:00"'
        ),
        encoding="utf-8",
    )
    config = bench.settings("settling", rules=rules)
    people = Applicants(random.Random(11))
    env = {PASSWORD_ENV: bench.dovecot.password}
    after_pdf = []
    with (
        daemon_process(config, env, config.parent / "daemon.log"),
        Filler(bench.dovecot) as filler,
    ):
        for number in range(pairs):
            applicant, now = people.new(), datetime.now(UTC)
            word = Planned(2 * number, "no_pdf", "needs_correction", applicant, now)
            pdf = Planned(2 * number + 1, "accepted", "accepted", applicant, now, completes=True)
            filler.append(bench.builder.build(word), now)
            time.sleep(1)  # the PDF a second after the Word
            raw = bench.builder.build(pdf)
            began = time.perf_counter()
            filler.append(raw, now + timedelta(seconds=1))
            got = bench.sink.wait_for(number + 1, timeout=60 if number == 0 else 30)
            after_pdf.append(time.perf_counter() - began)
            if (got[-1].message["In-Reply-To"] or "").strip() != message_id(raw):
                raise RuntimeError(f"pair {number}: the letter answers another mail")
        letters_for_pairs = len(bench.sink.messages)
        lone_s = _lone_missing_pdf(bench, filler, people, 2 * pairs) if lone else None
    return {
        "pairs": pairs,
        "letters_for_pairs": letters_for_pairs,
        "p50_s": round(_percentile(after_pdf, 50), 3),
        "max_s": round(max(after_pdf), 3),
        "lone_missing_pdf_s": round(lone_s, 3) if lone_s is not None else None,
        "window_s": SETTLE_WINDOW,
    }


def _lone_missing_pdf(bench: Bench, filler: Filler, people: Applicants, index: int) -> float:
    """Seconds from a lone Word-only mail's APPEND to its letter."""
    before, now = len(bench.sink.messages), datetime.now(UTC)
    lone = Planned(index, "no_pdf", "needs_correction", people.new(), now)
    began = time.perf_counter()
    filler.append(bench.builder.build(lone), now)
    bench.sink.wait_for(before + 1, timeout=SETTLE_WINDOW + 60)
    return time.perf_counter() - began
