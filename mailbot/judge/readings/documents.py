"""What the chosen Word proposal and PDF scan say (the form, the pages, the seal), read once."""

from __future__ import annotations

from dataclasses import dataclass

from mailbot.calls import Call
from mailbot.documents.form import FormFacts, read_form
from mailbot.documents.pdf import inspect_pdf
from mailbot.documents.scan import SealLimits, SealReading, read_seal
from mailbot.documents.word import UnreadableDocument, read_docx
from mailbot.judge.readings.files import FileReading


@dataclass(frozen=True)
class DocumentReading:
    form: FormFacts | None = None
    word_problem: UnreadableDocument | None = None
    legacy_doc: bool = False
    pdf_pages: int | None = None
    pdf_problem: UnreadableDocument | None = None
    seal_checked: bool = False  # the seal was looked for: a readable PDF, and the check is on
    seal: SealReading | None = None  # what was seen; None when PDFium could not open the PDF


def read_documents(
    files: FileReading, call: Call, seal_limits: SealLimits | None = None
) -> DocumentReading:
    """The form in the Word file, the PDF's page count and its seal, or why they could not be read.

    The seal is looked for on a PDF pypdf could read, under ``seal_limits``
    (none: not looked for).
    """
    word = files.word.attachment
    pdf = files.pdf.attachment
    form = word_problem = pdf_problem = None
    legacy = False
    pages = None
    limit = call.attachments.max_file_size  # a file over it is already an error: not read
    if word is not None and 0 < word.size <= limit and call.form is not None:
        if word.extension == ".doc":
            legacy = True
        else:
            try:
                content = read_docx(word.data, call.documents)
                form = read_form(content, call.form, call.institution_lists)
            except UnreadableDocument as exc:
                word_problem = exc
    seal_checked = False
    seal = None
    if pdf is not None and 0 < pdf.size <= limit:
        try:
            pages = inspect_pdf(pdf.data, call.documents).pages
        except UnreadableDocument as exc:
            pdf_problem = exc
        if pdf_problem is None and seal_limits is not None and seal_limits.check:
            seal_checked, seal = True, read_seal(pdf.data, seal_limits)
    return DocumentReading(form, word_problem, legacy, pages, pdf_problem, seal_checked, seal)
