"""What the desk's pages show, read from the database: the overview, the log, one submission."""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session, selectinload

from mailbot.calls import Call, normalise_name
from mailbot.store.models import Mail, Submission, Version
from mailbot.web.labels import STATUSES

# Problem codes that mark mail a person must look at though nobody answers it.
FLAG_CODES = frozenset({"bounce"})
FLAG_PREFIXES = ("auth", "spf", "dkim", "dmarc")  # failed sender authentication
UNREADABLE_CODES = frozenset({"unparseable", "unjudged"})
UNMATCHED_KINDS = ("flagged", "unparseable", "ignored")


@dataclass(frozen=True)
class Facts:
    """What the Word form says (issue 4 fills Version.form); None where unknown."""

    title: str | None = None
    focus_area: str | None = None
    budget_wan: float | None = None
    period: str | None = None
    partners: int | None = None
    foreign_partners: int | None = None
    pdf_pages: int | None = None


def facts(form: Mapping[str, Any] | None, pdf_pages: int | None = None) -> Facts:
    if not form:
        return Facts(pdf_pages=pdf_pages)
    period = form.get("period")
    if isinstance(period, Mapping):
        period = f"{period.get('start') or '?'} – {period.get('end') or '?'}"
    partners = form.get("partners")
    total = foreign = None
    if isinstance(partners, list):
        total = len(partners)
        foreign = sum(1 for p in partners if isinstance(p, Mapping) and p.get("foreign"))
    budget = form.get("budget_wan")
    return Facts(
        title=_text(form.get("title")),
        focus_area=_text(form.get("focus_area")),
        budget_wan=float(budget) if isinstance(budget, int | float) else None,
        period=_text(period),
        partners=total,
        foreign_partners=foreign,
        pdf_pages=pdf_pages,
    )


def _text(value: Any) -> str | None:
    return str(value) if value not in (None, "") else None


def focus_areas(call: Call) -> dict[str, tuple[str, str]]:
    """Focus area codes to (Chinese, English) names, from the rules' [form] when it has one."""
    form = getattr(call, "form", None)  # the [form] section of the rules (issue 4)
    areas = getattr(form, "focus_areas", None) or []
    return {area.code: (area.zh, area.en) for area in areas}


# --------------------------------------------------------------------------- the intake log


@dataclass(frozen=True)
class Row:
    """One submission in the intake log, as of its current version."""

    reference: str
    institution: str
    pi: str
    facts: Facts
    received_at: datetime | None
    status: str
    version: int
    sender: str


def current_version(submission: Submission) -> Version | None:
    return next((v for v in reversed(submission.versions) if not v.superseded), None)


def log_rows(session: Session, call: Call) -> list[Row]:
    """One row per submission; its latest mail stands in when there is no version (late)."""
    submissions = session.scalars(
        select(Submission)
        .where(Submission.call_id == call.id)
        .options(
            selectinload(Submission.versions).selectinload(Version.mail),
            selectinload(Submission.mails),
        )
        .order_by(Submission.seq)
    ).all()
    rows = []
    for submission in submissions:
        version = current_version(submission)
        mail = version.mail if version else (submission.mails[-1] if submission.mails else None)
        rows.append(
            Row(
                reference=submission.reference,
                institution=submission.institution,
                pi=submission.pi,
                facts=facts(version.form, version.pdf_pages) if version else Facts(),
                received_at=mail.received_at if mail else None,
                status=submission.status,
                version=submission.current_version,
                sender=(mail.sender or "") if mail else "",
            )
        )
    return rows


SORTS: dict[str, Any] = {
    "reference": lambda r: r.reference,
    "institution": lambda r: r.institution,
    "pi": lambda r: r.pi,
    "title": lambda r: r.facts.title,
    "focus_area": lambda r: r.facts.focus_area,
    "budget": lambda r: r.facts.budget_wan,
    "partners": lambda r: r.facts.partners,
    "received_at": lambda r: r.received_at,
    "status": lambda r: r.status,
    "version": lambda r: r.version,
}


@dataclass(frozen=True)
class LogQuery:
    """The log's filters and order, read from the address's query string."""

    status: str = ""
    focus_area: str = ""
    q: str = ""
    sort: str = "reference"
    descending: bool = False

    @classmethod
    def from_args(cls, args: Mapping[str, str]) -> LogQuery:
        sort = args.get("sort", "reference")
        return cls(
            status=args.get("status", "").strip()[:32],
            focus_area=args.get("focus_area", "").strip()[:64],
            q=args.get("q", "").strip()[:200],
            sort=sort if sort in SORTS else "reference",
            descending=args.get("dir") == "desc",
        )

    def args(self, **changes: str) -> dict[str, str]:
        """The query string for this query, with some values changed."""
        values = {
            "status": self.status,
            "focus_area": self.focus_area,
            "q": self.q,
            "sort": self.sort,
            "dir": "desc" if self.descending else "asc",
            **changes,
        }
        return {k: v for k, v in values.items() if v}

    def apply(self, rows: Sequence[Row]) -> list[Row]:
        wanted = normalise_name(self.q)
        chosen = [
            row
            for row in rows
            if (not self.status or row.status == self.status)
            and (not self.focus_area or (row.facts.focus_area or "-") == self.focus_area)
            and (
                not wanted
                or any(
                    wanted in normalise_name(text)
                    for text in (row.institution, row.pi, row.reference)
                )
            )
        ]
        key = SORTS[self.sort]
        present = [row for row in chosen if key(row) is not None]
        missing = [row for row in chosen if key(row) is None]  # unknown values last, always
        present.sort(key=lambda row: (key(row), row.reference), reverse=self.descending)
        return present + missing


# --------------------------------------------------------------------------- the overview


@dataclass(frozen=True)
class Overview:
    submissions: int
    by_status: list[tuple[str, int]]
    per_day: list[tuple[date, int]]
    by_focus_area: list[tuple[str, int]]
    mails: int
    unmatched: dict[str, int]
    deadline: datetime
    left: timedelta


MAX_DAYS = 62
STATUS_ORDER = {status: index for index, status in enumerate(STATUSES)}


def overview(session: Session, call: Call, rows: Sequence[Row], now: datetime) -> Overview:
    first_mails = session.execute(
        select(Mail.submission_id, func.min(Mail.received_at))
        .where(Mail.call_id == call.id, Mail.submission_id.is_not(None))
        .group_by(Mail.submission_id)
    ).all()
    days = Counter(call.local(received).date() for _, received in first_mails)
    per_day: list[tuple[date, int]] = []
    if days:
        start = min(days)
        end = max(max(days), min(call.local(now).date(), call.local(call.deadline).date()))
        start = max(start, end - timedelta(days=MAX_DAYS - 1))
        per_day = [
            (start + timedelta(days=n), days.get(start + timedelta(days=n), 0))
            for n in range((end - start).days + 1)
        ]
    mails = session.scalar(select(func.count(Mail.id)).where(Mail.call_id == call.id)) or 0
    kinds = Counter(mail_kind(mail) for mail in unmatched_mails(session, call))
    return Overview(
        submissions=len(rows),
        by_status=sorted(
            Counter(row.status for row in rows).items(),
            key=lambda item: (STATUS_ORDER.get(item[0], len(STATUS_ORDER)), item[0]),
        ),
        per_day=per_day,
        by_focus_area=Counter(row.facts.focus_area or "-" for row in rows).most_common(),
        mails=mails,
        unmatched={kind: kinds.get(kind, 0) for kind in UNMATCHED_KINDS},
        deadline=call.local(call.deadline),
        left=call.deadline - now,
    )


# --------------------------------------------------------------------------- mail tied to nothing


def codes(problems: Sequence[Any]) -> list[str]:
    return [str(p.get("code", "")) for p in problems if isinstance(p, Mapping)]


def mail_kind(mail: Mail) -> str:
    """flagged (bounce, failed authentication), unparseable, or ignored."""
    found = set(codes(mail.problems))
    if found & FLAG_CODES or any(code.startswith(FLAG_PREFIXES) for code in found):
        return "flagged"
    # A mail the daemon would answer but could tie to no submission had no readable subject.
    if found & UNREADABLE_CODES or mail.status != "ignored":
        return "unparseable"
    return "ignored"


def unmatched_mails(
    session: Session, call: Call, kind: str = "", *, handled: bool = False
) -> list[Mail]:
    """Mail tied to no submission that a person has not dealt with (or all of it: handled)."""
    wanted = select(Mail).where(Mail.call_id == call.id, Mail.submission_id.is_(None))
    if not handled:
        wanted = wanted.where(Mail.handled_at.is_(None))
    mails = session.scalars(wanted.order_by(Mail.received_at.desc(), Mail.id.desc())).all()
    return [mail for mail in mails if not kind or mail_kind(mail) == kind]
