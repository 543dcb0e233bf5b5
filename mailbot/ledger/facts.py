"""What a submission's Word form and PDF scan say, as the log and a submission page show it."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Facts:
    """What the Word form says; None where unknown."""

    title: str | None = None
    focus_area: str | None = None
    budget_wan: float | None = None
    period: str | None = None
    partners: int | None = None
    foreign_partners: int | None = None
    anso_partners: int | None = None
    pdf_pages: int | None = None
    seal: Mapping[str, Any] | None = None  # what the seal check saw on the PDF scan


def facts(
    form: Mapping[str, Any] | None,
    pdf_pages: int | None = None,
    seal: Mapping[str, Any] | None = None,
) -> Facts:
    if not form:
        return Facts(pdf_pages=pdf_pages, seal=seal)
    period = form.get("period")
    if isinstance(period, Mapping):
        period = f"{period.get('start') or '?'}–{period.get('end') or '?'}"
    partners = form.get("partners")
    total = foreign = anso = None
    if isinstance(partners, list):
        listed = [p for p in partners if isinstance(p, Mapping)]
        total = len(partners)
        foreign = sum(1 for p in listed if p.get("foreign"))
        anso = sum(1 for p in listed if p.get("anso_member"))
    budget = form.get("budget_wan")
    return Facts(
        title=_text(form.get("title")),
        focus_area=_text(form.get("focus_area")),
        budget_wan=float(budget) if isinstance(budget, int | float) else None,
        period=_text(period),
        partners=total,
        foreign_partners=foreign,
        anso_partners=anso,
        pdf_pages=pdf_pages,
        seal=seal,
    )


def seal_words(seal: Mapping[str, Any] | None) -> tuple[str, str]:
    """What the seal check saw, in Chinese and English, for the secretariat."""
    if not seal:
        return ("-", "")
    if seal.get("found"):
        confidence = seal.get("confidence")
        sure = f"{float(confidence):.0%}" if isinstance(confidence, int | float) else "?"
        page = seal.get("page")
        return (f"第 {page} 页有公章（把握 {sure}）", f"seal found on page {page} ({sure} sure)")
    if not seal.get("complete"):
        return ("未能自动核对，请人工查看", "not checked by machine: look at the scan")
    if not seal.get("colour"):
        return ("黑白扫描，无法自动核对", "black-and-white scan: cannot be checked by machine")
    return ("首末页未见公章，请人工核对", "no seal seen on the first and last pages: check by eye")


def _text(value: Any) -> str | None:
    return str(value) if value not in (None, "") else None
