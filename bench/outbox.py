"""`python -m bench outbox`: how fast one run over the outbox hands replies to an SMTP server.

Queues N replies (each to its own applicant and domain, so no hourly limit
holds one back) in a fresh SQLite database, then times one `send_pending`
run to the test SMTP sink on 127.0.0.1 (tests/servers/smtp.py), with a
login as a submission server asks for. It prints replies/s and what the run
cost the server (connections, EHLOs, logins), and the same with the server
closing each connection after ``--close-after`` messages, as servers with an
idle timeout or a limit of messages per connection do. Each case runs
``--rounds`` times; the medians are kept in bench/results/DATE-outbox.json.
It asserts nothing about times.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import tempfile
import time
from collections import Counter
from datetime import UTC, datetime, timedelta
from email import message_from_bytes
from pathlib import Path
from typing import Any

from mailbot.calls import Call, load_call
from mailbot.config import ReplySettings, SmtpSettings
from mailbot.replies.outbox import Outgoing, queue_reply
from mailbot.replies.sender import send_pending
from mailbot.replies.transports import SmtpTransport
from mailbot.store.db import Database
from tests.conftest import RULES
from tests.servers.smtp import SmtpSink

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "results"
T0 = datetime(2021, 7, 20, 3, 0, 0, tzinfo=UTC)
BODY = "您好，您的申请已受理。\n\nDear applicant, your proposal is received.\n" * 20


def fill(db: Database, call: Call, settings: ReplySettings, n: int) -> None:
    with db.transaction() as session:
        for i in range(n):
            queue_reply(
                session,
                Outgoing(
                    to_address=f"applicant{i}@institute{i}.example.org",
                    template="accepted",
                    subject="已受理 / Received",
                    body=BODY,
                    in_reply_to=f"<proposal.{i}@institute{i}.example.org>",
                ),
                settings=settings,
                call=call,
                now=T0,
            )


def one_run(
    sink: SmtpSink, call: Call, n: int, close_after: int | None, folder: Path
) -> dict[str, Any]:
    """Queue n replies, send them in one run; the figures of that run."""
    sink.clear()
    sink.close_after = close_after
    before = (sink.connections, sink.ehlos, sink.logins)
    smtp = SmtpSettings(host=sink.host, port=sink.port, security="plain", username=sink.user)
    settings = ReplySettings(smtp=smtp)
    db = Database(f"sqlite:///{folder / f'outbox-{time.monotonic_ns()}.sqlite3'}")
    try:
        db.upgrade()
        fill(db, call, settings, n)
        transport = SmtpTransport(smtp, sink.password, local_hostname="localhost")
        started = time.perf_counter()
        report = send_pending(db, transport, settings, lambda: T0 + timedelta(seconds=1))
        seconds = time.perf_counter() - started
    finally:
        db.dispose()
    ids = Counter(str(message_from_bytes(m.data)["Message-ID"]) for m in sink.messages)
    after = (sink.connections, sink.ehlos, sink.logins)
    return {
        "sent": report.sent,
        "delivered_twice": sum(1 for count in ids.values() if count > 1),
        "seconds": seconds,
        "replies_per_s": report.sent / seconds,
        "connections": after[0] - before[0],
        "ehlos": after[1] - before[1],
        "logins": after[2] - before[2],
    }


def measure(n: int, rounds: int, close_after: int | None) -> dict[str, Any]:
    call = load_call(RULES)
    runs = []
    with SmtpSink() as sink, tempfile.TemporaryDirectory(prefix="mailbot-bench-outbox-") as tmp:
        for _ in range(rounds):
            runs.append(one_run(sink, call, n, close_after, Path(tmp)))
    return {
        "replies": n,
        "close_after": close_after,
        "rounds": rounds,
        "replies_per_s_median": round(statistics.median(r["replies_per_s"] for r in runs), 1),
        "runs": runs,
    }


def table(cases: list[dict[str, Any]]) -> str:
    lines = ["case                       replies/s  sent  connections  EHLOs  logins  sent twice"]
    for case in cases:
        last = case["runs"][-1]
        name = (
            "one session"
            if case["close_after"] is None
            else f"server closes every {case['close_after']}"
        )
        lines.append(
            f"{name:<26} {case['replies_per_s_median']:>9.1f}  {last['sent']:>4}  "
            f"{last['connections']:>11}  "
            f"{last['ehlos']:>5}  {last['logins']:>6}  {last['delivered_twice']:>10}"
        )
    return "\n".join(lines)


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m bench outbox", description=__doc__.split("\n\n")[0]
    )
    parser.add_argument("--replies", type=int, default=200, help="replies in the run")
    parser.add_argument("--rounds", type=int, default=3, help="runs of each case")
    parser.add_argument("--close-after", type=int, default=50, help="messages per connection")
    parser.add_argument("--json", type=Path, help="default bench/results/DATE-outbox.json")
    args = parser.parse_args(argv)
    started = datetime.now(UTC)
    cases = [
        measure(args.replies, args.rounds, None),
        measure(args.replies, args.rounds, args.close_after),
    ]
    results = {
        "started": started.isoformat(timespec="seconds"),
        "machine": f"{os.cpu_count()} CPUs, Python {platform.python_version()}, "
        f"load {os.getloadavg()[0]:.1f} at the start",
        "database": "SQLite",
        "cases": cases,
        "load_at_end": round(os.getloadavg()[0], 1),
    }
    print(table(cases))
    out = args.json or RESULTS / f"{started.date().isoformat()}-outbox.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(results, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    return 0
