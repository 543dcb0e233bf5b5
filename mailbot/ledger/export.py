"""The intake log for Excel: .xlsx (openpyxl) or .csv (UTF-8 with BOM, which Excel reads)."""

from __future__ import annotations

import csv
import io
from collections.abc import Callable, Sequence
from typing import Any

from mailbot.calls import Call
from mailbot.ledger.labels import status_label
from mailbot.ledger.log import LogRow

COLUMNS: tuple[tuple[str, str], ...] = (
    ("reference", "编号 Reference"),
    ("institution", "牵头单位 Institution"),
    ("pi", "负责人 PI"),
    ("title", "项目名称 Title"),
    ("focus_area", "资助领域 Focus area"),
    ("budget_wan", "申请经费（万元）Funding (10k CNY)"),
    ("period", "执行期限 Period"),
    ("partners", "合作单位 总/境外/ANSO Partners total/foreign/ANSO"),
    ("pdf_pages", "PDF 页数 PDF pages"),
    ("received_at", "收到时间 Received (Beijing)"),
    ("status", "状态 Status"),
    ("version", "版本 Version"),
    ("sender", "发件人 Sender"),
    ("problems", "问题 Problems"),
)
WIDTHS = (16, 34, 12, 36, 24, 12, 18, 14, 8, 22, 26, 8, 30, 40)
# What a spreadsheet may take for a formula (OWASP, CSV injection): a cell starting
# with one of these and going on. A lone "-" or "+" is text, and stays as it is.
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def spreadsheet_safe(value: Any) -> Any:
    """A value an applicant wrote must not become a spreadsheet formula."""
    if isinstance(value, str) and len(value) > 1 and value.startswith(FORMULA_STARTS):
        return "'" + value
    return value


def _values(
    row: LogRow, call: Call, area_name: Callable[[str | None], str], words: Callable[..., str]
) -> list[object]:
    facts = row.facts
    received = call.local(row.received_at).strftime("%Y-%m-%d %H:%M:%S") if row.received_at else ""
    partners = (
        f"{facts.partners}/{facts.foreign_partners}/{facts.anso_partners}"
        if facts.partners is not None
        else ""
    )
    return [
        row.reference,
        row.institution,
        row.pi,
        facts.title or "",
        area_name(facts.focus_area),
        _number(facts.budget_wan),
        facts.period or "",
        partners,
        facts.pdf_pages,
        received,
        f"{status_label(row.status)[0]} {row.status}",
        row.version,
        row.sender,
        words(row.problems),
    ]


def _number(value: float | None) -> float | int | None:
    return int(value) if value is not None and value.is_integer() else value


def export_rows(
    rows: Sequence[LogRow],
    call: Call,
    area_name: Callable[[str | None], str],
    words: Callable[..., str],
) -> list[list[object]]:
    """The header and one guarded list of cells per row."""
    header: list[object] = [title for _, title in COLUMNS]
    return [header] + [
        [spreadsheet_safe(v) for v in _values(row, call, area_name, words)] for row in rows
    ]


def to_csv(table: list[list[object]]) -> bytes:
    text = io.StringIO(newline="")
    csv.writer(text).writerows(table)
    return text.getvalue().encode("utf-8-sig")


def to_xlsx(table: list[list[object]]) -> bytes:
    from openpyxl import Workbook
    from openpyxl.styles import Font
    from openpyxl.utils import get_column_letter

    book = Workbook()
    sheet = book.active
    assert sheet is not None
    sheet.title = "Intake log"
    for values in table:
        sheet.append(values)
    for cell in sheet[1]:
        cell.font = Font(bold=True)
    for index, width in enumerate(WIDTHS, 1):
        sheet.column_dimensions[get_column_letter(index)].width = width
    sheet.freeze_panes = "A2"
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()
