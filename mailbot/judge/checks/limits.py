"""Mail nobody can read: unparseable bytes, and mail over the intake's limits.

The MIME screen (mailbot.mail.screen) refuses raw bytes over the limits
before any parser; ``LimitCheck`` says the same of a Message already parsed.
Both give ``too_complex``; bytes with no mail header give ``unparseable``.
Either way nobody is answered and a person reads the mail.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

from mailbot.judge.checks.case import Case
from mailbot.judge.policy import IntakePolicy
from mailbot.judge.verdict import Problem, Severity
from mailbot.mail.screen import over_size

# A mail has at least one of these; bytes that show none are no mail at all.
_MAIL_HEADERS = frozenset(
    {
        "from",
        "sender",
        "reply-to",
        "to",
        "cc",
        "bcc",
        "subject",
        "date",
        "message-id",
        "received",
        "return-path",
        "mime-version",
        "content-type",
    }
)
_DEPTH_DEFECT = "nesting deeper than"  # what mailbot.mail.parsing notes when it stops walking


def check_readable(case: Case) -> Iterator[Problem]:
    """``unparseable``: no mail header at all, or the libraries could read only the headers."""
    message = case.message
    if message.parsed_by == "headers-only":
        failures = "; ".join(d for d in message.defects if d.startswith(("mail-parser", "email")))
        yield unparseable(f"only the headers could be read: {_short(failures)}")
    elif not any(name in _MAIL_HEADERS for name, _value in message.headers):
        yield unparseable(f"no mail header in {message.raw_size} bytes")


@dataclass(frozen=True)
class LimitCheck:
    """``too_complex``: a parsed mail over the size, part or nesting limits."""

    policy: IntakePolicy

    def __call__(self, case: Case) -> Iterator[Problem]:
        message = case.message
        reasons = []
        if message.raw_size > self.policy.max_mail_size:
            reasons.append(over_size(message.raw_size, self.policy.max_mail_size))
        parts = len(message.attachments) + len(message.inline_parts)
        if parts > self.policy.max_parts:
            reasons.append(f"{parts} parts, over the limit of {self.policy.max_parts}")
        reasons += [d for d in message.defects if d.startswith(_DEPTH_DEFECT)]
        if reasons:
            yield too_complex("; ".join(reasons))


def _short(value: str, limit: int = 200) -> str:
    value = " ".join(value.split())
    return value if len(value) <= limit else value[: limit - 1] + "…"


def unparseable(evidence: str) -> Problem:
    return Problem(
        "unparseable",
        Severity.INFO,
        f"无法读取这封邮件，不予答复，由工作人员阅读（{evidence}）。",
        f"The mail cannot be read; it gets no answer and a person reads it ({evidence}).",
    )


def too_complex(evidence: str) -> Problem:
    return Problem(
        "too_complex",
        Severity.INFO,
        f"邮件超出系统处理限度，不予答复，由工作人员阅读（{evidence}）。",
        f"The mail is beyond what mailbot reads; it gets no answer and a person reads it "
        f"({evidence}).",
    )
