"""The secretariat's view for a terminal: the intake log, one submission in full, the export.

What is shown comes from mailbot.ledger, as the desk and the digest read it.
"""

from __future__ import annotations

import os
import tempfile
import unicodedata
from pathlib import Path
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from mailbot.calls import Call
from mailbot.cli.describe import describe_form, focus_name
from mailbot.domain import ReplyState
from mailbot.errors import MailbotError
from mailbot.ledger.attention import Attention, needing_a_person, unmatched_mails
from mailbot.ledger.counting import count
from mailbot.ledger.export import export_rows, to_csv, to_xlsx
from mailbot.ledger.log import LogQuery, LogRow, log_rows
from mailbot.ledger.problem_words import problem_words
from mailbot.ledger.submission import MailRecord, find_submission, mail_records
from mailbot.mail.names import shown
from mailbot.store.models import Mail, Reply

LOG_COLUMNS = (
    "编号 Reference",
    "牵头单位 Institution",
    "负责人 PI",
    "收到时间 Received (Beijing)",
    "状态 Status",
    "版本 Version",
    "发件人 Sender",
    "问题 Problems",
)


def _local(call: Call, moment: Any) -> str:
    return str(call.local(moment).strftime("%Y-%m-%d %H:%M:%S"))


def _cells(call: Call, row: LogRow) -> list[str]:
    return [
        row.reference,
        row.institution,
        row.pi,
        _local(call, row.received_at) if row.received_at else "",
        row.status,
        str(row.version),
        row.sender,
        problem_words(row.problems),
    ]


def log_text(session: Session, call: Call, search: str = "") -> str:
    """The intake log as `mailbot log` prints it (``search``: only the rows it finds)."""
    return format_log(
        log_rows(session, call, LogQuery(q=search)),
        unmatched_mails(session, call),
        needing_a_person(session, call),
        call,
    )


def format_log(rows: list[LogRow], others: list[Mail], attention: Attention, call: Call) -> str:
    """The log as a table for a terminal, then mail tied to none, then what needs a person."""
    table = [_cells(call, row) for row in rows]
    widths = [
        max(_width(h), *(_width(r[i]) for r in table)) if table else _width(h)
        for i, h in enumerate(LOG_COLUMNS)
    ]
    lines = [_row(list(LOG_COLUMNS), widths), _row(["-" * w for w in widths], widths)]
    lines += [_row(r, widths) for r in table]
    counts: dict[str, int] = {}
    for row in rows:
        counts[row.status] = counts.get(row.status, 0) + 1
    summary = ", ".join(f"{k} {v}" for k, v in sorted(counts.items()))
    lines.append("")
    lines.append(f"{count(len(rows), 'submission')} ({summary or 'none'}) for {call.call.name_en}")
    if others:
        lines.append(f"{count(len(others), 'mail')} without a submission:")
        for mail in sorted(others, key=lambda m: (m.received_at, m.id)):
            words = problem_words(p["code"] for p in mail.problems) or "-"
            lines.append(
                f"  {_local(call, mail.received_at)}  {mail.status:<16} {words}  "
                f"{mail.sender or '?'}  {mail.subject[:60]!r}"
            )
    lines += _attention_lines(call, attention)
    return "\n".join(lines)


def _attention_lines(call: Call, attention: Attention) -> list[str]:
    lines = [f"需要人工处理 Needing a person: {attention.count}"]
    for mail in attention.mails:
        lines.append(
            f"  mail {mail.id}  {_local(call, mail.received_at)}  {problem_words(mail.reasons)}  "
            f"{mail.sender or '?'}  {mail.subject[:60]!r}"
        )
    for reply in attention.letters:
        lines.append(f"  reply {reply.id}  {reply.state}  to {reply.to_address}  {reply.subject!r}")
    return lines


def _width(text: str) -> int:
    # East Asian wide characters take two terminal columns.
    return sum(2 if unicodedata.east_asian_width(c) in "WF" else 1 for c in text)


def _row(cells: list[str], widths: list[int]) -> str:
    return "  ".join(c + " " * (w - _width(c)) for c, w in zip(cells, widths, strict=True)).rstrip()


def show(session: Session, call: Call, reference: str) -> str:
    """One submission with all its versions, mails and replies, for a person."""
    submission = find_submission(session, call, reference)
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
        .where(Reply.submission_id == submission.id, Reply.state == ReplyState.BOUNCED)
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
    for record in mail_records(submission):
        lines += _record_lines(call, record, copies.get(record.mail.id, []))
        lines.append("")
    return "\n".join(lines).rstrip()


def _record_lines(call: Call, record: MailRecord, copies: list[Mail]) -> list[str]:
    mail, version = record.mail, record.version
    if version is not None:
        state = "superseded" if version.superseded else "current"
        title = f"版本 Version {version.number} ({version.kind}, {state}): {version.status}"
    else:
        title = f"邮件 Mail (no version): {mail.status}"
    lines = [
        title,
        f"  收到 Received: {_local(call, mail.received_at)} (Beijing time)",
        f"  发件人 From:   {mail.sender_name} <{mail.sender}>",
        f"  主题 Subject:  {mail.subject}",
        f"  Message-ID:    {mail.message_id}",
    ]
    if record.form:
        lines.extend(f"  {line}" for line in describe_form(call, record.form))
    if record.pdf_pages is not None:
        lines.append(f"  PDF 页数 PDF pages: {record.pdf_pages}")
    lines += [
        f"  [{problem['severity']}] {problem['code']}: {problem.get('message_zh', '')}"
        for problem in record.problems
    ]
    lines += [
        f"  {item['role']:<10} {shown(str(item['filename']))}  {item['size']:,} B  {item['sha256']}"
        for item in record.files
    ]
    lines += [_reply_line(call, reply) for reply in mail.replies]
    lines += [
        f"  另一副本 Another copy: mail {copy.id}, received "
        f"{_local(call, copy.received_at)}, recorded as a duplicate, not answered"
        for copy in copies
    ]
    return lines


def _reply_line(call: Call, reply: Reply) -> str:
    sent = _local(call, reply.sent_at) if reply.sent_at else "-"
    error = f"  last error: {reply.last_error}" if reply.last_error else ""
    return (
        f"  回复 Reply {reply.template} to {reply.to_address}: {reply.state}, queued "
        f"{_local(call, reply.queued_at)}, sent {sent}, attempts {reply.attempts}{error}"
    )


def export(session: Session, call: Call, path: Path) -> int:
    """Write the log for Excel, .xlsx or .csv; returns the number of submissions written."""
    suffix = path.suffix.lower()
    if suffix not in (".xlsx", ".csv"):
        raise MailbotError(f"{path}: export writes .xlsx or .csv files")
    rows = log_rows(session, call)
    table = export_rows(rows, call, lambda code: focus_name(call, code), problem_words)
    data = to_csv(table) if suffix == ".csv" else to_xlsx(table)
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(dir=path.parent, suffix=suffix)
    try:
        with os.fdopen(handle, "wb") as out:
            out.write(data)
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
    return len(rows)
