"""The review packet: every accepted submission's current files in one zip for the panel.

One folder per accepted submission (``ANSO2021-0007 中国科学院植物研究所+张三/``) holds
its current version's Word, PDF and supporting files under names safe on any disk;
``index.xlsx`` lists each submission with what its form says and each file with its
sha256, and ``SHA256SUMS`` (as ``sha256sum -c`` reads it) every file in the folders.
Each file is read from the store and checked against its sha256 before it goes in.

The same database gives the same bytes: entries in sorted order, every time stamp
fixed (the zip's and the spreadsheet's), nothing taken from the clock.
"""

from __future__ import annotations

import hashlib
import io
import re
import unicodedata
import zipfile
from dataclasses import dataclass
from datetime import datetime
from typing import BinaryIO

from sqlalchemy import select
from sqlalchemy.orm import Session

from mailbot.calls import Call
from mailbot.domain import SubmissionStatus
from mailbot.errors import MailbotError
from mailbot.ledger.export import spreadsheet_safe
from mailbot.ledger.facts import Facts, facts
from mailbot.mail.message import split_extension
from mailbot.store.blobs import BlobStore
from mailbot.store.models import Submission, Version

ACCEPTED = (SubmissionStatus.ACCEPTED, SubmissionStatus.ACCEPTED_BY_DECISION)
MAX_NAME_BYTES = 180  # of UTF-8 per path part: disks allow 255, and room is left for " (2)"
ROLE_ORDER = {"word": 0, "pdf": 1, "supporting": 2}
INDEX_COLUMNS = (
    "编号 Reference",
    "牵头单位 Institution",
    "负责人 PI",
    "项目名称 Title",
    "资助领域 Focus area",
    "申请经费（万元）Funding (10k CNY)",
    "执行期限 Period",
    "合作单位 总/境外/ANSO Partners total/foreign/ANSO",
    "文件 Files (sha256)",
)
FILE_COLUMNS = ("编号 Reference", "文件 File", "类别 Role", "大小 Bytes", "SHA-256")
_CORE_TIMES = re.compile(r"(<dcterms:(?:created|modified)[^>]*>)[^<]*(</dcterms:)")


class PacketError(MailbotError):
    """The packet cannot be made: a file of an accepted submission is missing from the
    store or its bytes no longer match its sha256."""


@dataclass(frozen=True)
class PacketFile:
    reference: str
    path: str  # inside the zip, "folder/name"
    role: str
    size: int
    sha256: str


@dataclass(frozen=True)
class PacketEntry:
    """One accepted submission as the packet holds it."""

    reference: str
    institution: str
    pi: str
    facts: Facts
    folder: str
    files: tuple[PacketFile, ...]


def safe_part(name: str, fallback: str = "file") -> str:
    """A file or folder name safe on any disk: no path, control or bidi characters, at most
    MAX_NAME_BYTES of UTF-8, its extension kept."""
    cleaned = "".join(
        "_" if ch in '/\\:*?"<>|' else ch
        for ch in unicodedata.normalize("NFC", name)
        if unicodedata.category(ch) not in ("Cc", "Cf", "Zl", "Zp", "Cs", "Co", "Cn")
    )
    cleaned = " ".join(cleaned.split()).strip(" .")
    extension = cleaned[len(cleaned) - len(split_extension(cleaned)[1]) :]
    stem = cleaned[: len(cleaned) - len(extension)] if extension else cleaned
    room = MAX_NAME_BYTES - len(extension.encode())
    stem = stem.encode()[:room].decode("utf-8", "ignore").strip(" .")
    return (stem + extension) if stem else (fallback + extension)


def _unique(name: str, taken: set[str]) -> str:
    """``name``, or ``name (2)`` and on, unused in its folder (compared as Windows does)."""
    extension = name[len(name) - len(split_extension(name)[1]) :]
    stem = name[: len(name) - len(extension)]
    candidate, n = name, 1
    while candidate.casefold() in taken:
        n += 1
        candidate = f"{stem} ({n}){extension}"
    taken.add(candidate.casefold())
    return candidate


def _current(session: Session, submission: Submission) -> Version | None:
    return session.scalar(
        select(Version).where(
            Version.submission_id == submission.id,
            Version.number == submission.current_version,
            Version.superseded.is_(False),
        )
    )


def _files(reference: str, folder: str, version: Version | None) -> tuple[PacketFile, ...]:
    listed = [f for f in (version.files if version else []) if isinstance(f, dict)]
    listed.sort(key=lambda f: (ROLE_ORDER.get(str(f.get("role")), 9), str(f.get("filename"))))
    taken: set[str] = set()
    seen: set[tuple[str, str]] = set()
    files = []
    for item in listed:
        sha256, filename = str(item.get("sha256", "")), str(item.get("filename", ""))
        if (sha256, filename) in seen:  # the same file attached twice to one mail
            continue
        seen.add((sha256, filename))
        name = _unique(safe_part(filename), taken)
        size = int(item.get("size") or 0)
        files.append(PacketFile(reference, f"{folder}/{name}", str(item.get("role")), size, sha256))
    return tuple(files)


def packet_entries(session: Session, call: Call) -> list[PacketEntry]:
    """Every accepted submission of the call, by reference, with its current files."""
    submissions = session.scalars(
        select(Submission)
        .where(Submission.call_id == call.id, Submission.status.in_([str(s) for s in ACCEPTED]))
        .order_by(Submission.seq, Submission.reference)
    ).all()
    entries = []
    folders: set[str] = set()
    for submission in submissions:
        version = _current(session, submission)
        folder = safe_part(
            f"{submission.reference} {submission.institution}+{submission.pi}",
            submission.reference,
        )
        folder = _unique(folder, folders)
        entries.append(
            PacketEntry(
                reference=submission.reference,
                institution=submission.institution,
                pi=submission.pi,
                facts=facts(version.form, version.pdf_pages) if version else Facts(),
                folder=folder,
                files=_files(submission.reference, folder, version),
            )
        )
    return entries


def _checked(blobs: BlobStore, item: PacketFile) -> bytes:
    try:
        data = blobs.get(item.sha256)
    except (OSError, ValueError) as exc:
        raise PacketError(
            f"{item.reference}: {item.path} ({item.sha256}) is not in the store: {exc}"
        ) from exc
    if hashlib.sha256(data).hexdigest() != item.sha256:
        raise PacketError(
            f"{item.reference}: {item.path}: the stored bytes no longer match sha256 "
            f"{item.sha256}; restore the store from a backup"
        )
    return data


def _index_rows(entries: list[PacketEntry], call: Call) -> list[list[object]]:
    areas = {a.code: f"{a.zh} {a.en}" for a in call.form.focus_areas} if call.form else {}
    rows: list[list[object]] = [list(INDEX_COLUMNS)]
    for e in entries:
        f = e.facts
        partners = (
            f"{f.partners}/{f.foreign_partners}/{f.anso_partners}" if f.partners is not None else ""
        )
        budget = f.budget_wan
        files = "\n".join(f"{item.path.split('/', 1)[1]}  {item.sha256}" for item in e.files)
        values: list[object] = [
            e.reference,
            e.institution,
            e.pi,
            f.title or "",
            areas.get(f.focus_area or "", f.focus_area or ""),
            int(budget) if budget is not None and budget.is_integer() else budget,
            f.period or "",
            partners,
            files,
        ]
        rows.append([spreadsheet_safe(v) for v in values])
    return rows


def index_xlsx(entries: list[PacketEntry], call: Call, moment: datetime) -> bytes:
    """The packet's index: one sheet of submissions, one of files; its time stamps ``moment``."""
    from openpyxl import Workbook
    from openpyxl.styles import Alignment, Font

    book = Workbook()
    sheet = book.active
    assert sheet is not None
    sheet.title = "Proposals"
    for values in _index_rows(entries, call):
        sheet.append(values)
    for column, width in zip("ABCDEFGHI", (16, 34, 12, 40, 24, 12, 18, 14, 90), strict=True):
        sheet.column_dimensions[column].width = width
    for cell in sheet["I"]:
        cell.alignment = Alignment(wrap_text=True, vertical="top")
    files = book.create_sheet("Files")
    files.append(list(FILE_COLUMNS))
    for e in entries:
        for item in e.files:
            name = spreadsheet_safe(item.path.split("/", 1)[1])
            files.append([e.reference, name, item.role, item.size, item.sha256])
    for each in (sheet, files):
        for cell in each[1]:
            cell.font = Font(bold=True)
        each.freeze_panes = "A2"
    book.properties.created = moment
    out = io.BytesIO()
    book.save(out)
    return _fixed_times(out.getvalue(), moment)


def _fixed_times(xlsx: bytes, moment: datetime) -> bytes:
    """The workbook again, its zip entries and its document properties stamped ``moment``."""
    stamp = moment.strftime("%Y-%m-%dT%H:%M:%SZ")
    out = io.BytesIO()
    with zipfile.ZipFile(io.BytesIO(xlsx)) as source, _writer(out) as target:
        for info in source.infolist():
            data = source.read(info)
            if info.filename == "docProps/core.xml":
                data = _CORE_TIMES.sub(rf"\g<1>{stamp}\g<2>", data.decode()).encode()
            _put(target, info.filename, data, moment)
    return out.getvalue()


def _writer(out: io.BytesIO) -> zipfile.ZipFile:
    return zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED)


def _put(target: zipfile.ZipFile, name: str, data: bytes, moment: datetime) -> None:
    info = zipfile.ZipInfo(name, date_time=moment.timetuple()[:6])
    info.compress_type = zipfile.ZIP_DEFLATED
    info.create_system = 3  # Unix, wherever the packet is made
    info.external_attr = 0o644 << 16
    target.writestr(info, data, compresslevel=6)


def write_packet(session: Session, call: Call, blobs: BlobStore, out: BinaryIO) -> int:
    """Write the packet into ``out`` (a seekable file), one file in memory at a time; returns
    how many submissions it holds. PacketError on a missing or damaged blob."""
    entries = packet_entries(session, call)
    # Stamped with the deadline (as Beijing's wall clock, as zip stores local times).
    moment = call.local(call.deadline).replace(tzinfo=None)
    sums = []
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as target:
        items = sorted((item for e in entries for item in e.files), key=lambda i: i.path)
        for item in items:
            _put(target, item.path, _checked(blobs, item), moment)
            sums.append(f"{item.sha256}  {item.path}\n")
        _put(target, "SHA256SUMS", "".join(sums).encode(), moment)
        _put(target, "index.xlsx", index_xlsx(entries, call, moment), moment)
    return len(entries)
