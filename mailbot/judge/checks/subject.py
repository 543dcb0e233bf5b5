"""The subject check: PREFIX：INSTITUTION+PI, with the slack real clients need."""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass

from mailbot.calls import Call
from mailbot.judge.checks.case import Case
from mailbot.judge.verdict import Problem, Severity

_COLON = "[:：]"
_PLUS = "[+＋]"


@dataclass(frozen=True)
class SubjectReading:
    institution: str | None
    pi: str | None
    well_formed: bool
    core: str  # the subject without reply and forward prefixes


def strip_reply_prefixes(subject: str, call: Call) -> str:
    """Remove Re:, 回复：, Fwd[2]: ... from the front, however many there are."""
    names = "|".join(
        re.escape(p) for p in sorted(call.subject.reply_prefixes, key=len, reverse=True)
    )
    if not names:
        return subject.strip()
    pattern = re.compile(rf"^\s*(?:{names})\s*(?:\[\d+\]|\(\d+\))?\s*{_COLON}\s*", re.IGNORECASE)
    previous = None
    while previous != subject:
        previous, subject = subject, pattern.sub("", subject, count=1)
    return subject.strip()


def read_subject(subject: str, call: Call) -> SubjectReading:
    core = strip_reply_prefixes(subject, call)
    prefix = re.escape(call.subject.prefix)
    strict = re.fullmatch(
        rf"{prefix}\s*{_COLON}\s*(?P<inst>.*\S)\s*{_PLUS}\s*(?P<pi>[^+＋]*[^+＋\s])", core
    )
    if strict:
        return SubjectReading(strict.group("inst").strip(), strict.group("pi").strip(), True, core)
    # Not well formed: still try to see who wrote, so that the reply can spell
    # out the exact subject expected of them.
    rest = re.sub(rf"^.*?{prefix}", "", core, count=1) if call.subject.prefix in core else core
    rest = re.sub(r"^[\s\W_]+", "", rest)
    loose = re.fullmatch(rf"(?P<inst>.*?\S)\s*{_PLUS}\s*(?P<pi>[^+＋]*[^+＋\s\W])\W*", rest)
    if loose:
        return SubjectReading(loose.group("inst").strip(), loose.group("pi").strip(), False, core)
    return SubjectReading(None, None, False, core)


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
    yield Problem(
        "subject_format",
        Severity.ERROR,
        f"邮件主题格式不正确：收到的主题是「{got}」，应为「{expected}」。",
        f'The subject is not in the required form: it reads "{got_en}" and should read '
        f'"{expected}".',
    )
