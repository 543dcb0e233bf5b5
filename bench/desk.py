"""`python -m bench desk`: the intake desk's server time with thousands of submissions.

Fills a database (SQLite, then PostgreSQL started as the tests start it) with
rows written directly, no mail judged: N submissions with their versions,
one reply per answered mail, and mail tied to none (auto-replies, bounces,
unreadable mail) up to M mails in all, July 2021 receipt times. Then times,
through Flask's test client signed in as a secretariat member, the log's
first and later pages, searches and a submission page opened from a
filtered list: p50 and p95 of the server time. It asserts nothing.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import re
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import select

from bench.deskdata import fill
from mailbot.app import App
from mailbot.config import load_settings
from mailbot.store.models import User
from mailbot.web.app import create_app
from mailbot.web.auth import add_user

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "results"
TARGET_MS = 300.0
PAGE_SIZE = 50


def config_file(directory: Path, database_url: str) -> Path:
    config = directory / "mailbot.toml"
    config.write_text(
        'rules = "anso2021"\n'
        f'database_url = "{database_url}"\n'
        'store_dir = "store"\n\n'
        '[source]\nkind = "maildir"\n\n[source.maildir]\npath = "Maildir"\n\n'
        '[replies]\ntransport = "outbox_dir"\noutbox_dir = "outbox"\n',
        encoding="utf-8",
    )
    return config


class Signed:
    """Flask's test client, signed in; ``get`` returns the server time in ms."""

    def __init__(self, app: App) -> None:
        self.client = create_app(app).test_client()
        with app.db.transaction() as session:
            if session.scalar(select(User.id).where(User.name == "bench")) is None:
                add_user(session, "bench", "bench password for the desk")
        page = self.client.get("/login").get_data(as_text=True)
        token = re.search(r'name="csrf_token" value="([^"]+)"', page)
        assert token, "no sign-in form"
        answer = self.client.post(
            "/login",
            data={
                "csrf_token": token.group(1),
                "name": "bench",
                "password": "bench password for the desk",
            },
        )
        assert answer.status_code == 303, answer.status_code

    def get(self, path: str) -> float:
        began = time.perf_counter()
        answer = self.client.get(path)
        elapsed = (time.perf_counter() - began) * 1000
        if answer.status_code != 200:
            raise RuntimeError(f"{path}: {answer.status_code}")
        return elapsed


def _paths(rng: random.Random, kind: str, submissions: int) -> Callable[[], str]:
    def log() -> str:
        page = rng.randint(1, max(1, submissions // PAGE_SIZE))
        sort = rng.choice(["reference", "received_at", "status", "institution", "pi"])
        return f"/log?page={page}&sort={sort}" + rng.choice(["", "&dir=desc"])

    def search() -> str:
        seq = rng.randint(1, submissions)
        q = rng.choice(["植物所", "兰州大学", f"pi{seq}@", str(seq), "干旱", "王"])
        return f"/log?q={q}"

    def submission() -> str:
        seq = rng.randint(1, submissions)
        return f"/submissions/ANSO2021-{seq:04d}?status=accepted&sort=received_at"

    return {"log": log, "search": search, "submission": submission}[kind]


def _figures(times: list[float]) -> dict[str, float]:
    ordered = sorted(times)
    return {
        "p50_ms": round(statistics.median(ordered), 1),
        "p95_ms": round(ordered[max(0, round(0.95 * len(ordered)) - 1)], 1),
        "max_ms": round(ordered[-1], 1),
        "n": len(ordered),
    }


def measure(app: App, submissions: int, repeats: int, seed: int = 11) -> dict[str, Any]:
    rng = random.Random(seed)
    client = Signed(app)
    client.get("/log")  # templates compiled, caches warm: the first request is not the desk's
    found: dict[str, Any] = {}
    for kind in ("log", "search", "submission"):
        path = _paths(rng, kind, submissions)
        found[kind] = _figures([client.get(path()) for _ in range(repeats)])
    return found


@contextmanager
def _database(kind: str, directory: Path) -> Iterator[str]:
    if kind == "sqlite":
        yield "sqlite:///desk.sqlite3"
        return
    from tests.servers.postgres import Postgres

    with Postgres() as server:
        yield server.create_database()


def run(kind: str, submissions: int, mails: int, repeats: int) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="mailbot-bench-desk-") as folder:
        directory = Path(folder)
        with _database(kind, directory) as url:
            app = App.build(load_settings(config_file(directory, url)))
            app.db.upgrade()
            began = time.perf_counter()
            written = fill(app, submissions, mails)
            filled = time.perf_counter() - began
            result = {"written": written, "fill_s": round(filled, 1)}
            result.update(measure(app, submissions, repeats))
            app.db.engine.dispose()
            return result


def table(results: dict[str, Any]) -> str:
    lines = [f"mailbot desk benchmark, {results['started']}: {results['machine']}", ""]
    lines.append(f"{'database':<12}{'page':<12}{'p50 ms':>9}{'p95 ms':>9}{'max ms':>9}  target")
    for kind, found in results["databases"].items():
        for page in ("log", "search", "submission"):
            f = found[page]
            verdict = "met" if f["p95_ms"] < TARGET_MS else "MISSED"
            lines.append(
                f"{kind:<12}{page:<12}{f['p50_ms']:>9}{f['p95_ms']:>9}{f['max_ms']:>9}"
                f"  p95 < {TARGET_MS:.0f}: {verdict}"
            )
    return "\n".join(lines)


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m bench desk", description=__doc__.split("\n\n")[0]
    )
    parser.add_argument("--submissions", type=int, default=20_000)
    parser.add_argument("--mails", type=int, default=30_000)
    parser.add_argument("--repeats", type=int, default=40, help="requests per kind of page")
    parser.add_argument("--skip", default="", help="comma-separated: sqlite,postgresql")
    parser.add_argument("--json", type=Path, help="default bench/results/DATE-desk.json")
    args = parser.parse_args(argv)
    skip = {part.strip() for part in args.skip.split(",") if part.strip()}
    started = datetime.now(UTC)
    results: dict[str, Any] = {
        "started": started.isoformat(timespec="seconds"),
        "machine": f"{os.cpu_count()} CPUs, Python {platform.python_version()}, "
        f"load {os.getloadavg()[0]:.1f}",
        "submissions": args.submissions,
        "mails": args.mails,
        "target_p95_ms": TARGET_MS,
        "databases": {},
    }
    for kind in ("sqlite", "postgresql"):
        if kind not in skip:
            print(f"desk bench: {kind}, {args.submissions} submissions", file=sys.stderr)
            results["databases"][kind] = run(kind, args.submissions, args.mails, args.repeats)
    print(table(results))
    out = args.json or RESULTS / f"{started.date().isoformat()}-desk.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(results, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    return 0
