"""A call's mailbox in miniature: who writes, what they send, when, and what mailbot should say.

The mix follows a real call: about 60 % of mails are accepted (some of them
corrections of an earlier mail, or the missing PDF sent on its own), a
quarter need correction (misnamed files, no PDF, a wrong subject, funding or
period outside the call, too few foreign partners), some come after the
deadline, and some are auto-replies and bounces. Receipt times fall in July
2021 and crowd towards the deadline, 2021-07-30 24:00 Beijing time. Every
mail is built by tests/mailfactory/ as a real client sends it.
"""

from __future__ import annotations

import random
import re
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path

from bench.documents import KB, MB, DocumentPool, partners, proposal_docx, scan_pdf
from tests.docfactory import LABEL_SETS, STYLES, Form
from tests.mailfactory import build_mail
from tests.mailfactory.base import Att

BEIJING = timezone(timedelta(hours=8))
DEADLINE = datetime(2021, 7, 31, 0, 0, 0, tzinfo=BEIJING)
ROOT = Path(__file__).resolve().parent.parent

# kind -> (expected status, share of the mails)
MIX: dict[str, tuple[str, float]] = {
    "accepted": ("accepted", 0.60),
    "misnamed": ("needs_correction", 0.07),
    "no_pdf": ("needs_correction", 0.05),
    "budget": ("needs_correction", 0.04),
    "foreign": ("needs_correction", 0.03),
    "subject": ("needs_correction", 0.03),
    "period": ("needs_correction", 0.03),
    "late": ("late", 0.08),
    "autoreply": ("ignored", 0.05),
    "bounce": ("ignored", 0.02),
}
ANSWERED = [kind for kind, (status, _) in MIX.items() if status != "ignored"]
# Clients by how often CAS applicants use them (Coremail is CSTNET's webmail).
CLIENT_WEIGHTS = {
    "coremail": 40,
    "foxmail": 20,
    "outlook": 15,
    "qqmail": 12,
    "applemail": 7,
    "gmail": 6,
}
SURNAMES = (
    ("张", "zhang"), ("王", "wang"), ("李", "li"), ("刘", "liu"), ("陈", "chen"), ("杨", "yang"),
    ("赵", "zhao"), ("黄", "huang"), ("周", "zhou"), ("吴", "wu"), ("徐", "xu"), ("孙", "sun"),
    ("胡", "hu"), ("朱", "zhu"), ("高", "gao"), ("林", "lin"), ("何", "he"), ("郭", "guo"),
    ("马", "ma"), ("罗", "luo"), ("梁", "liang"), ("宋", "song"), ("郑", "zheng"), ("谢", "xie"),
)  # fmt: skip
GIVEN = (
    ("伟", "wei"), ("芳", "fang"), ("娜", "na"), ("敏", "min"), ("静", "jing"), ("磊", "lei"),
    ("强", "qiang"), ("洋", "yang"), ("艳", "yan"), ("勇", "yong"), ("军", "jun"), ("杰", "jie"),
    ("涛", "tao"), ("明", "ming"), ("超", "chao"), ("秀英", "xiuying"), ("建华", "jianhua"),
    ("晓东", "xiaodong"), ("海燕", "haiyan"), ("志强", "zhiqiang"), ("丽", "li"), ("鹏", "peng"),
    ("嘉怡", "jiayi"), ("子涵", "zihan"), ("宇航", "yuhang"), ("喆", "zhe"), ("堃", "kun"),
)  # fmt: skip


@dataclass(frozen=True)
class Applicant:
    institution: str
    pi: str
    address: str
    client: str

    @property
    def stem(self) -> str:
        return f"{self.institution}+{self.pi}"


@dataclass(frozen=True)
class Planned:
    """One mail to build: what kind, from whom, received when, and the verdict it should get."""

    index: int
    kind: str
    expected: str
    applicant: Applicant
    received_at: datetime
    completes: bool = False  # sends only the PDF that an earlier mail lacked
    resubmits: bool = False  # corrects an earlier mail


def _institutes() -> list[tuple[str, str]]:
    """(Chinese name, mail domain) for each CAS institute in the rules' list."""
    found = []
    for line in (ROOT / "rules" / "cas_institutes.txt").read_text(encoding="utf-8").splitlines():
        if not line.strip() or line.startswith("#"):
            continue
        zh, _, en = (part.strip() for part in line.partition("|"))
        initials = "".join(w[0] for w in re.findall(r"[A-Za-z]+", en) if w[0].isupper()).lower()
        found.append((zh, f"{initials or 'cas'}.ac.cn"))
    return found


class Applicants:
    """Distinct applicants (institution, PI, address), each answered at their own address."""

    def __init__(self, rng: random.Random) -> None:
        self.rng = rng
        self.institutes = _institutes()
        self.used: set[tuple[str, str]] = set()
        self.addresses: set[str] = set()

    def new(self) -> Applicant:
        while True:
            institution, domain = self.rng.choice(self.institutes)
            (sur, sur_py), (giv, giv_py) = self.rng.choice(SURNAMES), self.rng.choice(GIVEN)
            if len(giv) == 1 and self.rng.random() < 0.5:
                extra, extra_py = self.rng.choice(GIVEN)
                giv, giv_py = giv + extra[0], giv_py + extra_py
            if (institution, sur + giv) not in self.used:
                break
        self.used.add((institution, sur + giv))
        client = self.rng.choices(list(CLIENT_WEIGHTS), weights=list(CLIENT_WEIGHTS.values()))[0]
        local = f"{sur_py}{giv_py}"
        if client == "qqmail":
            local, domain = str(self.rng.randint(10_000_000, 2_999_999_999)), "qq.com"
        elif client == "gmail":
            local, domain = f"{local}.{sur_py}", "gmail.com"
        address = f"{local}@{domain}"
        serial = 2
        while address in self.addresses:
            address = f"{local}{serial}@{domain}"
            serial += 1
        self.addresses.add(address)
        return Applicant(institution, sur + giv, address, client)


def _counts(n: int, kinds: list[str]) -> dict[str, int]:
    """How many of each kind among n mails: the shares, by largest remainder."""
    total = sum(MIX[k][1] for k in kinds)
    exact = {k: n * MIX[k][1] / total for k in kinds}
    counts = {k: int(v) for k, v in exact.items()}
    for k in sorted(kinds, key=lambda k: exact[k] - counts[k], reverse=True)[
        : n - sum(counts.values())
    ]:
        counts[k] += 1
    return counts


def _receipt_time(rng: random.Random, late: bool) -> datetime:
    if late:
        return DEADLINE + timedelta(seconds=rng.uniform(1, 14 * 3600))
    # Most mail comes in the call's last days, the last day above all.
    day = rng.choices(range(1, 31), weights=[1 + (d / 30) ** 6 * 60 for d in range(1, 31)])[0]
    start = datetime(2021, 7, day, 7, 0, tzinfo=BEIJING)
    end = DEADLINE if day == 30 else start + timedelta(hours=16)
    return start + timedelta(seconds=rng.uniform(0, (end - start).total_seconds() - 1))


def plan(n: int, seed: int = 7, *, answered_only: bool = False) -> list[Planned]:
    """n mails in the order the mailbox received them."""
    rng = random.Random(seed)
    people = Applicants(rng)
    kinds = ANSWERED if answered_only else list(MIX)
    pool = [kind for kind, count in _counts(n, kinds).items() for _ in range(count)]
    rng.shuffle(pool)
    timed = sorted(
        ((_receipt_time(rng, kind == "late"), kind) for kind in pool), key=lambda x: x[0]
    )
    open_corrections: list[tuple[str, Applicant]] = []
    planned = []
    for index, (when, kind) in enumerate(timed):
        applicant, completes, resubmits = people.new(), False, False
        if kind == "accepted" and open_corrections and rng.random() < 0.5:
            earlier_kind, applicant = open_corrections.pop(0)
            completes, resubmits = earlier_kind == "no_pdf", earlier_kind != "no_pdf"
        elif kind in ("misnamed", "no_pdf", "budget", "foreign", "period"):
            open_corrections.append((kind, applicant))
        # A mail that brings only the missing PDF lacks the Word file on its own: the mail is
        # recorded as needing correction, and its submission (and the reply) as accepted.
        expected = "needs_correction" if completes else MIX[kind][0]
        planned.append(Planned(index, kind, expected, applicant, when, completes, resubmits))
    return planned


class MailBuilder:
    """Turns a Planned mail into the bytes the applicant's client sends."""

    def __init__(self, seed: int = 7) -> None:
        self.pool = DocumentPool(seed)
        self.seed = seed

    def build(self, item: Planned, *, scan_size: int | None = None) -> bytes:
        rng = random.Random(f"{self.seed}|{item.index}|{item.kind}")
        a, when = item.applicant, item.received_at
        sent = when - timedelta(seconds=rng.uniform(2, 40))
        notice = _notice(item, sent)
        if notice is not None:
            return notice
        form = Form(
            institution=a.institution,
            pi=a.pi,
            budget=rng.choice(["120", "150万元", "100", "135.5万", "1,200,000元"]),
            period=rng.choice(["2022年1月-2024年12月", "2022.01-2024.12", "2022-01 至 2024-12"]),
            focus=rng.choice(
                ["☑粮食安全 □生命健康 □低碳环保", "生命健康", "□粮食安全 □生命健康 ☑低碳环保"]
            ),
            partners=partners(
                rng, foreign := rng.randint(2, 4), rng.randint(max(0, 3 - foreign), 2)
            ),
            labels=rng.choice(LABEL_SETS),
            style=rng.choice(STYLES),
        )
        if item.kind == "budget":
            form.budget = rng.choice(["200", "80万元"])
        elif item.kind == "foreign":
            form.partners = partners(rng, 1, 2)
        elif item.kind == "period":
            form.period = "2022年1月-2025年12月"
        word = proposal_docx(self.pool, rng, form, rng.randint(50 * KB, 200 * KB))
        scan = scan_pdf(self.pool, rng, scan_size or rng.randint(1 * MB, 5 * MB), a.stem, sent)
        agreement = scan_pdf(
            self.pool, rng, rng.randint(100 * KB, 600 * KB), "合作协议", sent, small=True
        )
        stem = a.stem
        files = _attachments(item, stem, word, scan, agreement)
        subject = f"合作专项建议书：{stem}"
        if item.kind == "subject":
            subject = f"ANSO项目申请-{a.pi}"
        elif item.resubmits:
            subject = f"Re: {subject}"
        return build_mail(
            a.client,
            subject=subject,
            attachments=files,
            sender=(a.pi, a.address),
            date=sent,
            received_at=when,
            body=f"尊敬的ANSO秘书处：\n\n您好！附件是{a.institution}{a.pi}团队的合作专项建议书"
            "（Word 版和签字盖章扫描版）及合作协议，请查收。\n\n此致\n敬礼！\n\n"
            f"{a.pi}\n{a.institution}",
        )


def _notice(item: Planned, sent: datetime) -> bytes | None:
    """The automatic mails (an auto-reply, a bounce), or None for an applicant's own."""
    a, when = item.applicant, item.received_at
    if item.kind == "autoreply":
        return build_mail(
            "outlook",
            subject=f"自动回复: 合作专项建议书：{a.stem}",
            sender=(a.pi, a.address),
            date=sent,
            received_at=when,
            body="您好，我目前外出参加野外考察，7月31日返回，期间回复可能不及时。",
            headers=[("Auto-Submitted", "auto-replied"), ("X-Auto-Response-Suppress", "All")],
        )
    if item.kind == "bounce":
        return build_mail(
            "raw_utf8",
            subject="Undelivered Mail Returned to Sender",
            sender=("Mail Delivery System", "MAILER-DAEMON@mx.example.org"),
            date=sent,
            received_at=when,
            body=f"This is the mail system at host mx.example.org.\n\n<{a.address}>: "
            "host mx.example.org said: 550 5.1.1 mailbox unavailable",
        )
    return None


def _attachments(item: Planned, stem: str, word: bytes, scan: bytes, agreement: bytes) -> list[Att]:
    """The files the applicant attaches, named and left out as the item's kind says."""
    files = [
        Att(f"{stem}.docx", word),
        Att(f"{stem}.pdf", scan),
        Att("合作协议.pdf", agreement),
    ]
    if item.kind == "misnamed":
        files = [
            Att("建议书.docx", word),
            Att("scan.pdf", scan),
            Att("合作协议.pdf", agreement),
        ]
    elif item.kind == "no_pdf":
        files = [files[0], files[2]]
    elif item.completes:
        files = [Att(f"{stem}（盖章版）.pdf", scan)]
    return files


def small_mails(n: int, start: int = 0, seed: int = 11) -> Iterator[tuple[bytes, datetime, str]]:
    """Short mails for the idle measurements: (raw, receipt time, Message-ID)."""
    rng = random.Random(seed + start)
    for index in range(start, start + n):
        when = datetime(2021, 7, 1, tzinfo=BEIJING) + timedelta(
            seconds=index * 250 + rng.randint(0, 200)
        )
        message_id = f"<bench.{index}.{rng.getrandbits(48):x}@example.ac.cn>"
        raw = build_mail(
            rng.choice(list(CLIENT_WEIGHTS)),
            subject=f"合作专项建议书：中国科学院第{index}研究所+张{index}",
            sender=(f"张{index}", f"pi{index}@example.ac.cn"),
            date=when - timedelta(seconds=5),
            received_at=when,
            message_id=message_id,
        )
        yield raw, when, message_id


_MESSAGE_ID = re.compile(rb"^Message-ID:\s*(<[^>\r\n]+>)", re.IGNORECASE | re.MULTILINE)


def message_id(raw: bytes) -> str:
    head = raw.split(b"\r\n\r\n", 1)[0]
    match = _MESSAGE_ID.search(head)
    return match.group(1).decode() if match else ""
