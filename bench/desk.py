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
import hashlib
import json
import random
import re
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import insert, select

from mailbot.app import App
from mailbot.calls import Call, normalise_name
from mailbot.config import load_settings
from mailbot.store.models import Mail, Reply, Submission, User, Version
from mailbot.web.app import create_app
from mailbot.web.auth import add_user

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "results"
TARGET_MS = 300.0
START = datetime(2021, 7, 1, 1, 0, tzinfo=UTC)
SURNAMES = (
    "王李张刘陈杨黄赵吴周徐孙马朱胡郭何高林罗郑梁谢宋唐许韩冯邓曹彭曾肖田董袁潘于蒋蔡"
    "余杜叶程苏魏吕丁任沈姚卢姜崔钟谭陆汪范金石廖贾夏韦付方白邹孟熊秦邱江尹薛闫段雷侯龙史陶黎贺顾毛郝龚邵万钱严覃武戴莫孔向汤"
)
GIVEN = (
    "伟芳娜敏静丽强磊军洋勇艳杰娟涛明超秀霞平刚桂英华玉"
    "兰萍红鹏飞宇浩然子涵雨欣梓轩思远晨曦嘉怡博文志强"
)
UNIVERSITIES = ["兰州大学", "云南大学", "四川大学", "中国农业大学", "University of Nairobi"]
AREAS = ["food_security", "water", "health", "biodiversity", "energy", "disaster"]
WORDS = [
    "干旱",
    "作物",
    "基因",
    "水资源",
    "疫病",
    "生物多样性",
    "可再生能源",
    "滑坡",
    "遥感",
    "土壤",
]
PAGE_SIZE = 50


def _problem(code: str, severity: str) -> dict[str, str]:
    return {"code": code, "severity": severity, "message_zh": code, "message_en": code}


def _hex(*parts: object) -> str:
    return hashlib.sha256("/".join(map(str, parts)).encode()).hexdigest()


def _institutions(call: Call) -> list[str]:
    cas = [line.partition("|")[0].strip() for line in call.institution_lists.cas_institutes]
    return [name for name in cas if name] + UNIVERSITIES


def _form(rng: random.Random, title: str) -> dict[str, Any]:
    partners = [
        {"name": f"Partner {n}", "country": "Kenya", "foreign": n % 2 == 0, "anso_member": n < 2}
        for n in range(rng.randint(1, 5))
    ]
    return {
        "title": title,
        "focus_area": rng.choice(AREAS),
        "budget_wan": rng.choice([80, 100, 120, 150]),
        "period": {"start": "2022-01", "end": "2024-12"},
        "partners": partners,
    }


def _mail(mail_id: int, call: Call, when: datetime, sender: str, **values: Any) -> dict[str, Any]:
    row = {
        "id": mail_id,
        "call_id": call.id,
        "source": "maildir:bench",
        "folder": "INBOX",
        "location": f"bench-{mail_id}",
        "message_id": f"<bench.{mail_id}@example.org>",
        "raw_sha256": _hex("raw", mail_id),
        "raw_size": 2_000_000,
        "sender": sender,
        "sender_name": "",
        "subject": "",
        "received_at": when,
        "processed_at": when,
        "status": "accepted",
        "problems": [],
        "institution": None,
        "pi": None,
        "submission_id": None,
        "form": None,
        "pdf_pages": None,
        "settled": True,
        "content_sha256": _hex("content", mail_id),
        "reply_due": False,
    }
    row.update(values)
    return row


def _reply(reply_id: int, call: Call, mail: dict[str, Any], submission_id: int) -> dict[str, Any]:
    message_id = f"<mailbot.{_hex(reply_id)[:32]}@example.org>"
    body = f"Subject: reply\r\nMessage-ID: {message_id}\r\n\r\n收到。\r\n"
    return {
        "id": reply_id,
        "mail_id": mail["id"],
        "submission_id": submission_id,
        "to_address": mail["sender"],
        "template": mail["status"],
        "message_id": message_id,
        "subject": "回复 reply",
        "raw": body.encode(),
        "state": "sent",
        "call_id": call.id,
        "queued_at": mail["received_at"],
        "sent_at": mail["received_at"] + timedelta(seconds=30),
        "attempts": 1,
    }


STATUSES = ["accepted"] * 60 + ["needs_correction"] * 25 + ["late"] * 8 + ["withdrawn"] * 2
STATUSES += ["accepted_by_decision"] * 5


def fill(app: App, submissions: int, mails: int, seed: int = 7) -> dict[str, int]:
    """Write ``submissions`` submissions and ``mails`` mails in all; returns what was written."""
    rng = random.Random(seed)
    call = app.call
    names = _institutions(call)
    seen: set[tuple[str, str]] = set()
    rows: dict[str, list[dict[str, Any]]] = {"s": [], "m": [], "v": [], "r": []}
    mail_id = version_id = 0
    for seq in range(1, submissions + 1):
        institution = rng.choice(names)
        pi = rng.choice(SURNAMES) + "".join(rng.sample(GIVEN, 2))
        while (normalise_name(institution), normalise_name(pi)) in seen:
            pi += rng.choice(GIVEN)
        seen.add((normalise_name(institution), normalise_name(pi)))
        status = rng.choice(STATUSES)
        when = START + timedelta(minutes=seq * 2 + rng.randint(0, 60))
        sender = f"pi{seq}@{'cas' if institution.startswith('中国科学院') else 'uni'}.example.cn"
        title = "".join(rng.sample(WORDS, 3)) + f"研究 {seq}"
        versions = 0 if status == "late" else (2 if rng.random() < 0.3 else 1)
        for number in range(1, versions + 1):
            mail_id += 1
            version_id += 1
            form = _form(rng, title)
            mail = _mail(
                mail_id,
                call,
                when + timedelta(days=number - 1),
                sender,
                status="needs_correction" if number < versions else status,
                subject=f"合作专项建议书：{institution}+{pi}",
                institution=institution,
                pi=pi,
                submission_id=seq,
                form=form,
                pdf_pages=3,
            )
            rows["m"].append(mail)
            rows["v"].append(
                {
                    "id": version_id,
                    "submission_id": seq,
                    "number": number,
                    "mail_id": mail_id,
                    "kind": "new" if number == 1 else "resubmission",
                    "status": mail["status"],
                    "problems": [_problem("missing_pdf", "error")]
                    if mail["status"] == "needs_correction"
                    else [],
                    "files": [
                        {
                            "filename": f"{institution}+{pi}.pdf",
                            "role": "pdf",
                            "size": 1000,
                            "sha256": _hex("pdf", mail_id),
                        }
                    ],
                    "received_at": mail["received_at"],
                    "superseded": number < versions,
                    "form": form,
                    "pdf_pages": 3,
                }
            )
            rows["r"].append(_reply(mail_id, call, mail, seq))
        if status == "late":
            mail_id += 1
            rows["m"].append(
                _mail(
                    mail_id,
                    call,
                    when + timedelta(days=40),
                    sender,
                    status="late",
                    institution=institution,
                    pi=pi,
                    submission_id=seq,
                    subject=f"合作专项建议书：{institution}+{pi}",
                    problems=[_problem("late", "error")],
                )
            )
        rows["s"].append(
            {
                "id": seq,
                "call_id": call.id,
                "seq": seq,
                "reference": f"{call.call.reference_prefix}-{seq:04d}",
                "institution": institution,
                "pi": pi,
                "institution_key": normalise_name(institution),
                "pi_key": normalise_name(pi),
                "status": status,
                "current_version": versions,
                "created_at": when,
                "updated_at": when,
            }
        )
    others = ["ignored"] * 6 + ["bounce", "unparseable", "auth_failed"]
    while mail_id < mails:
        mail_id += 1
        kind = rng.choice(others)
        code = {"ignored": "auto_reply"}.get(kind, kind)
        rows["m"].append(
            _mail(
                mail_id,
                call,
                START + timedelta(minutes=mail_id),
                f"x{mail_id}@example.org",
                status="ignored",
                subject="自动回复 Out of office",
                problems=[_problem(code, "info")],
            )
        )
    with app.db.transaction() as session:
        session.execute(insert(Submission), rows["s"])
        for start in range(0, len(rows["m"]), 5000):
            session.execute(insert(Mail), rows["m"][start : start + 5000])
        session.execute(insert(Version), rows["v"])
        session.execute(insert(Reply), rows["r"])
    return {
        "submissions": len(rows["s"]),
        "mails": len(rows["m"]),
        "versions": len(rows["v"]),
        "replies": len(rows["r"]),
    }


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
    from tests.servers import Postgres

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
    import os
    import platform

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
