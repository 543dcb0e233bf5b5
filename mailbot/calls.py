"""Load a call's rules (rules/*.toml) into a typed, validated Call (checked by mailbot.schema).

No `from __future__ import annotations` here: the sections' field types are
read as objects when the rules load, not evaluated from strings (~15 ms).
"""

import re
import tomllib
import unicodedata
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Annotated, Any, ClassVar
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from mailbot.bundled import DEFAULT_CALL, bundled_calls, rules_dir
from mailbot.errors import MailbotError
from mailbot.schema import Checks, Invalid, Section, validate

_SIZE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(B|KB|MB|GB)?\s*$", re.IGNORECASE)
_UNITS = {"B": 1, "KB": 1024, "MB": 1024**2, "GB": 1024**3}


class RulesError(MailbotError):
    """A rules file that cannot be read or does not describe a call."""


def parse_size(value: Any) -> int:
    """Read a size such as 50MB or 1024 into bytes."""
    if isinstance(value, bool):
        raise ValueError("expected a size such as 50MB")
    if isinstance(value, int):
        return value
    match = _SIZE.match(str(value))
    if not match:
        raise ValueError(f"expected a size such as 50MB, got {value!r}")
    return int(float(match.group(1)) * _UNITS[(match.group(2) or "B").upper()])


Size = Annotated[int, parse_size]


def _mailbox(value: str) -> str:
    if not re.fullmatch(r"[^@\s]+@[^@\s]+\.[^@\s]+", value):
        raise ValueError(f"expected an e-mail address, got {value!r}")
    return value.lower()


def _timezone(value: str) -> str:
    try:
        ZoneInfo(value)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError(f"unknown time zone {value!r}") from None
    return value


def _deadline(value: str) -> str:
    _local_deadline(value)
    return value


@dataclass(frozen=True, kw_only=True)
class CallSection(Section):
    id: str
    reference_prefix: str
    name_zh: str
    name_en: str
    mailbox: str
    timezone: str
    timezone_label_zh: str = ""
    timezone_label_en: str = ""
    deadline: str
    field_checks: ClassVar[Checks] = {
        "mailbox": _mailbox,
        "timezone": _timezone,
        "deadline": _deadline,
    }


@dataclass(frozen=True, kw_only=True)
class SubjectSection(Section):
    prefix: str
    reply_prefixes: list[str] = field(default_factory=list)


def _stem(value: str) -> str:
    for name in ("{institution}", "{pi}"):
        if name not in value:
            raise ValueError(f"the stem must contain {name}")
    return value


@dataclass(frozen=True, kw_only=True)
class NamingSection(Section):
    stem: str
    institution_placeholder: str = "项目牵头单位名称"
    pi_placeholder: str = "项目负责人姓名"
    field_checks: ClassVar[Checks] = {"stem": _stem}


def _extensions(value: list[str]) -> list[str]:
    if not value:
        raise ValueError("at least one extension is needed")
    for ext in value:
        if not re.fullmatch(r"\.[A-Za-z0-9]+", ext):
            raise ValueError(f"extensions look like .pdf, got {ext!r}")
    return [ext.lower() for ext in value]


@dataclass(frozen=True, kw_only=True)
class AttachmentSection(Section):
    word_extensions: list[str]
    pdf_extensions: list[str]
    max_file_size: Size
    max_total_size: Size
    field_checks: ClassVar[Checks] = {"word_extensions": _extensions, "pdf_extensions": _extensions}


_MONTH = re.compile(r"^\d{4}-(0[1-9]|1[0-2])$")


@dataclass(frozen=True, kw_only=True)
class FocusArea(Section):
    code: str
    zh: str
    en: str
    aliases: list[str] = field(default_factory=list)


def _month(value: str) -> str:
    if not _MONTH.match(value):
        raise ValueError(f"expected a month such as 2022-01, got {value!r}")
    return value


@dataclass(frozen=True, kw_only=True)
class FormLimits(Section):
    budget_min_wan: float
    budget_max_wan: float
    period_start: str
    period_end: str
    max_months: int
    min_partners: int
    min_foreign_partners: int
    field_checks: ClassVar[Checks] = {"period_start": _month, "period_end": _month}


@dataclass(frozen=True, kw_only=True)
class FormSection(Section):
    """The proposal form's field labels, and what the call funds."""

    title: list[str]
    institution: list[str]
    pi: list[str]
    budget: list[str]
    period: list[str]
    focus_area: list[str]
    partner_name: list[str]
    partner_country: list[str]
    domestic: list[str]
    limits: FormLimits
    focus_areas: list[FocusArea]

    def labels(self) -> dict[str, list[str]]:
        """Each field's label aliases, by field key."""
        keys = ("title", "institution", "pi", "budget", "period", "focus_area")
        return {key: list(getattr(self, key)) for key in keys}


@dataclass(frozen=True, kw_only=True)
class ListsSection(Section):
    cas_institutes: str
    anso_members: str


@dataclass(frozen=True, kw_only=True)
class DocumentsSection(Section):
    max_docx_members: int = 500
    max_docx_uncompressed: Size = 60 * 1024 * 1024
    max_docx_member: Size = 30 * 1024 * 1024
    max_docx_ratio: float = 120.0
    max_pdf_pages: int = 1000
    # Archives (.zip) and Outlook's winmail.dat are opened in memory within these.
    max_archive_entries: int = 100
    max_archive_uncompressed: Size = 100 * 1024 * 1024  # for all the mail's containers together
    max_archive_member: Size = 50 * 1024 * 1024
    max_archive_ratio: float = 120.0


_ESCAPES = re.compile(r"\\.")
_CLASSES = re.compile(r"\[\^?\]?[^\]]*\]")
_UNBOUNDED = re.compile(r"[+*]|\{\d*,\}")


def _patterns(value: list[str]) -> list[str]:
    if not value:
        raise ValueError("at least one pattern is needed")
    for pattern in value:
        try:
            re.compile(pattern)
        except re.error as exc:
            raise ValueError(f"not a regular expression: {pattern!r} ({exc})") from None
        # Backtracking over an unbounded repeat costs minutes on a hostile body.
        bare = _CLASSES.sub("", _ESCAPES.sub("", pattern))
        if _UNBOUNDED.search(bare):
            raise ValueError(
                f"{pattern!r} repeats without bound (+, *, {{n,}}): write {{0,40}} instead"
            )
    return value


@dataclass(frozen=True, kw_only=True)
class LinkService(Section):
    """A download service whose links stand in for attachments (QQ Mail 超大附件 ...)."""

    zh: str
    en: str
    patterns: list[str]  # regular expressions, matched case-insensitively in the body
    field_checks: ClassVar[Checks] = {"patterns": _patterns}


@dataclass(frozen=True, kw_only=True)
class LinksSection(Section):
    """Large-attachment links in a mail body, which the applicant must replace by files."""

    services: list[LinkService] = field(default_factory=list)


@dataclass(frozen=True, kw_only=True)
class InstitutionLists(Section):
    """The lists named in [lists], read from their files when the rules load."""

    cas_institutes: list[str] = field(default_factory=list)
    anso_members: list[str] = field(default_factory=list)
    # The CAS list a line at a time: an institute's names, its full name first.
    cas_institute_lines: list[list[str]] = field(default_factory=list)


@dataclass(frozen=True, kw_only=True)
class EligibilitySection(Section):
    """Who may not lead a proposal: PIs leading ongoing projects (a file beside the rules)."""

    ongoing_projects: str = ""  # a file beside the rules: "PI | institution | project" a line
    tell_applicant: bool = False  # the accepted reply names the finding too


@dataclass(frozen=True, kw_only=True)
class OngoingProject(Section):
    """A PI leading an ongoing CAS international-partnership or ANSO joint project."""

    pi: str
    institution: str
    project: str = ""


@dataclass(frozen=True, kw_only=True)
class Call(Section):
    """One call for proposals: who writes where, by when, and how to name things."""

    call: CallSection
    subject: SubjectSection
    naming: NamingSection
    attachments: AttachmentSection
    form: FormSection | None = None  # None: the call has no form to read
    lists: ListsSection | None = None
    documents: DocumentsSection = field(default_factory=DocumentsSection)
    links: LinksSection = field(default_factory=LinksSection)
    institution_lists: InstitutionLists = field(default_factory=InstitutionLists)
    eligibility: EligibilitySection = field(default_factory=EligibilitySection)
    ongoing_projects: list[OngoingProject] = field(
        default_factory=list
    )  # read from [eligibility] ongoing_projects
    source: str = ""

    @property
    def id(self) -> str:
        return self.call.id

    @property
    def tz(self) -> ZoneInfo:
        return ZoneInfo(self.call.timezone)

    @property
    def deadline(self) -> datetime:
        """The last instant at which mail is still on time (aware)."""
        return _local_deadline(self.call.deadline).replace(tzinfo=self.tz)

    def stem(self, institution: str, pi: str) -> str:
        """The file name stem both proposal files must carry."""
        return self.naming.stem.format(institution=institution, pi=pi)

    def expected_subject(self, institution: str, pi: str) -> str:
        return f"{self.subject.prefix}：{self.stem(institution, pi)}"

    def placeholder_subject(self) -> str:
        return self.expected_subject(
            self.naming.institution_placeholder, self.naming.pi_placeholder
        )

    def local(self, moment: datetime) -> datetime:
        """A moment in the call's own time zone (Beijing time for ANSO)."""
        return moment.astimezone(self.tz)

    def local_text(self, moment: datetime) -> tuple[str, str]:
        """A moment as the call's applicants read it: (Chinese, English)."""
        stamp = self.local(moment).strftime("%Y-%m-%d %H:%M:%S")
        zh = self.call.timezone_label_zh or self.call.timezone
        en = self.call.timezone_label_en or self.call.timezone
        return f"{stamp}（{zh}）", f"{stamp} ({en})"

    def deadline_text(self) -> tuple[str, str]:
        """The deadline as the call wrote it: (Chinese, English)."""
        zh = self.call.timezone_label_zh or self.call.timezone
        en = self.call.timezone_label_en or self.call.timezone
        return f"{zh} {self.call.deadline}", f"{self.call.deadline} {en}"


def _local_deadline(text: str) -> datetime:
    match = re.fullmatch(r"(\d{4}-\d{2}-\d{2})[ T](\d{1,2}):(\d{2})", text.strip())
    if not match:
        raise ValueError(f"expected 'YYYY-MM-DD HH:MM', got {text!r}")
    day = datetime.strptime(match.group(1), "%Y-%m-%d")
    hour, minute = int(match.group(2)), int(match.group(3))
    if hour == 24 and minute == 0:  # "24:00" is how Chinese calls write end of day
        return day + timedelta(days=1)
    if hour > 23 or minute > 59:
        raise ValueError(f"no such time of day in {text!r}")
    return day.replace(hour=hour, minute=minute)


def normalise_name(text: str) -> str:
    """How names are compared: NFKC, no white space, case folded."""
    folded = unicodedata.normalize("NFKC", text).casefold()
    return "".join(ch for ch in folded if not ch.isspace())


def rules_file(value: str | Path = DEFAULT_CALL, base: Path | None = None) -> Path:
    """The rules file a setting names: a bundled call ("anso2021") or a file.

    A value with a path separator or ending in .toml is a file, a relative
    one read against ``base`` (the config's folder; else the working
    directory); any other value names a call shipped with mailbot.
    """
    text = str(value)
    if "/" in text or "\\" in text or text.endswith(".toml") or isinstance(value, Path):
        path = Path(text).expanduser()
        return path if path.is_absolute() or base is None else base / path
    if text not in bundled_calls():
        known = ", ".join(bundled_calls())
        raise RulesError(
            f"rules = {text!r}: no call of that name ships with mailbot (there are: {known}); "
            "a rules file is named by a path such as ./mycall.toml"
        )
    return rules_dir() / f"{text}.toml"


def load_call(path: str | Path = DEFAULT_CALL) -> Call:
    """Read and validate a rules file, or raise RulesError naming the file and key."""
    path = rules_file(path)
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        hint = ""
        if path.stem in bundled_calls():
            hint = f' (rules = "{path.stem}" names the call shipped with mailbot)'
        raise RulesError(f"{path}: no such rules file{hint}") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise RulesError(f"{path}: cannot read rules file: {exc}") from None
    except tomllib.TOMLDecodeError as exc:
        raise RulesError(f"{path}: not valid TOML: {exc}") from None
    lists = data.get("lists")
    if isinstance(lists, dict):
        lines = {
            key: _read_lines(path, f"[lists] {key}", value)
            for key, value in lists.items()
            if isinstance(value, str)
        }
        data["institution_lists"] = {
            key: [name for line in found for name in line] for key, found in lines.items()
        }
        if "cas_institutes" in lines:
            data["institution_lists"]["cas_institute_lines"] = lines["cas_institutes"]
    eligibility = data.get("eligibility")
    if isinstance(eligibility, dict) and isinstance(eligibility.get("ongoing_projects"), str):
        data["ongoing_projects"] = _read_projects(path, eligibility["ongoing_projects"])
    call = validate(Call, {**data, "source": str(path)})
    if isinstance(call, list):
        raise RulesError(f"{path}: {_describe(call)}")
    return call


def _read_lines(rules: Path, where: str, name: str) -> list[list[str]]:
    """One entry a line (comments after #); "a | b" gives both names of one entry."""
    path = rules.parent / name
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise RulesError(f"{rules}: {where}: cannot read {path}: {exc.strerror}") from None
    lines: list[list[str]] = []
    for line in text.splitlines():
        line = line.split("#", 1)[0].strip()
        if line:
            lines.append([part.strip() for part in line.split("|") if part.strip()])
    return [line for line in lines if line]


def _read_projects(rules: Path, name: str) -> list[dict[str, str]]:
    """The ongoing-projects list: "PI | institution | project" a line."""
    if not name:
        return []
    projects = []
    for number, line in enumerate(_read_lines(rules, "[eligibility] ongoing_projects", name), 1):
        if len(line) < 2:
            raise RulesError(
                f"{rules}: [eligibility] ongoing_projects: {name} entry {number}: "
                "expected 'PI | institution | project'"
            )
        projects.append({"pi": line[0], "institution": line[1], "project": " | ".join(line[2:])})
    return projects


def _describe(errors: list[Invalid]) -> str:
    parts = []
    for error in errors:
        loc = [str(item) for item in error.loc]
        key = f"[{loc[0]}] {'.'.join(loc[1:])}" if len(loc) > 1 else f"[{loc[0]}]"
        if error.kind == "missing":
            parts.append(f"{key}: missing")
        elif error.kind == "extra_forbidden":
            parts.append(f"{key}: unknown key")
        else:
            parts.append(f"{key}: {error.message}")
    return "; ".join(parts)
