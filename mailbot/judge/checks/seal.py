"""The seal check: does the PDF scan show the official seal (签字盖章) the call asks for?

It reads what the rendered pages showed (``Case.documents.seal``, from
mailbot.documents.scan). A colour scan without a seal gets a warning (the
applicant is told; the secretariat checks by eye); a scan with no colour at
all cannot show a red seal, so it is only noted; a scan the check could not
finish within its limits is noted as unchecked.
"""

from __future__ import annotations

from collections.abc import Iterator

from mailbot.judge.checks.case import Case
from mailbot.judge.readings.files import label
from mailbot.judge.verdict import Problem, Severity


def check_seal(case: Case) -> Iterator[Problem]:
    reading = case.documents
    pdf = case.files.pdf.attachment
    if not reading.seal_checked or pdf is None:
        return
    name = label(pdf)
    seal = reading.seal
    if seal is not None and seal.found:
        return
    if seal is None or not seal.complete:
        yield Problem(
            "seal_unchecked",
            Severity.INFO,
            f"PDF 扫描件「{name}」上的公章未能由系统自动核对；秘书处将人工核对。",
            f'The PDF scan "{name}" could not be checked for the stamp by machine; '
            "the secretariat will check it.",
        )
    elif seal.colour:
        yield Problem(
            "seal_not_found",
            Severity.WARNING,
            f"在 PDF 扫描件「{name}」的首末页上未找到公章。本专项要求提交签字并加盖单位公章后的"
            "扫描件；秘书处将人工核对。",
            f'No official seal was found on the first and last pages of the PDF scan "{name}". '
            "The call asks for a scan of the proposal signed and stamped with the institution's "
            "seal; the secretariat will check it.",
        )
    else:
        yield Problem(
            "scan_not_colour",
            Severity.INFO,
            f"PDF 扫描件「{name}」为黑白扫描，公章无法由系统自动核对；秘书处将人工核对。",
            f'The PDF scan "{name}" has no colour (a black-and-white scan), so the stamp '
            "cannot be checked by machine; the secretariat will check it.",
        )
