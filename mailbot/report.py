"""The secretariat's view: the intake log, one submission in full, and the export."""

from __future__ import annotations

import csv
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session, selectinload

from mailbot.calls import Call
from mailbot.counting import count
from mailbot.errors import MailbotError
from mailbot.names import shown
from mailbot.problem_words import problem_words
from mailbot.replies.outbox import BOUNCED
from mailbot.store.models import Mail, Reply, Submission, Version

LOG_COLUMNS = (
    ("reference", "编号 Reference"),
    ("institution", "牵头单位 Institution"),
    ("pi", "负责人 PI"),
    ("received_at", "收到时间 Received (Beijing)"),
    ("status", "状态 Status"),
    ("version", "版本 Version"),
    ("sender", "发件人 Sender"),
    ("problems", "问题 Problems"),
)
# The export carries what the form says too (the terminal log stays narrow).
EXPORT_COLUMNS = (
    *LOG_COLUMNS[:3],
    ("title", "项目名称 Title"),
    ("focus_area", "资助领域 Focus area"),
    ("budget_wan", "申请经费（万元）Funding (10k CNY)"),
    ("period", "执行期限 Period"),
    ("partners", "合作单位 总/境外/ANSO Partners total/foreign/ANSO"),
    ("pdf_pages", "PDF 页数 PDF pages"),
    *LOG_COLUMNS[3:],
)


@dataclass(frozen=True)
class LogRow:
    reference: str
    institution: str
    pi: str
    received_at: str
    status: str
    version: int
    sender: str
    problems: str
    title: str = ""
    focus_area: str = ""
    budget_wan: float | None = None
    period: str = ""
    partners: str = ""  # "total/foreign/ANSO members"
    pdf_pages: int | None = None

    def as_dict(self, columns: tuple[tuple[str, str], ...] = LOG_COLUMNS) -> dict[str, Any]:
        return {name: getattr(self, name) for name, _ in columns}


def intake_log(session: Session, call: Call) -> list[LogRow]:
    """One row per submission, with its latest version (or its latest mail, if late)."""
    submissions = session.scalars(
        select(Submission)
        .where(Submission.call_id == call.id)
        .options(selectinload(Submission.versions), selectinload(Submission.mails))
        .order_by(Submission.seq)
    ).all()
    rows = []
    for submission in submissions:
        version = next((v for v in reversed(submission.versions) if not v.superseded), None)
        mail = (
            version.mail
            if version is not None
            else (submission.mails[-1] if submission.mails else None)
        )
        problems = version.problems if version is not None else (mail.problems if mail else [])
        form = (version.form if version is not None else mail.form if mail else None) or {}
        partners = form.get("partners") or []
        period = form.get("period") or {}
        rows.append(
            LogRow(
                reference=submission.reference,
                institution=submission.institution,
                pi=submission.pi,
                received_at=_local(call, mail.received_at) if mail else "",
                status=submission.status,
                version=submission.current_version,
                sender=mail.sender or "" if mail else "",
                problems=problem_words(p["code"] for p in problems if p["severity"] != "info"),
                title=form.get("title") or "",
                focus_area=_focus_name(call, form.get("focus_area")),
                budget_wan=form.get("budget_wan"),
                period=f"{period['start']}–{period['end']}" if period else "",
                partners=(
                    f"{len(partners)}/{sum(1 for p in partners if p['foreign'])}/"
                    f"{sum(1 for p in partners if p['anso_member'])}"
                    if form
                    else ""
                ),
                pdf_pages=version.pdf_pages
                if version is not None
                else mail.pdf_pages
                if mail
                else None,
            )
        )
    return rows


def unmatched_mails(session: Session, call: Call) -> list[Mail]:
    """Mail tied to no submission: ignored, or without a readable institution and PI."""
    return list(
        session.scalars(
            select(Mail)
            .where(Mail.call_id == call.id, Mail.submission_id.is_(None))
            .order_by(Mail.received_at, Mail.id)
        )
    )


def _focus_name(call: Call, code: str | None) -> str:
    areas = {a.code: f"{a.zh} {a.en}" for a in call.form.focus_areas} if call.form else {}
    return areas.get(code or "", code or "")


def _local(call: Call, moment: Any) -> str:
    return str(call.local(moment).strftime("%Y-%m-%d %H:%M:%S"))


def format_log(rows: list[LogRow], others: list[Mail], call: Call) -> str:
    """The intake log as a table for a terminal."""
    header = [title for _, title in LOG_COLUMNS]
    table = [[str(v) for v in row.as_dict().values()] for row in rows]
    widths = [
        max(_width(h), *(_width(r[i]) for r in table)) if table else _width(h)
        for i, h in enumerate(header)
    ]
    lines = [_row(header, widths), _row(["-" * w for w in widths], widths)]
    lines += [_row(r, widths) for r in table]
    counts: dict[str, int] = {}
    for row in rows:
        counts[row.status] = counts.get(row.status, 0) + 1
    summary = ", ".join(f"{k} {v}" for k, v in sorted(counts.items()))
    lines.append("")
    lines.append(f"{count(len(rows), 'submission')} ({summary or 'none'}) for {call.call.name_en}")
    if others:
        lines.append(f"{count(len(others), 'mail')} without a submission:")
        for mail in others:
            words = problem_words(p["code"] for p in mail.problems) or "-"
            lines.append(
                f"  {_local(call, mail.received_at)}  {mail.status:<16} {words}  "
                f"{mail.sender or '?'}  {mail.subject[:60]!r}"
            )
    return "\n".join(lines)


def _width(text: str) -> int:
    # East Asian wide characters take two terminal columns.
    import unicodedata

    return sum(2 if unicodedata.east_asian_width(c) in "WF" else 1 for c in text)


def _row(cells: list[str], widths: list[int]) -> str:
    return "  ".join(c + " " * (w - _width(c)) for c, w in zip(cells, widths, strict=True)).rstrip()


def show(session: Session, call: Call, reference: str) -> str:
    """One submission with all its versions, mails and replies, for a person."""
    submission = session.scalar(
        select(Submission).where(Submission.reference == reference.strip().upper())
    )
    if submission is None:
        raise MailbotError(f"no submission {reference}")
    lines = [
        f"{submission.reference}  {submission.institution} + {submission.pi}",
        f"状态 Status: {submission.status}   "
        f"当前版本 Current version: {submission.current_version}",
        "",
    ]
    bounced = session.scalars(
        select(Reply)
        .where(Reply.submission_id == submission.id, Reply.state == BOUNCED)
        .order_by(Reply.id)
    ).all()
    if bounced:
        lines.append("退信 Bounced replies: 请另行联系申请人 Reach the applicant another way")
        lines += [
            f"  回复 Reply {r.id} {r.template} to {r.to_address}: {r.last_error or ''}"
            for r in bounced
        ]
        lines.append("")
    copies: dict[int, list[Mail]] = {}
    for copy in session.scalars(
        select(Mail)
        .where(Mail.duplicate_of_id.in_([m.id for m in submission.mails]))
        .order_by(Mail.id)
    ):
        copies.setdefault(copy.duplicate_of_id or 0, []).append(copy)
    versions = {v.mail_id: v for v in submission.versions}
    for mail in submission.mails:
        version: Version | None = versions.get(mail.id)
        if version is not None:
            state = "superseded" if version.superseded else "current"
            title = f"版本 Version {version.number} ({version.kind}, {state}): {version.status}"
        else:
            title = f"邮件 Mail (no version): {mail.status}"
        lines.append(title)
        lines.append(f"  收到 Received: {_local(call, mail.received_at)} (Beijing time)")
        lines.append(f"  发件人 From:   {mail.sender_name} <{mail.sender}>")
        lines.append(f"  主题 Subject:  {mail.subject}")
        lines.append(f"  Message-ID:    {mail.message_id}")
        problems = version.problems if version is not None else mail.problems
        form = version.form if version is not None else mail.form
        if form:
            lines.extend(f"  {line}" for line in describe_form(call, form))
        pdf_pages = version.pdf_pages if version is not None else mail.pdf_pages
        if pdf_pages is not None:
            lines.append(f"  PDF 页数 PDF pages: {pdf_pages}")
        for problem in problems:
            lines.append(
                f"  [{problem['severity']}] {problem['code']}: {problem.get('message_zh', '')}"
            )
        files = (
            version.files
            if version is not None
            else [
                {"filename": a.filename, "role": a.role, "size": a.size, "sha256": a.sha256}
                for a in mail.attachments
            ]
        )
        for item in files:
            lines.append(
                f"  {item['role']:<10} {shown(str(item['filename']))}  {item['size']:,} B  "
                f"{item['sha256']}"
            )
        for reply in mail.replies:
            lines.append(_reply_line(call, reply))
        for copy in copies.get(mail.id, []):
            lines.append(
                f"  另一副本 Another copy: mail {copy.id}, received "
                f"{_local(call, copy.received_at)}, recorded as a duplicate, not answered"
            )
        lines.append("")
    return "\n".join(lines).rstrip()


def describe_form(call: Call, form: dict[str, Any]) -> list[str]:
    """What the Word form says, for a person."""
    period = form.get("period") or {}
    partners = form.get("partners") or []
    budget = form.get("budget_wan")
    lines = [
        f"项目名称 Title:      {form.get('title') or '-'}",
        f"资助领域 Focus area: {_focus_name(call, form.get('focus_area')) or '-'}",
        f"申请经费 Funding:    {f'{budget:g} 万元 (10k CNY)' if budget is not None else '-'}",
        f"执行期限 Period:     {period.get('start', '-')} – {period.get('end', '-')}",
        f"合作单位 Partners:   {len(partners)}, "
        f"境外 abroad {sum(1 for p in partners if p['foreign'])}, "
        f"ANSO {sum(1 for p in partners if p['anso_member'])}",
    ]
    lines += [
        f"  - {p['name']} ({p['country'] or '?'}){' ANSO' if p['anso_member'] else ''}"
        for p in partners
    ]
    return lines


def _reply_line(call: Call, reply: Reply) -> str:
    sent = _local(call, reply.sent_at) if reply.sent_at else "-"
    error = f"  last error: {reply.last_error}" if reply.last_error else ""
    return (
        f"  回复 Reply {reply.template} to {reply.to_address}: {reply.state}, queued "
        f"{_local(call, reply.queued_at)}, sent {sent}, attempts {reply.attempts}{error}"
    )


def export(rows: list[LogRow], path: Path) -> None:
    """Write the log for Excel: .xlsx (openpyxl) or .csv (UTF-8 with BOM, which Excel reads)."""
    suffix = path.suffix.lower()
    if suffix not in (".xlsx", ".csv"):
        raise MailbotError(f"{path}: export writes .xlsx or .csv files")
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(dir=path.parent, suffix=suffix)
    os.close(handle)
    try:
        if suffix == ".csv":
            with open(temporary, "w", encoding="utf-8-sig", newline="") as out:
                writer = csv.writer(out)
                writer.writerow([title for _, title in EXPORT_COLUMNS])
                writer.writerows(
                    [[_cell(v) for v in r.as_dict(EXPORT_COLUMNS).values()] for r in rows]
                )
        else:
            _xlsx(rows, Path(temporary))
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


def _cell(value: Any) -> Any:
    """A value an applicant wrote must not become a spreadsheet formula."""
    if isinstance(value, str) and value[:1] in ("=", "+", "-", "@", "\t", "\r"):
        return "'" + value
    return value


def _xlsx(rows: list[LogRow], path: Path) -> None:
    from openpyxl import Workbook
    from openpyxl.styles import Font
    from openpyxl.utils import get_column_letter

    book = Workbook()
    sheet = book.active
    assert sheet is not None
    sheet.title = "Intake log"
    sheet.append([title for _, title in EXPORT_COLUMNS])
    for cell in sheet[1]:
        cell.font = Font(bold=True)
    for row in rows:
        sheet.append([_cell(v) for v in row.as_dict(EXPORT_COLUMNS).values()])
    widths = (16, 34, 12, 36, 24, 12, 18, 14, 8, 22, 18, 8, 30, 40)
    for index, width in enumerate(widths, 1):
        sheet.column_dimensions[get_column_letter(index)].width = width
    sheet.freeze_panes = "A2"
    book.save(path)
