"""The attachment checks: one Word proposal and one PDF scan named INSTITUTION+PI.

The files inside a .zip, winmail.dat or forwarded mail count like any other
(mailbot.mail.parsing lists them after their container); the containers opened
are no material of their own. Names are shown through mailbot.mail.names.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass

from mailbot.judge.checks.case import Case
from mailbot.judge.readings.files import Pick, label, name_fit
from mailbot.judge.verdict import Problem, Severity


@dataclass(frozen=True)
class _Wanted:
    """One of the two files the call asks for, as its problems name it."""

    kind: str  # "word" or "pdf", the end of the problem codes
    zh: str
    en: str
    extensions: Sequence[str]
    stem: str  # the expected stem; the placeholders' where the mail names no one
    letter_stem: str  # the same as a letter to the sender shows it (Case.letter_stem)

    @property
    def expected(self) -> str:
        return f"{self.stem}{self.extensions[0]}"

    @property
    def letter_expected(self) -> str:
        return f"{self.letter_stem}{self.extensions[0]}"

    @property
    def shown(self) -> str:
        return " / ".join(self.extensions)


def check_attachments(case: Case) -> Iterator[Problem]:
    reading = case.files
    call = case.call
    stem = reading.stem or call.stem(
        call.naming.institution_placeholder, call.naming.pi_placeholder
    )
    word = _Wanted(
        "word",
        "建议书 Word 文件",
        "Word proposal",
        call.attachments.word_extensions,
        stem,
        case.letter_stem,
    )
    pdf = _Wanted(
        "pdf",
        "签字盖章的 PDF 扫描件",
        "signed and stamped PDF scan",
        call.attachments.pdf_extensions,
        stem,
        case.letter_stem,
    )
    for wanted, pick in ((word, reading.word), (pdf, reading.pdf)):
        yield from _name_problems(case, wanted, pick)
        if pick.attachment is not None and pick.attachment.size == 0:
            name = label(pick.attachment)
            yield Problem(
                "attachment_empty",
                Severity.ERROR,
                f"{wanted.zh}「{name}」是空文件（0 字节），请重新附上。",
                f'The {wanted.en} "{name}" is empty (0 bytes); please attach it again.',
                letter=(
                    f"{wanted.zh}是空文件（0 字节），请重新附上。",
                    f"The {wanted.en} is empty (0 bytes); please attach it again.",
                ),
            )
    yield from _sizes(case)
    if not reading.material:
        yield Problem(
            "supporting_material_missing",
            Severity.WARNING,
            "未见合作协议或外方参与证明（承诺函、往来邮件等）附件；如已包含在 PDF 中可忽略。",
            "No cooperation agreement or proof of the foreign partners' participation "
            "(letter of commitment, e-mails) is attached; ignore this if it is inside the PDF.",
        )


def _name_problems(case: Case, wanted: _Wanted, pick: Pick) -> Iterator[Problem]:
    """The file for one role missing, ambiguous, misnamed, or named with a remark."""
    stem = wanted.stem
    if pick.fit == "missing":
        yield _missing(case, wanted, pick)
    elif wanted.kind == "pdf" and pick.fit == "misnamed" and len(pick.candidates) > 1:
        yield _ambiguous(wanted, pick)
    elif pick.fit == "misnamed" and pick.attachment is not None:
        got = "」「".join(label(a) for a in pick.candidates)
        got_en = '", "'.join(label(a) for a in pick.candidates)
        expected_here = f"{stem}{pick.attachment.extension}"
        shown_here = f"{wanted.letter_stem}{pick.attachment.extension}"
        yield Problem(
            "attachment_name",
            Severity.ERROR,
            f"{wanted.zh}的文件名不正确：收到「{got}」，应命名为「{expected_here}」。",
            f'The {wanted.en} is misnamed: received "{got_en}", it should be named '
            f'"{expected_here}".',
            letter=(
                f"{wanted.zh}的文件名不正确，应命名为「{shown_here}」。",
                f'The {wanted.en} is misnamed: it should be named "{shown_here}".',
            ),
        )
    elif pick.fit == "suffix" and pick.attachment is not None:
        name = label(pick.attachment)
        yield Problem(
            "attachment_name_suffix",
            Severity.WARNING,
            f"{wanted.zh}「{name}」已受理；文件名中主体之后的附注可以接受，规范名称为「{stem}{pick.attachment.extension}」。",
            f'The {wanted.en} "{name}" is accepted; the remark after the name is tolerated, '
            f'the standard name is "{stem}{pick.attachment.extension}".',
            letter=(
                f"{wanted.zh}已受理；文件名中主体之后的附注可以接受，"
                f"规范名称为「{wanted.letter_stem}{pick.attachment.extension}」。",
                f"The {wanted.en} is accepted; the remark after the name is tolerated, the "
                f'standard name is "{wanted.letter_stem}{pick.attachment.extension}".',
            ),
        )


def _missing(case: Case, wanted: _Wanted, pick: Pick) -> Problem:
    # A file with the right name in a format the call does not take (.wps, .jpg):
    # say so, since the applicant believes it was sent.
    stem = case.files.stem
    near = [
        label(a)
        for a in case.message.attachments
        if stem is not None
        and name_fit(a, stem) in ("exact", "suffix")
        and a.extension not in case.call.attachments.word_extensions
        and a.extension not in case.call.attachments.pdf_extensions
    ]
    zh_near = f"收到的「{'」「'.join(near)}」格式不被接受。" if near else ""
    en_near = f' "{", ".join(near)}" is not in an accepted format.' if near else ""
    # The letter says the same without the names the sender chose.
    letter_zh = "收到的同名文件格式不被接受。" if near else ""
    letter_en = " The file with that name is not in an accepted format." if near else ""
    aside = [label(a) for a in pick.set_aside]
    if aside:
        zh_near += f"收到的「{'」「'.join(aside)}」是证明材料，不是{wanted.zh}。"
        quoted = '", "'.join(aside)
        en_near += f' "{quoted}" is supporting material, not the {wanted.en}.'
        many = len(aside)
        letter_zh += f"另有 {many} 个文件被视为证明材料，不是{wanted.zh}。"
        letter_en += (
            f" {many} other file(s) were taken for supporting material, not the {wanted.en}."
        )
    expected, shown = wanted.letter_expected, wanted.shown
    return Problem(
        f"missing_{wanted.kind}",
        Severity.ERROR,
        f"缺少{wanted.zh}（{wanted.shown} 格式），请附上「{wanted.expected}」。{zh_near}",
        f'The {wanted.en} ({wanted.shown}) is missing: please attach "{wanted.expected}".{en_near}',
        letter=(
            f"缺少{wanted.zh}（{shown} 格式），请附上「{expected}」。{letter_zh}",
            f'The {wanted.en} ({shown}) is missing: please attach "{expected}".{letter_en}',
        ),
    )


def _ambiguous(wanted: _Wanted, pick: Pick) -> Problem:
    """Several misnamed files could be the one meant: list them and ask for the named one."""
    got = "」「".join(label(a) for a in pick.candidates)
    got_en = '", "'.join(label(a) for a in pick.candidates)
    zh, en, expected = wanted.zh, wanted.en, wanted.expected
    shown = wanted.letter_expected
    return Problem(
        f"{wanted.kind}_ambiguous",
        Severity.ERROR,
        f"收到多个文件「{got}」，无法确定哪一个是{zh}：请将{zh}命名为「{expected}」后重新发送。",
        f'Several files could be the {en}: "{got_en}". Please name the {en} '
        f'"{expected}" and send it again.',
        letter=(
            f"收到 {len(pick.candidates)} 个文件，无法确定哪一个是{zh}："
            f"请将{zh}命名为「{shown}」后重新发送。",
            f"{len(pick.candidates)} files could be the {en}. Please name the {en} "
            f'"{shown}" and send it again.',
        ),
    )


def _sizes(case: Case) -> Iterator[Problem]:
    limits = case.call.attachments
    for attachment in case.message.attachments:
        if attachment.size > limits.max_file_size:
            name = label(attachment)
            yield Problem(
                "attachment_too_large",
                Severity.ERROR,
                f"附件「{name}」大小 {_mb(attachment.size)}，超过单个文件上限 "
                f"{_mb(limits.max_file_size)}，请压缩后重新发送。",
                f'The attachment "{name}" is {_mb(attachment.size)}, over the '
                f"limit of {_mb(limits.max_file_size)} per file; please reduce it and resend.",
                letter=(
                    f"有一个附件大小 {_mb(attachment.size)}，超过单个文件上限 "
                    f"{_mb(limits.max_file_size)}，请压缩后重新发送。",
                    f"An attachment is {_mb(attachment.size)}, over the limit of "
                    f"{_mb(limits.max_file_size)} per file; please reduce it and resend.",
                ),
            )
    # What the mail carried: a container's files are inside its own size.
    total = sum(a.size for a in case.message.attachments if a.container is None)
    if total > limits.max_total_size:
        yield Problem(
            "attachment_too_large",
            Severity.ERROR,
            f"附件合计 {_mb(total)}，超过上限 {_mb(limits.max_total_size)}。",
            f"The attachments add up to {_mb(total)}, over the limit of "
            f"{_mb(limits.max_total_size)}.",
        )


def _mb(size: int) -> str:
    return f"{size / 1024 / 1024:.1f} MB"
