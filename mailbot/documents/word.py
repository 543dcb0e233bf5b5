"""Open a .docx safely and lay out its text: table rows as cell texts, and paragraphs.

A .docx is a zip whose parts are inflated whole into memory before they
are parsed, so the zip's directory is checked first against the rules'
limits (member count, sizes, compression ratio), and a part declaring a
DOCTYPE is refused unread. The package is then opened as python-docx 1.2
opens it (mailbot.documents.opc) and word/document.xml walked with lxml for
the text python-docx's object model gives, without building that model:
the same tables, rows, cells and paragraphs (tests/test_wordxml.py).
"""

from __future__ import annotations

import io
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from mailbot.calls import DocumentsSection

if TYPE_CHECKING:
    from lxml import etree

OLE_MAGIC = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"


class UnreadableDocument(Exception):
    """Why a document cannot be read, in words for the applicant: (Chinese, English)."""

    def __init__(self, zh: str, en: str) -> None:
        super().__init__(en)
        self.zh, self.en = zh, en


@dataclass(frozen=True)
class DocxContent:
    """The text of a Word document as rows of table cells and as paragraphs."""

    tables: list[list[list[str]]] = field(default_factory=list)  # table -> row -> cell text
    paragraphs: list[str] = field(default_factory=list)


def check_zip(data: bytes, limits: DocumentsSection) -> None:
    """Refuse what is not a Word zip, or would cost too much to unpack."""
    if data.startswith(OLE_MAGIC):
        raise UnreadableDocument(
            "文件是加密的 Word 文档或旧版 .doc 格式，无法读取，请另存为未加密的 .docx。",
            "The file is an encrypted Word document or in the old .doc format; "
            "please save it as an unencrypted .docx.",
        )
    try:
        archive = zipfile.ZipFile(io.BytesIO(data))
    except (zipfile.BadZipFile, ValueError, OSError):
        raise UnreadableDocument(
            "文件不是有效的 .docx 文档（已损坏或并非 Word 文件）。",
            "The file is not a valid .docx document (damaged, or not a Word file).",
        ) from None
    with archive:
        members = archive.infolist()
        names = {m.filename for m in members}
        if "word/document.xml" not in names or "[Content_Types].xml" not in names:
            raise UnreadableDocument(
                "文件是压缩包，但不是 Word 文档。",
                "The file is a zip archive but not a Word document.",
            )
        total = sum(m.file_size for m in members)
        ratios = [m.file_size / max(m.compress_size, 1) for m in members if m.file_size > 1 << 20]
        if (
            len(members) > limits.max_docx_members
            or total > limits.max_docx_uncompressed
            or any(m.file_size > limits.max_docx_member for m in members)
            or any(r > limits.max_docx_ratio for r in ratios)
        ):
            raise UnreadableDocument(
                f"Word 文件解压后过大（{total / 2**20:.0f} MB），无法读取，"
                "请删去嵌入的大文件后重新保存。",
                f"The Word file unpacks to too much data ({total / 2**20:.0f} MB); "
                "please remove large embedded objects and save it again.",
            )
        for member in members:
            # Word never writes a DOCTYPE; one is there to define entities (a
            # billion laughs, an external file), so the file is refused unread.
            if member.filename.endswith((".xml", ".rels")):
                with archive.open(member) as part:
                    head = part.read(4096)
                if b"<!DOCTYPE" in head or b"<!ENTITY" in head:
                    raise UnreadableDocument(
                        "Word 文件含有不允许的 XML 实体定义，无法读取，"
                        "请用 Word 重新保存为 .docx。",
                        "The Word file holds XML entity definitions, which are not allowed; "
                        "please save it again from Word as .docx.",
                    )


def read_docx(data: bytes, limits: DocumentsSection) -> DocxContent:
    """The document's tables (nested ones too) and paragraphs; raises UnreadableDocument.

    Read from word/document.xml's XML directly, giving what python-docx 1.2's
    object model gives (tests/test_wordxml.py holds the two side by side).
    """
    check_zip(data, limits)
    from mailbot.documents.opc import main_document  # lxml: only mail with a Word file pays

    try:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            root = main_document(archive)
    except ValueError:
        raise UnreadableDocument(
            "文件是启用宏的 Word 文档（.docm），请另存为 .docx。",
            "The file is a macro-enabled Word document (.docm); please save it as .docx.",
        ) from None
    except (KeyError, zipfile.BadZipFile, SyntaxError, OSError) as exc:
        raise UnreadableDocument(
            "Word 文件无法读取（结构损坏）。",
            f"The Word file cannot be read ({type(exc).__name__}).",
        ) from None
    except Exception as exc:  # the file is broken, not mailbot
        raise _unreadable(type(exc).__name__) from None
    body = root.find(W + "body") if root.tag == W + "document" else None
    if body is None:  # python-docx fails on the missing body as it walks it
        raise _unreadable("AttributeError")
    try:
        tables = [rows for tbl in body.iterchildren(W + "tbl") for rows in _tables(tbl)]
    except ValueError as exc:  # a span or a merge that does not add up
        raise _unreadable(type(exc).__name__) from None
    paragraphs = [text for p in body.iterchildren(W + "p") if (text := paragraph_text(p)).strip()]
    return DocxContent(tables, paragraphs)


def _unreadable(name: str) -> UnreadableDocument:
    return UnreadableDocument("Word 文件无法读取。", f"The Word file cannot be read ({name}).")


W = "{http://schemas.openxmlformats.org/wordprocessingml/2006/main}"
_T, _BR, _R, _HYPERLINK = W + "t", W + "br", W + "r", W + "hyperlink"
# A run's other text elements and what python-docx reads them as.
_RUN_MARKS = {W + "tab": "\t", W + "ptab": "\t", W + "cr": "\n", W + "noBreakHyphen": "-"}


def run_text(run: etree._Element) -> str:
    """A w:r's text: its w:t, tabs and breaks (a page or column break reads as nothing)."""
    parts = []
    for child in run:
        tag = child.tag
        if tag == _T:
            parts.append(child.text or "")
        elif tag == _BR:
            parts.append("\n" if child.get(W + "type", "textWrapping") == "textWrapping" else "")
        elif tag in _RUN_MARKS:
            parts.append(_RUN_MARKS[tag])
    return "".join(parts)


def paragraph_text(paragraph: etree._Element) -> str:
    """A w:p's text as python-docx 1.2 reads it: its own runs and those of its hyperlinks.

    Runs inside w:ins, w:del, w:smartTag, w:sdt or w:fldSimple are not read, as python-docx
    does not read them.
    """
    parts = []
    for child in paragraph:
        if child.tag == _R:
            parts.append(run_text(child))
        elif child.tag == _HYPERLINK:
            parts.extend(run_text(run) for run in child.iterchildren(_R))
    return "".join(parts)


def _cell_text(tc: etree._Element) -> str:
    return "\n".join(paragraph_text(p) for p in tc.iterchildren(W + "p"))


def _number(parent: etree._Element | None, tag: str) -> int | None:
    """The w:val of ``parent``'s first ``tag`` child as a number, None without that child."""
    child = None if parent is None else parent.find(tag)
    if child is None:
        return None
    value = child.get(W + "val")
    if value is None:  # python-docx's name for a required attribute that is missing
        raise _unreadable("InvalidXmlError")
    return int(value)


def _span(tc: etree._Element) -> int:
    span = _number(tc.find(W + "tcPr"), W + "gridSpan")
    return 1 if span is None else span


def _continues(tc: etree._Element) -> bool:
    """Whether the cell continues the vertically merged cell above it (w:vMerge, not restart)."""
    tc_pr = tc.find(W + "tcPr")
    merge = None if tc_pr is None else tc_pr.find(W + "vMerge")
    return merge is not None and merge.get(W + "val", "continue") == "continue"


def _grid_before(tr: etree._Element) -> int:
    before = _number(tr.find(W + "trPr"), W + "gridBefore")
    return 0 if before is None else before


def _cell_above(tc: etree._Element) -> etree._Element:
    """The w:tc in the row above that starts at the same grid column; ValueError if none."""
    tr = tc.getparent()
    above = None if tr is None else tr.getprevious()
    while above is not None and above.tag != W + "tr":
        above = above.getprevious()
    if tr is None or above is None:
        raise ValueError("no tr above topmost tr in w:tbl")
    offset = _grid_before(tr) + sum(_span(t) for t in tc.itersiblings(W + "tc", preceding=True))
    remaining = offset - _grid_before(above)
    for candidate in above.iterchildren(W + "tc"):
        if remaining < 0:
            break
        if remaining == 0:
            return candidate
        remaining -= _span(candidate)
    raise ValueError(f"no `tc` element at grid_offset={offset}")


def row_cells(tr: etree._Element) -> list[etree._Element]:
    """A row's cells as the reader keeps them from python-docx's ``row.cells``.

    python-docx gives one cell object per w:tc, repeated once per grid column
    it spans (none for a span of 0), and for a vertically merged w:tc a new
    object for the cell it continues; repeats of one object were dropped. So
    each w:tc of the row counts once, as the cell it continues if it does,
    even when two neighbours continue the same cell.
    """
    cells = []
    for tc in tr.iterchildren(W + "tc"):
        root = tc
        while _continues(root):
            root = _cell_above(root)
        if _span(root) > 0:
            cells.append(root)
    return cells


def _tables(tbl: etree._Element, depth: int = 0) -> Iterator[list[list[str]]]:
    """A table's rows, then those of the tables nested in its cells."""
    rows: list[list[str]] = []
    nested: list[etree._Element] = []
    for tr in tbl.iterchildren(W + "tr"):
        cells: list[str] = []
        for tc in row_cells(tr):
            cells.append(_cell_text(tc).strip())
            if depth < 3:
                nested.extend(tc.iterchildren(W + "tbl"))
        rows.append(cells)
    yield rows
    for inner in nested:
        yield from _tables(inner, depth + 1)
