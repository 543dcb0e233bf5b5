"""What `mailbot doctor` found: one finding per check, printed as one line each."""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import asdict, dataclass
from enum import StrEnum


class Status(StrEnum):
    """How a check came out; only FAIL makes `mailbot doctor` exit 1."""

    OK = "ok"
    WARN = "warn"  # works, but unwise: a plain connection, nobody gets the digest
    FAIL = "FAIL"  # mailbot cannot work (or judges wrongly) until this is fixed
    SKIP = "skip"  # not checked: it does not apply, or an earlier check failed


@dataclass(frozen=True)
class Finding:
    """One check's outcome: what was checked, what was seen, and how to fix it."""

    check: str
    status: Status
    text: str
    fix: str = ""

    def line(self) -> str:
        fix = f"; fix: {self.fix}" if self.fix and self.status != Status.OK else ""
        text = self.text.rstrip(".") if fix else self.text
        return f"{self.status:<4}  {self.check}: {text}{fix}"


def ok(check: str, text: str) -> Finding:
    return Finding(check, Status.OK, text)


def warn(check: str, text: str, fix: str = "") -> Finding:
    return Finding(check, Status.WARN, text, fix)


def fail(check: str, text: str, fix: str) -> Finding:
    return Finding(check, Status.FAIL, text, fix)


def skip(check: str, text: str) -> Finding:
    return Finding(check, Status.SKIP, text)


def failed(findings: Iterable[Finding]) -> bool:
    return any(f.status == Status.FAIL for f in findings)


def _count(n: int, one: str, many: str) -> str:
    return f"{n} {one if n == 1 else many}"


def summary(findings: list[Finding]) -> str:
    """The closing line: how many checks failed and warned."""
    failures = sum(f.status == Status.FAIL for f in findings)
    warnings = sum(f.status == Status.WARN for f in findings)
    verdict = "not ready" if failures else "ready"
    return (
        f"{verdict}: {_count(failures, 'failure', 'failures')}, "
        f"{_count(warnings, 'warning', 'warnings')}, {_count(len(findings), 'check', 'checks')}"
    )


def report(findings: list[Finding]) -> str:
    return "\n".join([*(f.line() for f in findings), summary(findings)])


def report_json(findings: list[Finding]) -> str:
    return json.dumps(
        {
            "ok": not failed(findings),
            "checks": [{**asdict(f), "status": str(f.status).lower()} for f in findings],
        },
        ensure_ascii=False,
        indent=2,
    )
