"""Open a .docx safely and lay out its text: table rows as cell texts, and paragraphs.

A .docx is a zip, and python-docx inflates each member whole into memory
before parsing it, so the zip's directory is checked first against the
rules' limits (member count, sizes, compression ratio). XML entities are not
resolved (python-docx's parser), and libxml2 refuses entity expansion bombs.
"""

from __future__ import annotations

import io
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass, field

from mailbot.calls import DocumentsSection

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
    """The document's tables (nested ones too) and paragraphs; raises UnreadableDocument."""
    check_zip(data, limits)
    import docx  # imported here: only mail with a Word file pays for it
    from docx.opc.exceptions import PackageNotFoundError

    try:
        document = docx.Document(io.BytesIO(data))
    except ValueError:
        raise UnreadableDocument(
            "文件是启用宏的 Word 文档（.docm），请另存为 .docx。",
            "The file is a macro-enabled Word document (.docm); please save it as .docx.",
        ) from None
    except (PackageNotFoundError, KeyError, zipfile.BadZipFile, SyntaxError, OSError) as exc:
        raise UnreadableDocument(
            "Word 文件无法读取（结构损坏）。",
            f"The Word file cannot be read ({type(exc).__name__}).",
        ) from None
    except Exception as exc:  # lxml's errors and the like: the file is broken, not mailbot
        raise UnreadableDocument(
            "Word 文件无法读取。", f"The Word file cannot be read ({type(exc).__name__})."
        ) from None
    try:
        tables = [rows for table in document.tables for rows in _tables(table)]
        paragraphs = [p.text for p in document.paragraphs if p.text.strip()]
    except Exception as exc:  # a malformed part found only while walking it
        raise UnreadableDocument(
            "Word 文件无法读取。", f"The Word file cannot be read ({type(exc).__name__})."
        ) from None
    return DocxContent(tables, paragraphs)


def _tables(table: object, depth: int = 0) -> Iterator[list[list[str]]]:
    """A table's rows, then those of the tables nested in its cells."""
    rows: list[list[str]] = []
    nested: list[object] = []
    for row in table.rows:  # type: ignore[attr-defined]
        cells: list[str] = []
        previous: object = None
        for cell in row.cells:
            # A merged cell appears once per grid column it spans; keep it once.
            if cell == previous:
                continue
            previous = cell
            cells.append(cell.text.strip())
            if depth < 3:
                nested.extend(cell.tables)
        rows.append(cells)
    yield rows
    for inner in nested:
        yield from _tables(inner, depth + 1)
