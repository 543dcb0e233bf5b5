"""What the chosen Word proposal and PDF scan say, read once for every check."""

from __future__ import annotations

from dataclasses import dataclass

from mailbot.calls import Call
from mailbot.documents.form import FormFacts, read_form
from mailbot.documents.pdf import inspect_pdf
from mailbot.documents.word import UnreadableDocument, read_docx
from mailbot.judge.readings.files import FileReading


@dataclass(frozen=True)
class DocumentReading:
    form: FormFacts | None = None
    word_problem: UnreadableDocument | None = None
    legacy_doc: bool = False
    pdf_pages: int | None = None
    pdf_problem: UnreadableDocument | None = None


def read_documents(files: FileReading, call: Call) -> DocumentReading:
    """The form in the Word file and the PDF's page count, or why either could not be read."""
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
    if pdf is not None and 0 < pdf.size <= limit:
        try:
            pages = inspect_pdf(pdf.data, call.documents).pages
        except UnreadableDocument as exc:
            pdf_problem = exc
    return DocumentReading(form, word_problem, legacy, pages, pdf_problem)
