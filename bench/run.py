"""The benchmark command: `python -m bench [--mails N] [--quick] [--json PATH] [--profile]`.

Starts Dovecot and an SMTP sink on 127.0.0.1 (tests/servers/), fills the
mailbox with a call's mail, and measures in one run:

1. the ceiling: every mail's raw bytes fetched with imapclient in batches;
1b. the peer: mbsync pulling the mailbox into a fresh Maildir, fsyncing each mail;
1c. the disk's bound: its fdatasync rate, and the store's bytes at that rate;
2. mailbot end to end (`mailbot run --once`) on a fresh SQLite database,
   round by round in turn with (1b), the same mailbox each round;
3. peak memory (all processes together) during (2), with no mail, and with one 50 MB mail;
4. the idle poll on 1,000 and 10,000 processed mails (flag mode);
5. reply latency, APPEND to reply at the SMTP sink, with the daemon in IDLE;
6. (2) again on PostgreSQL, as many rounds, a fresh database each.

It prints a table, writes everything as JSON (bench/results/DATE.json or
--json PATH) and exits 0. It times things; it asserts nothing about them.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import datetime
from pathlib import Path
from typing import Any

from bench.corpus import MailBuilder, message_id, plan
from bench.disk import bound, fdatasync_rate
from bench.mailbox import fetch_all, folders, move_back
from bench.measure import (
    Bench,
    end_to_end,
    idle_polls,
    one_big_mail,
    reply_latency,
    run_child,
    settling,
)
from bench.peer import MbsyncMissingError, Pulled, mbsync_binary, mbsync_version, pull, summary
from bench.report import add_ratios, table
from bench.stages import stages
from mailbot.config import ImapSettings
from tests.daemon_support import PASSWORD_ENV
from tests.servers.common import MissingDependencyError
from tests.servers.dovecot import Dovecot
from tests.servers.postgres import Postgres
from tests.servers.smtp import SmtpSink

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "results"


def arguments(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--mails", type=int, help="mails in the backlog (default 300; 20 with --quick)"
    )
    parser.add_argument(
        "--quick",
        action="store_true",
        help="smoke run: 20 mails, small idle mailboxes, 5 latency mails, 5 MB big mail",
    )
    parser.add_argument(
        "--json", type=Path, help="write the results here (default bench/results/DATE.json)"
    )
    parser.add_argument(
        "--profile",
        action="store_true",
        help="run (2) once more under pyinstrument; writes the profile beside the JSON",
    )
    parser.add_argument("--batch-size", type=int, help="IMAP fetch batch (default: mailbot's, 25)")
    parser.add_argument(
        "--judge-processes",
        type=int,
        help="[intake] judge_processes (default: mailbot's, one per CPU)",
    )
    parser.add_argument(
        "--rounds",
        type=int,
        help="rounds of (2) and of mbsync in turn, and of (6); medians (default 3; 1 with --quick)",
    )
    parser.add_argument(
        "--big-mail-mb",
        type=float,
        help="size of the one big mail in (3) (default 50 MB, about 49 once built; 5 with --quick)",
    )
    parser.add_argument(
        "--idle-sizes", default="1000,10000", help="processed mails, comma-separated"
    )
    parser.add_argument("--idle-repeats", type=int, default=30)
    parser.add_argument("--latency-mails", type=int, default=50)
    parser.add_argument(
        "--skip",
        default="",
        help="comma-separated: mbsync,disk,postgresql,stages,big,latency,settling,idle",
    )
    args = parser.parse_args(argv)
    if args.rounds is not None and args.rounds < 1:
        parser.error("--rounds must be 1 or more")
    if args.quick:
        args.idle_sizes, args.idle_repeats, args.latency_mails = "100,1000", 5, 5
    args.big_mail_mb = args.big_mail_mb or (5.0 if args.quick else 50.0)
    args.mails = args.mails or (20 if args.quick else 300)
    args.rounds = args.rounds or (1 if args.quick else 3)
    args.skip = {part.strip() for part in args.skip.split(",") if part.strip()}
    return args


def say(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


def machine() -> dict[str, Any]:
    mem_kb = next(
        int(line.split()[1])
        for line in Path("/proc/meminfo").read_text().splitlines()
        if line.startswith("MemTotal:")
    )
    cpu = next(
        (
            line.split(":", 1)[1].strip()
            for line in Path("/proc/cpuinfo").read_text().splitlines()
            if line.startswith("model name")
        ),
        platform.processor(),
    )
    dovecot = shutil.which(
        "dovecot", path=os.pathsep.join([os.environ.get("PATH", ""), "/usr/sbin"])
    )
    version = (
        subprocess.run([dovecot, "--version"], capture_output=True, text=True).stdout.strip()
        if dovecot
        else None
    )
    return {
        "load_average": os.getloadavg(),
        "nproc": os.cpu_count(),
        "cpu": cpu,
        "ram_gb": round(mem_kb / 2**20, 1),
        "python": platform.python_version(),
        "kernel": platform.release(),
        "dovecot": version,
        "sqlite": sqlite3.sqlite_version,
    }


def fill(bench: Bench, count: int) -> tuple[dict[str, str], dict[str, Any]]:
    """The backlog: ``count`` mails of a call, APPENDed with their July 2021 receipt times."""
    from bench.mailbox import Filler

    expected: dict[str, str] = {}
    sizes: list[int] = []
    crlf = 0  # line ends: a Maildir keeps each as LF alone
    began = time.perf_counter()
    with Filler(bench.dovecot) as filler:
        for item in plan(count):
            raw = bench.builder.build(item)
            filler.append(raw, item.received_at)
            expected[message_id(raw)] = item.expected
            sizes.append(len(raw))
            crlf += raw.count(b"\r\n")
            if len(sizes) % 100 == 0:
                say(f"  {len(sizes)} of {count} mails in the mailbox")
    statuses: dict[str, int] = {}
    for status in expected.values():
        statuses[status] = statuses.get(status, 0) + 1
    return expected, {
        "mails": count,
        "mb": round(sum(sizes) / 2**20, 1),
        "bytes": sum(sizes),
        "bytes_lf": sum(sizes) - crlf,
        "mean_mail_mb": round(sum(sizes) / len(sizes) / 2**20, 2),
        "largest_mail_mb": round(max(sizes) / 2**20, 2),
        "expected_statuses": statuses,
        "fill_s": round(time.perf_counter() - began, 1),
    }


def main(argv: list[str] | None = None) -> int:
    args = arguments(argv)
    started = datetime.now().astimezone()
    out = args.json or RESULTS / f"{started:%Y-%m-%d}.json"
    batch = args.batch_size or ImapSettings().batch_size
    results: dict[str, Any] = {
        "started": started.isoformat(timespec="seconds"),
        "command": " ".join(["python -m bench", *(argv if argv is not None else sys.argv[1:])]),
        "machine": machine(),
        "batch_size": batch,
        "judge_processes": args.judge_processes,
        "rounds": args.rounds,
    }
    work = Path(tempfile.mkdtemp(prefix="mailbot-bench-"))
    try:
        with Dovecot() as dovecot, SmtpSink() as sink:
            # mailbot reads the IMAP password from the variable the config names, here too.
            os.environ[PASSWORD_ENV] = dovecot.password
            bench = Bench(
                work, dovecot, sink, MailBuilder(), args.batch_size, say, args.judge_processes
            )
            run_all(args, bench, results, out)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    results["finished"] = datetime.now().astimezone().isoformat(timespec="seconds")
    # Other work on the machine slows every figure: the load before and after says how much.
    results["load_average_after"] = os.getloadavg()
    add_ratios(results)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(results, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    print(table(results))
    print(f"\nresults written to {out}")
    return 0


def run_all(args: argparse.Namespace, bench: Bench, results: dict[str, Any], out: Path) -> None:
    batch = results["batch_size"]
    say(f"filling the mailbox with {args.mails} mails")
    expected, results["corpus"] = fill(bench, args.mails)
    say(f"  {results['corpus']['mb']} MB in {results['corpus']['fill_s']} s")

    say("(1) ceiling: fetching every mail's raw bytes")
    results["ceiling_imapclient_tracing"] = fetch_all(bench.dovecot, batch, tracing=True).as_json()
    results["ceiling"] = fetch_all(bench.dovecot, batch).as_json()
    say(f"(2) mailbot run --once on SQLite and (1b) mbsync in turn, {args.rounds} rounds")
    results["mbsync"], results["sqlite"] = alternate(args, bench, expected, results["corpus"])
    if "disk" not in args.skip:
        results["disk"] = disk_bound(bench, results["corpus"], results["sqlite"])

    if "postgresql" in args.skip:
        results["postgresql"] = {"skipped": "--skip postgresql"}
    else:
        on_postgresql(args, bench, expected, results)

    if args.profile:
        say("profiling (2) with pyinstrument")
        stem = out.with_suffix("").with_name(out.stem + "-profile")
        profiled = end_to_end(bench, "profile", expected, profile=stem)
        shown = stem.relative_to(ROOT) if stem.is_relative_to(ROOT) else stem
        results["profile"] = {
            "text": f"{shown}.txt",
            "html": f"{shown}.html",
            "run_s": profiled["run_s"],
        }
    bench.dovecot.clear()

    if "stages" not in args.skip:
        say("where the time goes: mailbot's stages one by one")
        results["stages"] = stages(3 if args.quick else 20, bench.builder)

    say("(3) peak memory with no mail, and with one big mail")
    results["baseline"] = run_child(bench, bench.settings("baseline"), "baseline")
    if "big" not in args.skip:
        raw, item = one_big_mail(bench, args.big_mail_mb)
        from bench.mailbox import Filler

        with Filler(bench.dovecot) as filler:
            filler.append(raw, item.received_at)
        results["big_mail"] = end_to_end(bench, "big", {message_id(raw): "accepted"})
        results["big_mail"]["mail_mb"] = round(len(raw) / 2**20, 1)
        bench.dovecot.clear()

    if "latency" not in args.skip:
        say(f"(5) reply latency over {args.latency_mails} mails, daemon in IDLE")
        results["latency"] = reply_latency(bench, args.latency_mails)

    if "settling" not in args.skip:
        pairs = 3 if args.quick else 10
        say(f"(5b) Word and PDF a second apart, {pairs} pairs received now, and one lone mail")
        results["settling"] = settling(bench, pairs, lone=not args.quick)

    if "idle" not in args.skip:
        sizes = [int(part) for part in args.idle_sizes.split(",")]
        say(f"(4) idle polls on {', '.join(f'{s:,}' for s in sizes)} processed mails (flag mode)")
        results["idle"] = idle_polls(bench, sizes, args.idle_repeats)
    results["mailbox_after"] = folders(bench.dovecot)


def on_postgresql(
    args: argparse.Namespace, bench: Bench, expected: dict[str, str], results: dict[str, Any]
) -> None:
    """(6): the ceiling measured again, then (2)'s rounds on PostgreSQL, a fresh database each."""
    try:
        with Postgres() as postgres:
            say(f"(6) the same on PostgreSQL, {args.rounds} rounds (ceiling again first)")
            results["ceiling_before_postgresql"] = fetch_all(
                bench.dovecot, results["batch_size"]
            ).as_json()
            runs = []
            for number in range(args.rounds):
                url = postgres.create_database(f"bench{number}")
                runs.append(end_to_end(bench, f"postgresql-{number}", expected, url))
                runs[-1]["filed"] = move_back(bench.dovecot)
            results["postgresql"] = median_round(runs)
            results["postgresql"]["server"] = postgres_version(postgres)
    except MissingDependencyError as exc:
        results["postgresql"] = {"skipped": str(exc)}


def alternate(
    args: argparse.Namespace, bench: Bench, expected: dict[str, str], corpus: dict[str, Any]
) -> tuple[dict[str, Any], dict[str, Any]]:
    """(1b) and (2) round by round in turn: mbsync, then mailbot on a fresh SQLite database.

    Each mailbot round starts from the mailbox as filled: the mail it filed is
    moved back after it; mbsync changes nothing on the server.
    """
    binary: str | None = None
    peer: dict[str, Any] = {"skipped": "--skip mbsync"}
    if "mbsync" not in args.skip:
        try:
            binary = mbsync_binary()
        except MbsyncMissingError as exc:
            peer = {"skipped": str(exc)}
    pulls: list[Pulled] = []
    runs: list[dict[str, Any]] = []
    for number in range(args.rounds):
        if binary is not None:
            pulls.append(pull(bench.dovecot, bench.work / f"mbsync-{number}"))
            say(f"  round {number + 1}: mbsync {pulls[-1].seconds:.2f} s")
        runs.append(end_to_end(bench, f"sqlite-{number}", expected))
        runs[-1]["filed"] = move_back(bench.dovecot)
        say(f"  round {number + 1}: mailbot {runs[-1]['run_s']:.2f} s")
    if binary is not None:
        peer = summary(pulls, corpus, mbsync_version(binary))
    return peer, median_round(runs)


def median_round(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """The round with the median time (the lower one of an even count), with every round's time."""
    times = [run["run_s"] for run in runs]
    chosen = sorted(runs, key=lambda run: float(run["run_s"]))[(len(runs) - 1) // 2]
    return {
        **chosen,
        "rounds": len(runs),
        "rounds_run_s": [round(seconds, 3) for seconds in times],
        "run_s_median": round(statistics.median(times), 3),
        "run_s_spread": round(max(times) - min(times), 3),
        # Every round's verdicts against the plan, not only the median one's.
        "rounds_check": [
            {
                "recorded": run["check"]["recorded"],
                "mismatches": run["check"]["mismatches"],
                "replies_at_sink": run["replies_at_sink"],
            }
            for run in runs
        ],
    }


def disk_bound(bench: Bench, corpus: dict[str, Any], sqlite: dict[str, Any]) -> dict[str, Any]:
    """(1c) This disk's fdatasync rate on the corpus's mails, and the bound it sets on mailbot."""
    say("(1c) the disk: the corpus's mails written with an fdatasync each")
    mails = corpus["mails"]
    rate = fdatasync_rate(bench.work / "fdatasync", mails, corpus["bytes"] // mails)
    return {
        **rate,
        "store_files": sqlite["store_files"],
        **bound(rate, mails, sqlite["store_bytes"]),
    }


def postgres_version(postgres: Postgres) -> str:
    import psycopg

    with psycopg.connect(postgres.url.replace("postgresql+psycopg", "postgresql")) as conn:
        row = conn.execute("SHOW server_version").fetchone()
    return str(row[0]) if row else "?"
