"""`mailbot form-template`: the call's blank bilingual proposal form, its labels from the rules."""

from __future__ import annotations

import io
import re
from collections.abc import Sequence
from pathlib import Path

from mailbot.calls import Call, FormSection
from mailbot.errors import MailbotError

FIELD_ORDER = ("title", "institution", "pi", "budget", "period", "focus_area")
PARTNER_ROWS = 6


def _bilingual(aliases: Sequence[str]) -> str:
    """The first Chinese and the first English alias, on two lines."""
    zh = next((a for a in aliases if re.search(r"[\u4e00-\u9fff]", a)), aliases[0])
    en = next((a for a in aliases if a.isascii()), "")
    return f"{zh}\n{en}" if en else zh


def focus_choices(form: FormSection, chosen: str | None = None) -> str:
    return "  ".join(
        f"{'☑' if area.code == chosen else '□'}{area.zh} {area.en}" for area in form.focus_areas
    )


def blank_form(call: Call) -> bytes:
    """The form as a .docx: a fields table, then the partners table."""
    if call.form is None:
        raise MailbotError(f"{call.source}: the rules have no [form] section")
    import docx
    from docx.shared import Pt

    form = call.form
    document = docx.Document()
    document.add_heading(f"{call.call.name_zh}建议书", level=1)
    document.add_paragraph(f"{call.call.name_en} Proposal")
    labels = form.labels()
    fields = document.add_table(rows=len(FIELD_ORDER), cols=2)
    fields.style = "Table Grid"
    for row, key in zip(fields.rows, FIELD_ORDER, strict=True):
        row.cells[0].text = _bilingual(labels[key])
        if key == "focus_area":
            row.cells[1].text = focus_choices(form)
    document.add_paragraph()
    document.add_paragraph(
        f"合作单位（至少 {form.limits.min_partners} 家，其中境外至少 "
        f"{form.limits.min_foreign_partners} 家）\nPartner institutions (at least "
        f"{form.limits.min_partners}, {form.limits.min_foreign_partners} or more abroad)"
    )
    partners = document.add_table(rows=1 + PARTNER_ROWS, cols=4)
    partners.style = "Table Grid"
    header = (
        "序号\nNo.",
        _bilingual(form.partner_name),
        _bilingual(form.partner_country),
        "角色\nRole",
    )
    for cell, text in zip(partners.rows[0].cells, header, strict=True):
        cell.text = text
    for number, row in enumerate(partners.rows[1:], 1):
        row.cells[0].text = str(number)
    note = document.add_paragraph(
        f"申请经费 {form.limits.budget_min_wan:g}–{form.limits.budget_max_wan:g} 万元；"
        f"执行期不超过 {form.limits.max_months} 个月，在 {form.limits.period_start} 至 "
        f"{form.limits.period_end} 之间。Funding {form.limits.budget_min_wan:g}–"
        f"{form.limits.budget_max_wan:g} (10k CNY); at most {form.limits.max_months} months "
        f"within {form.limits.period_start} to {form.limits.period_end}."
    )
    for run in note.runs:
        run.font.size = Pt(9)
    out = io.BytesIO()
    document.save(out)
    return out.getvalue()


def fill_form(
    call: Call, values: dict[str, str], partners: Sequence[tuple[str, str]] = ()
) -> bytes:
    """The blank form with its value cells and partner rows filled in (the demo's proposals)."""
    import docx

    document = docx.Document(io.BytesIO(blank_form(call)))
    fields, table = document.tables[0], document.tables[1]
    for row, key in zip(fields.rows, FIELD_ORDER, strict=True):
        if key in values:
            row.cells[1].text = values[key]
    for row, (name, country) in zip(table.rows[1:], partners, strict=False):
        row.cells[1].text, row.cells[2].text = name, country
    out = io.BytesIO()
    document.save(out)
    return out.getvalue()


def write_form(call: Call, path: Path) -> None:
    """Write the call's blank form to path, making its folder; one-line error if it cannot."""
    if path.suffix.lower() != ".docx":
        raise MailbotError(f"{path}: the form is written as a .docx file")
    data = blank_form(call)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except FileExistsError:
        raise MailbotError(f"cannot write {path}: {path.parent} is not a folder") from None
    except OSError as exc:
        raise MailbotError(f"cannot create the folder {path.parent}: {exc.strerror}") from None
    try:
        path.write_bytes(data)
    except OSError as exc:
        raise MailbotError(f"cannot write {path}: {exc.strerror or exc}") from None
