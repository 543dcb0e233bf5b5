"""The deadline check: received strictly after the call's deadline is late."""

from __future__ import annotations

from collections.abc import Iterator

from mailbot.judge.checks.case import Case
from mailbot.judge.verdict import Problem, Severity


def check_deadline(case: Case) -> Iterator[Problem]:
    if case.received_at <= case.call.deadline:
        return
    deadline_zh, deadline_en = case.call.deadline_text()
    got_zh, got_en = case.call.local_text(case.received_at)
    yield Problem(
        "late",
        Severity.ERROR,
        f"本专项的截止时间为{deadline_zh}，您的邮件于 {got_zh}收到，已过截止时间，不予受理。",
        f"The call closed at {deadline_en}; your mail was received at {got_en}, after the "
        "deadline, and cannot be accepted.",
    )
