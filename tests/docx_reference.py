"""mailbot's Word reader before it read the XML itself: python-docx 1.2's object model.

Kept as the reference the XML reader is held to (tests/test_wordxml.py) and
as a row of the benchmark's stage table (bench/stages.py) for comparison.
"""

from __future__ import annotations

import io
import zipfile
from collections.abc import Iterator

import docx
from docx.opc.exceptions import PackageNotFoundError

from mailbot.calls import DocumentsSection
from mailbot.documents.word import DocxContent, UnreadableDocument, check_zip


def read_with_python_docx(data: bytes, limits: DocumentsSection) -> DocxContent:
    """mailbot's reader before it read the XML itself: python-docx's object model."""
    check_zip(data, limits)
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
    except Exception as exc:
        raise UnreadableDocument(
            "Word 文件无法读取。", f"The Word file cannot be read ({type(exc).__name__})."
        ) from None
    try:
        tables = [rows for table in document.tables for rows in _reference_tables(table)]
        paragraphs = [p.text for p in document.paragraphs if p.text.strip()]
    except Exception as exc:
        raise UnreadableDocument(
            "Word 文件无法读取。", f"The Word file cannot be read ({type(exc).__name__})."
        ) from None
    return DocxContent(tables, paragraphs)


def _reference_tables(table: docx.table.Table, depth: int = 0) -> Iterator[list[list[str]]]:
    rows: list[list[str]] = []
    nested: list[docx.table.Table] = []
    for row in table.rows:
        cells: list[str] = []
        previous: object = None
        for cell in row.cells:
            if cell == previous:
                continue
            previous = cell
            cells.append(cell.text.strip())
            if depth < 3:
                nested.extend(cell.tables)
        rows.append(cells)
    yield rows
    for inner in nested:
        yield from _reference_tables(inner, depth + 1)
