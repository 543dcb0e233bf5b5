"""The subject check: PREFIX：INSTITUTION+PI, with the slack real clients need."""

from __future__ import annotations

from collections.abc import Iterator

from mailbot.judge.checks.case import Case
from mailbot.judge.verdict import Problem, Severity


def check_subject(case: Case) -> Iterator[Problem]:
    if case.subject.well_formed:
        return
    institution, pi = case.identity
    call = case.call
    expected = (
        call.expected_subject(institution, pi) if institution and pi else call.placeholder_subject()
    )
    got = case.message.subject or "（空）"
    got_en = case.message.subject or "(empty)"
    # The letter never repeats the subject: it would carry any text a stranger chose.
    shown = f"{call.subject.prefix}：{case.letter_stem}"
    yield Problem(
        "subject_format",
        Severity.ERROR,
        f"邮件主题格式不正确：收到的主题是「{got}」，应为「{expected}」。",
        f'The subject is not in the required form: it reads "{got_en}" and should read '
        f'"{expected}".',
        letter=(
            f"邮件主题格式不正确，应为「{shown}」。",
            f'The subject is not in the required form: it should read "{shown}".',
        ),
    )
