"""Check that a PDF is a real, readable PDF, and count its pages (pypdf).

Only the document's structure is read, never its page contents, and the
page count is taken from the page tree's /Count before the tree is walked,
so a 10,000-page file is refused at once.
"""

from __future__ import annotations

import io
import logging
from dataclasses import dataclass
from typing import Any

from mailbot.calls import DocumentsSection
from mailbot.documents.word import UnreadableDocument

# pypdf logs every repair it makes to a damaged file; the verdict says what matters.
logging.getLogger("pypdf").setLevel(logging.ERROR)


@dataclass(frozen=True)
class PdfFacts:
    pages: int


class _Bytes(io.RawIOBase):
    """The PDF's bytes as a read-only stream, read where they lie.

    pypdf sizes an io.BytesIO with ``getbuffer()``, which makes the BytesIO
    copy the bytes it was given: a second copy of every scan (35 MB for a
    49 MB mail). This stream has no ``getbuffer``, so pypdf seeks instead.
    """

    def __init__(self, data: bytes) -> None:
        self._view = memoryview(data)
        self._pos = 0

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def tell(self) -> int:
        return self._pos

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        base = {io.SEEK_SET: 0, io.SEEK_CUR: self._pos, io.SEEK_END: len(self._view)}[whence]
        self._pos = max(0, base + offset)
        return self._pos

    def readinto(self, buffer: Any) -> int:
        chunk = self._view[self._pos : self._pos + len(buffer)]
        buffer[: len(chunk)] = chunk
        self._pos += len(chunk)
        return len(chunk)


def inspect_pdf(data: bytes, limits: DocumentsSection) -> PdfFacts:
    """The PDF's page count; raises UnreadableDocument when it is no readable PDF."""
    if b"%PDF-" not in data[:1024]:
        raise UnreadableDocument(
            "文件不是 PDF（文件头不符），请附上签字盖章后扫描的 PDF 文件。",
            "The file is not a PDF (its header is wrong); please attach the signed and stamped "
            "scan as a PDF.",
        )
    from pypdf import PdfReader

    try:
        reader = PdfReader(io.BufferedReader(_Bytes(data)), strict=False)
        if reader.is_encrypted and not reader.decrypt(""):
            raise UnreadableDocument(
                "PDF 文件设有打开密码，无法读取，请发送未加密的文件。",
                "The PDF is protected by a password; please send it without one.",
            )
        root = reader.trailer["/Root"].get_object()
        declared = int(root["/Pages"].get_object()["/Count"])  # type: ignore[index]
        if declared > limits.max_pdf_pages:
            raise UnreadableDocument(
                f"PDF 文件有 {declared} 页，超过上限 {limits.max_pdf_pages} 页，"
                "请只附上建议书扫描件。",
                f"The PDF has {declared} pages, over the limit of {limits.max_pdf_pages}; "
                "please attach only the proposal scan.",
            )
        pages = len(reader.pages)
    except UnreadableDocument:
        raise
    except Exception as exc:  # pypdf raises many kinds on damaged files
        raise UnreadableDocument(
            "PDF 文件已损坏，无法读取，请重新扫描或导出后发送。",
            f"The PDF is damaged and cannot be read ({type(exc).__name__}); please scan or "
            "export it again.",
        ) from None
    if pages == 0:
        raise UnreadableDocument("PDF 文件没有页面。", "The PDF has no pages.")
    return PdfFacts(pages)
