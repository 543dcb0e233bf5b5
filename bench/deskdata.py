"""The desk benchmark's database: submissions, versions, replies and other mail, written as
rows in a few bulk inserts (nothing judged), with July 2021 receipt times."""

from __future__ import annotations

import hashlib
import random
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import insert

from mailbot.app import App
from mailbot.calls import Call, normalise_name
from mailbot.store.models import Base, Mail, Reply, Submission, Version

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


def _problem(code: str, severity: str) -> dict[str, str]:
    return {"code": code, "severity": severity, "message_zh": code, "message_en": code}


def _hex(*parts: object) -> str:
    return hashlib.sha256("/".join(map(str, parts)).encode()).hexdigest()


def _institutions(call: Call) -> list[str]:
    # Each institute by its full name, as submissions are keyed (mailbot.institutes).
    cas = [line[0] for line in call.institution_lists.cas_institute_lines if line]
    return cas + UNIVERSITIES


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
OTHERS = ["auto_reply"] * 6 + ["bounce", "unparseable", "auth_failed"]


class Rows:
    """The rows of a filled database, built in memory and written in a few bulk inserts."""

    def __init__(self, call: Call, seed: int) -> None:
        self.call = call
        self.rng = random.Random(seed)
        self.names = _institutions(call)
        self.seen: set[tuple[str, str]] = set()
        self.tables: dict[type[Base], list[dict[str, Any]]] = {
            Submission: [],
            Mail: [],
            Version: [],
            Reply: [],
        }

    def _identity(self) -> tuple[str, str]:
        institution = self.rng.choice(self.names)
        pi = self.rng.choice(SURNAMES) + "".join(self.rng.sample(GIVEN, 2))
        while (normalise_name(institution), normalise_name(pi)) in self.seen:
            pi += self.rng.choice(GIVEN)
        self.seen.add((normalise_name(institution), normalise_name(pi)))
        return institution, pi

    def submission(self, seq: int) -> None:
        institution, pi = self._identity()
        status = self.rng.choice(STATUSES)
        when = START + timedelta(minutes=seq * 2 + self.rng.randint(0, 60))
        domain = "cas" if institution.startswith("中国科学院") else "uni"
        values = {
            "sender": f"pi{seq}@{domain}.example.cn",
            "subject": f"合作专项建议书：{institution}+{pi}",
            "institution": institution,
            "pi": pi,
            "submission_id": seq,
        }
        versions = 0 if status == "late" else (2 if self.rng.random() < 0.3 else 1)
        title = "".join(self.rng.sample(WORDS, 3)) + f"研究 {seq}"
        for number in range(1, versions + 1):
            status_then = "needs_correction" if number < versions else status
            self.version(number, versions, status_then, when, title, values)
        if status == "late":
            late = when + timedelta(days=40)
            self.mail(late, status="late", problems=[_problem("late", "error")], **values)
        self.tables[Submission].append(
            {
                "id": seq,
                "call_id": self.call.id,
                "seq": seq,
                "reference": f"{self.call.call.reference_prefix}-{seq:04d}",
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

    def version(
        self, number: int, of: int, status: str, when: datetime, title: str, values: dict[str, Any]
    ) -> None:
        form = _form(self.rng, title)
        mail = self.mail(
            when + timedelta(days=number - 1), status=status, form=form, pdf_pages=3, **values
        )
        problems = [_problem("missing_pdf", "error")] if status == "needs_correction" else []
        pdf = {
            "filename": f"{values['subject']}.pdf",
            "role": "pdf",
            "size": 1000,
            "sha256": _hex("pdf", mail["id"]),
        }
        self.tables[Version].append(
            {
                "id": len(self.tables[Version]) + 1,
                "submission_id": values["submission_id"],
                "number": number,
                "mail_id": mail["id"],
                "kind": "new" if number == 1 else "resubmission",
                "status": status,
                "problems": problems,
                "files": [pdf],
                "received_at": mail["received_at"],
                "superseded": number < of,
                "form": form,
                "pdf_pages": 3,
            }
        )
        self.tables[Reply].append(_reply(mail["id"], self.call, mail, values["submission_id"]))

    def mail(self, when: datetime, **values: Any) -> dict[str, Any]:
        mail_id = len(self.tables[Mail]) + 1
        row = _mail(mail_id, self.call, when, values.pop("sender", f"x{mail_id}@example.org"))
        row.update(values)
        self.tables[Mail].append(row)
        return row

    def others(self, mails: int) -> None:
        """Mail tied to no submission (auto-replies, bounces, unreadable) up to ``mails``."""
        while len(self.tables[Mail]) < mails:
            code = self.rng.choice(OTHERS)
            when = START + timedelta(minutes=len(self.tables[Mail]))
            self.mail(
                when,
                status="ignored",
                subject="自动回复 Out of office",
                problems=[_problem(code, "info")],
            )

    def write(self, app: App) -> dict[str, int]:
        with app.db.transaction() as session:
            for model in (Submission, Mail, Version, Reply):
                rows = self.tables[model]
                for start in range(0, len(rows), 5000):
                    session.execute(insert(model), rows[start : start + 5000])
        return {str(model.__tablename__): len(rows) for model, rows in self.tables.items()}


def fill(app: App, submissions: int, mails: int, seed: int = 7) -> dict[str, int]:
    """Write ``submissions`` submissions and ``mails`` mails in all; returns the rows written."""
    rows = Rows(app.call, seed)
    for seq in range(1, submissions + 1):
        rows.submission(seq)
    rows.others(mails)
    return rows.write(app)
