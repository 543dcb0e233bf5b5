"""The intake log: one row per submission as of its current version, filtered, sorted and
paged in SQL, so a page of 50 costs the same among 20 rows or 20,000."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any, TypeVar

from sqlalchemy import ColumnElement, Integer, Select, and_, func, select
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.orm import Session
from sqlalchemy.sql.functions import FunctionElement

from mailbot.calls import Call
from mailbot.ledger.facts import Facts, facts
from mailbot.ledger.search import matches
from mailbot.store.models import Mail, Submission, Version

PAGE_SIZES = (25, 50, 100, 200)
DEFAULT_PAGE_SIZE = 50
MAX_PAGE = 1_000_000


@dataclass(frozen=True)
class LogRow:
    """One submission in the log, as of its current version (its latest mail, if late)."""

    reference: str
    institution: str
    pi: str
    facts: Facts
    received_at: datetime | None
    status: str
    version: int
    sender: str
    problems: tuple[str, ...] = ()  # codes of the errors and warnings, not the notes


class _Partners(FunctionElement[int]):
    """How many partners a version's form lists; NULL when it lists none."""

    type = Integer()
    inherit_cache = True
    name = "partners"


@compiles(_Partners)
def _partners_postgresql(element: _Partners, compiler: Any, **kw: Any) -> str:
    form = compiler.process(element.clauses, **kw)
    partners = f"({form} -> 'partners')"
    return f"CASE WHEN json_typeof{partners} = 'array' THEN json_array_length{partners} END"


@compiles(_Partners, "sqlite")
def _partners_sqlite(element: _Partners, compiler: Any, **kw: Any) -> str:
    form = compiler.process(element.clauses, **kw)
    return f"json_array_length({form}, '$.partners')"


def _partners() -> ColumnElement[Any]:
    return _Partners(Version.form)


def _latest_mail() -> Any:
    return (
        select(func.max(Mail.id))
        .where(Mail.submission_id == Submission.id)
        .correlate(Submission)
        .scalar_subquery()
    )


def _received() -> ColumnElement[Any]:
    # The version knows when its mail came; a late submission has only its mail.
    late = (
        select(func.max(Mail.received_at))
        .where(Mail.submission_id == Submission.id)
        .correlate(Submission)
        .scalar_subquery()
    )
    return func.coalesce(Version.received_at, late)


def _late_mails() -> Any:
    """How many late mails came for the submission (a version before them still stands)."""
    return (
        select(func.count(Mail.id))
        .where(Mail.submission_id == Submission.id, Mail.status == "late")
        .correlate(Submission)
        .scalar_subquery()
    )


def _sender() -> ColumnElement[Any]:
    return (
        select(Mail.sender)
        .where(Mail.id == func.coalesce(Version.mail_id, _latest_mail()))
        .correlate(Submission, Version)
        .scalar_subquery()
    )


def _sorts() -> dict[str, ColumnElement[Any]]:
    return {
        "reference": Submission.seq,
        "institution": Submission.institution_key,
        "pi": Submission.pi_key,
        "title": Version.form["title"].as_string(),
        "focus_area": Version.form["focus_area"].as_string(),
        "budget": Version.form["budget_wan"].as_float(),
        "partners": _partners(),
        "received_at": _received(),
        "status": Submission.status,
        "version": Submission.current_version,
        "sender": _sender(),
    }


SORT_KEYS = tuple(_sorts())


@dataclass(frozen=True)
class LogQuery:
    """The log's filters, order and page, read from the address's query string."""

    status: str = ""
    focus_area: str = ""
    q: str = ""
    sort: str = "reference"
    descending: bool = False
    page: int = 1
    size: int = DEFAULT_PAGE_SIZE
    columns: tuple[str, ...] = field(default=())  # extra columns the reader chose

    @classmethod
    def from_args(cls, args: Mapping[str, str], optional: Sequence[str] = ()) -> LogQuery:
        sort = args.get("sort", "reference")
        size = _number(args.get("size"), DEFAULT_PAGE_SIZE)
        getlist = getattr(args, "getlist", None)
        chosen = getlist("col") if getlist else [args.get("col", "")]
        return cls(
            status=args.get("status", "").strip()[:32],
            focus_area=args.get("focus_area", "").strip()[:64],
            q=args.get("q", "").strip()[:200],
            sort=sort if sort in SORT_KEYS else "reference",
            descending=args.get("dir") == "desc",
            page=min(max(_number(args.get("page"), 1), 1), MAX_PAGE),
            size=size if size in PAGE_SIZES else DEFAULT_PAGE_SIZE,
            columns=tuple(c for c in optional if c in chosen),
        )

    def args(self, **changes: Any) -> dict[str, Any]:
        """The query string for this query, with some values changed (None drops one)."""
        values: dict[str, Any] = {
            "status": self.status,
            "focus_area": self.focus_area,
            "q": self.q,
            "sort": self.sort if self.sort != "reference" else "",
            "dir": "desc" if self.descending else "",
            "page": self.page if self.page != 1 else "",
            "size": self.size if self.size != DEFAULT_PAGE_SIZE else "",
            "col": list(self.columns),
            **changes,
        }
        return {k: v for k, v in values.items() if v not in ("", None, [])}

    def filters(self, call: Call) -> list[ColumnElement[bool]]:
        found: list[ColumnElement[bool]] = [Submission.call_id == call.id]
        if self.status:
            found.append(Submission.status == self.status)
        if self.focus_area == "-":
            found.append(Version.form["focus_area"].as_string().is_(None))
        elif self.focus_area:
            found.append(Version.form["focus_area"].as_string() == self.focus_area)
        if self.q:
            found.append(matches(call, self.q))
        return found

    def order(self) -> list[Any]:
        key = _sorts()[self.sort]
        # Unknown values last in either direction; the reference settles ties.
        first = key.desc().nulls_last() if self.descending else key.asc().nulls_last()
        return [first, Submission.seq.desc() if self.descending else Submission.seq]


def _number(value: str | None, default: int) -> int:
    text = (value or "").strip()
    return int(text) if text.isdigit() and len(text) <= 9 else default


Query = TypeVar("Query", bound="Select[*tuple[Any, ...]]")


def _keyed(statement: Query) -> Query:
    """Each submission with its current version: what the filters and the order read."""
    return statement.select_from(Submission).outerjoin(
        Version,
        and_(
            Version.submission_id == Submission.id,
            Version.number == Submission.current_version,
            Version.superseded.is_(False),
        ),
    )


def _joined(statement: Query) -> Query:
    """Each submission with its current version and the mail that stands for it."""
    return _keyed(statement).outerjoin(
        Mail, Mail.id == func.coalesce(Version.mail_id, _latest_mail())
    )


def _row(
    submission: Submission, version: Version | None, mail: Mail | None, late_mails: int = 0
) -> LogRow:
    problems = version.problems if version is not None else (mail.problems if mail else [])
    # A late mail to a submission with a version changes nothing, but the log says it came.
    late = ("late_mail",) if late_mails and version is not None else ()
    return LogRow(
        reference=submission.reference,
        institution=submission.institution,
        pi=submission.pi,
        facts=facts(version.form, version.pdf_pages) if version else Facts(),
        received_at=mail.received_at if mail else None,
        status=submission.status,
        version=submission.current_version,
        sender=(mail.sender or "") if mail else "",
        problems=tuple(
            str(p.get("code", ""))
            for p in problems
            if isinstance(p, dict) and p.get("severity") != "info"
        )
        + late,
    )


@dataclass(frozen=True)
class LogPage:
    rows: list[LogRow]
    matching: int  # rows the filters let through, on every page
    total: int  # submissions of the call
    query: LogQuery

    @property
    def pages(self) -> int:
        return max(1, -(-self.matching // self.query.size))

    @property
    def first(self) -> int:
        """The position of the page's first row in the filtered list, from 1."""
        return (self.query.page - 1) * self.query.size + 1 if self.rows else 0


def log_rows(session: Session, call: Call, query: LogQuery | None = None) -> list[LogRow]:
    """Every row the query lets through, in its order (the CLI log and the export)."""
    query = query or LogQuery()
    statement = _joined(select(Submission, Version, Mail, _late_mails())).where(
        *query.filters(call)
    )
    return [_row(*found) for found in session.execute(statement.order_by(*query.order()))]


def _rows_of(session: Session, ids: Sequence[int]) -> list[LogRow]:
    """The rows of these submissions, in this order."""
    found = {
        submission.id: _row(submission, version, mail, late)
        for submission, version, mail, late in session.execute(
            _joined(select(Submission, Version, Mail, _late_mails())).where(Submission.id.in_(ids))
        )
    }
    return [found[i] for i in ids]


def log_page(session: Session, call: Call, query: LogQuery) -> LogPage:
    """One page of the log; a page past the end shows the last.

    The filtered list is sorted on its keys alone and only the page's rows
    are read in full: the forms and problems of 20,000 rows never leave the
    database.
    """
    filters = query.filters(call)
    total = session.scalar(select(func.count(Submission.id)).where(*filters[:1])) or 0
    found = _page_ids(session, filters, query)
    if not found and query.page > 1:  # past the end: the last page
        matching = session.scalar(_keyed(select(func.count(Submission.id))).where(*filters)) or 0
        query = replace(query, page=max(1, -(-matching // query.size)))
        found = _page_ids(session, filters, query)
    matching = found[0][1] if found else 0
    ids = [submission_id for submission_id, _ in found]
    return LogPage(rows=_rows_of(session, ids), matching=matching, total=total, query=query)


def _page_ids(
    session: Session, filters: list[ColumnElement[bool]], query: LogQuery
) -> list[tuple[int, int]]:
    """The page's submission ids, each with the number of rows the filters let through."""
    statement = (
        _keyed(select(Submission.id, func.count().over()))
        .where(*filters)
        .order_by(*query.order())
        .limit(query.size)
        .offset((query.page - 1) * query.size)
    )
    return [(submission_id, matching) for submission_id, matching in session.execute(statement)]


@dataclass(frozen=True)
class Neighbours:
    """Where a submission stands in a filtered list: its place and the ones either side."""

    position: int  # from 1; 0 when the filters leave it out
    matching: int
    previous: str | None
    next: str | None


def neighbours(session: Session, call: Call, query: LogQuery, reference: str) -> Neighbours:
    """The references before and after ``reference`` in the list ``query`` describes."""
    order = query.order()
    numbered = (
        _keyed(
            select(
                Submission.reference.label("reference"),
                func.row_number().over(order_by=order).label("place"),
                func.lag(Submission.reference).over(order_by=order).label("previous"),
                func.lead(Submission.reference).over(order_by=order).label("next"),
                func.count().over().label("matching"),
            )
        )
        .where(*query.filters(call))
        .subquery("numbered")
    )
    found = session.execute(
        select(numbered.c.place, numbered.c.previous, numbered.c.next, numbered.c.matching).where(
            numbered.c.reference == reference
        )
    ).first()
    if found is None:
        return Neighbours(position=0, matching=0, previous=None, next=None)
    place, previous, following, matching = found
    return Neighbours(position=place, matching=matching, previous=previous, next=following)


def focus_areas_in_use(call: Call) -> list[str]:
    """The focus-area codes the log can filter on: the call's, and "-" for forms that said none."""
    areas = [area.code for area in call.form.focus_areas] if call.form else []
    return [*areas, "-"]


def statuses_in_use(session: Session, call: Call) -> list[str]:
    return list(
        session.scalars(select(Submission.status).where(Submission.call_id == call.id).distinct())
    )


def status_counts(session: Session, call: Call) -> dict[str, int]:
    """Submissions per status."""
    found = session.execute(
        select(Submission.status, func.count(Submission.id))
        .where(Submission.call_id == call.id)
        .group_by(Submission.status)
    )
    return {status: number for status, number in found}


def focus_area_counts(session: Session, call: Call) -> list[tuple[str, int]]:
    """Submissions per focus area of their current version, most first; "-" where unread."""
    area = Version.form["focus_area"].as_string()
    found = session.execute(
        _keyed(select(area, func.count(Submission.id)))
        .where(Submission.call_id == call.id)
        .group_by(area)
    )
    counts: dict[str, int] = {}
    for code, number in found:
        counts[code or "-"] = counts.get(code or "-", 0) + number
    return sorted(counts.items(), key=lambda item: (-item[1], item[0]))
