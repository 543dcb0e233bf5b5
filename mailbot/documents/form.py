"""Read the proposal form's fields from a Word document's text, as applicants fill it in.

Labels may stand in a table's label cell or before a colon in a paragraph,
in Chinese, English or both, with stray spaces, brackets and colons. Values
are read as applicants write them: funding as 120, 120万元, 1,200,000元;
periods as 2022年1月-2024年12月 or 2022.01-2024.12; the focus area as text
or as ticked boxes. What cannot be read stays None.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass, field
from typing import Any

from mailbot.calls import FormSection
from mailbot.documents.word import DocxContent

FIELDS = ("title", "institution", "pi", "budget", "period", "focus_area")
TICKS = "☑☒■√✓✔▣✅"
BOXES = "□☐"
_COLON = re.compile(r"[:：]")
_LABEL_NOISE = re.compile(r"[()（）\[\]【】:：/／、_\-]")


def squash(text: str) -> str:
    """Text as labels and names are compared: NFKC, no white space, case folded."""
    return "".join(unicodedata.normalize("NFKC", text).casefold().split())


def _label_key(text: str) -> str:
    return _LABEL_NOISE.sub("", squash(text))


@dataclass(frozen=True)
class Partner:
    name: str
    country: str
    foreign: bool
    anso_member: bool

    def as_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "country": self.country,
            "foreign": self.foreign,
            "anso_member": self.anso_member,
        }


@dataclass(frozen=True)
class FormFacts:
    """What the form says; None where a value could not be read."""

    title: str | None = None
    institution: str | None = None
    pi: str | None = None
    budget_wan: float | None = None
    period: tuple[str, str] | None = None  # ("YYYY-MM", "YYYY-MM")
    focus_area: str | None = None
    partners: tuple[Partner, ...] = ()
    labelled: frozenset[str] = frozenset()  # fields whose label was found
    raw: dict[str, str] = field(default_factory=dict)  # each field's text as written
    focus_ticked: int = 0  # how many areas were chosen (more than one is no choice)
    partner_table: bool = False

    def as_json(self) -> dict[str, Any]:
        return {
            "title": self.title,
            "institution": self.institution,
            "pi": self.pi,
            "budget_wan": self.budget_wan,
            "period": {"start": self.period[0], "end": self.period[1]} if self.period else None,
            "focus_area": self.focus_area,
            "partners": [p.as_json() for p in self.partners],
        }


class Labels:
    """Which field, if any, a piece of text labels."""

    def __init__(self, form: FormSection) -> None:
        self.aliases = {
            key: sorted({_label_key(a) for a in names if _label_key(a)}, key=len, reverse=True)
            for key, names in form.labels().items()
        }

    def field_of(self, text: str) -> str | None:
        key = _label_key(text)
        if not key or len(key) > 80:
            return None
        for name, aliases in self.aliases.items():
            for alias in aliases:
                # "项目名称", "项目名称 Project Title", "Project Title 项目名称"
                if key == alias or any(key in (alias + b, b + alias) for b in aliases):
                    return name
        return None


def read_form(content: DocxContent, form: FormSection, lists: Any) -> FormFacts:
    labels = Labels(form)
    raw: dict[str, str] = {}
    labelled: set[str] = set()
    for table in content.tables:
        for cells in table:
            _pairs_from_cells(cells, labels, raw, labelled)
    for paragraph in content.paragraphs:
        parts = _COLON.split(paragraph, maxsplit=1)
        if len(parts) == 2:
            name = labels.field_of(parts[0])
            if name is not None and name not in raw:
                labelled.add(name)
                if parts[1].strip():
                    raw[name] = parts[1].strip()
    focus, ticked = read_focus(raw.get("focus_area", ""), form)
    institution = _clean(raw.get("institution"))
    partners, found_table = read_partners(content, form, lists, institution)
    return FormFacts(
        title=_clean(raw.get("title")),
        institution=institution,
        pi=_clean(raw.get("pi")),
        budget_wan=read_budget(raw.get("budget", "")),
        period=read_period(raw.get("period", "")),
        focus_area=focus,
        partners=tuple(partners),
        labelled=frozenset(labelled),
        raw=raw,
        focus_ticked=ticked,
        partner_table=found_table,
    )


def _pairs_from_cells(
    cells: list[str], labels: Labels, raw: dict[str, str], labelled: set[str]
) -> None:
    """Label cells and the value cell after each: "项目负责人 | 张喆 | 申请经费 | 120"."""
    for index, text in enumerate(cells):
        name = labels.field_of(text)
        if name is None or name in raw:
            continue
        labelled.add(name)
        following = cells[index + 1] if index + 1 < len(cells) else ""
        if following and labels.field_of(following) is None:
            raw[name] = following


def _clean(value: str | None) -> str | None:
    if value is None:
        return None
    value = " ".join(value.split())
    return value or None


def read_budget(text: str) -> float | None:
    """万元 from 120, 120万元, 120.5万, 1,200,000元 or ¥1,200,000."""
    plain = unicodedata.normalize("NFKC", text).replace(",", "").replace(" ", "")
    match = re.search(r"(\d+(?:\.\d+)?)", plain)
    if not match:
        return None
    amount = float(match.group(1))
    rest = plain[match.end() :]
    if rest.startswith("万"):
        return amount
    if rest.startswith("元") or rest.lower().startswith(("cny", "rmb", "yuan")) or amount >= 10000:
        return round(amount / 10000, 4)
    return amount


_MONTH = re.compile(r"(\d{4})\s*(?:年|[./\-])\s*(\d{1,2})")


def read_period(text: str) -> tuple[str, str] | None:
    """("2022-01", "2024-12") from 2022年1月-2024年12月, 2022.01-2024.12, 2022/1–2024/12."""
    plain = unicodedata.normalize("NFKC", text)
    months = [(int(y), int(m)) for y, m in _MONTH.findall(plain) if 1 <= int(m) <= 12]
    if len(months) >= 2:
        (y1, m1), (y2, m2) = months[0], months[1]
    else:
        years = [int(y) for y in re.findall(r"(?<!\d)(\d{4})(?!\d)", plain)]
        if len(years) < 2:
            return None
        (y1, m1), (y2, m2) = (years[0], 1), (years[1], 12)
    return f"{y1:04d}-{m1:02d}", f"{y2:04d}-{m2:02d}"


def months_between(period: tuple[str, str]) -> int:
    (y1, m1), (y2, m2) = (map(int, p.split("-")) for p in period)
    return (y2 - y1) * 12 + (m2 - m1) + 1


def read_focus(text: str, form: FormSection) -> tuple[str | None, int]:
    """(area code, how many areas were chosen); boxes win over plain text."""
    plain = unicodedata.normalize("NFKC", text)
    names = {
        area.code: [squash(n) for n in (area.zh, area.en, *area.aliases)]
        for area in form.focus_areas
    }

    def areas_in(fragment: str) -> set[str]:
        squashed = squash(fragment)
        return {
            code for code, aliases in names.items() if any(a and a in squashed for a in aliases)
        }

    marks = re.findall(rf"([{TICKS}{BOXES}])\s*([^{TICKS}{BOXES}]*)", plain)
    if marks:
        chosen: set[str] = set()
        for mark, fragment in marks:
            if mark in TICKS:
                chosen |= areas_in(fragment)
    else:
        chosen = areas_in(plain)
    if len(chosen) == 1:
        return next(iter(chosen)), 1
    return None, len(chosen)


def read_partners(
    content: DocxContent, form: FormSection, lists: Any, lead: str | None
) -> tuple[list[Partner], bool]:
    """The partner rows below a header `单位名称/Institution | 国家/Country`."""
    name_keys = {_label_key(a) for a in form.partner_name}
    country_keys = {_label_key(a) for a in form.partner_country}
    domestic = {squash(c) for c in form.domestic}
    members = [squash(m) for m in lists.anso_members]
    lead_key = squash(lead) if lead else None

    def matches(cell: str, keys: set[str]) -> bool:
        key = _label_key(cell)
        return bool(key) and any(key == k or key.startswith(k) or key.endswith(k) for k in keys)

    for table in content.tables:
        for index, header in enumerate(table):
            name_col = next((i for i, c in enumerate(header) if matches(c, name_keys)), None)
            country_col = next((i for i, c in enumerate(header) if matches(c, country_keys)), None)
            if name_col is None or country_col is None or name_col == country_col:
                continue
            partners = []
            for row in table[index + 1 :]:
                name = row[name_col].strip() if name_col < len(row) else ""
                country = row[country_col].strip() if country_col < len(row) else ""
                if not name or re.fullmatch(r"[\d.、\s]*", name):
                    continue  # an empty row with only its pre-printed number
                if lead_key and squash(name) == lead_key:
                    continue  # the lead institution listed among partners is no partner
                key = squash(name)
                partners.append(
                    Partner(
                        name=" ".join(name.split()),
                        country=" ".join(country.split()),
                        foreign=bool(country) and squash(country) not in domestic,
                        anso_member=any(m == key or (len(m) >= 6 and m in key) for m in members),
                    )
                )
            return partners, True
    return [], False
