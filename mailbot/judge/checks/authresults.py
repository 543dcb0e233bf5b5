"""Forged senders: the mailbox's own server says DMARC or SPF failed (RFC 8601).

Only Authentication-Results written by our own server count, recognised by
its authserv-id from the config: any other can be written by the sender.
Every one of ours is read, since a server may write one per method (SPF,
DKIM and DMARC filters each adding their own). A forger who adds a "fail"
under our name only gets their own mail flagged.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass

from mailbot.judge.checks.case import Case
from mailbot.judge.policy import IntakePolicy
from mailbot.judge.verdict import Problem, Severity

_FAILING = {"dmarc": {"fail"}, "spf": {"fail"}}
_COMMENT = re.compile(r"\([^()]*\)")
_RESULT = re.compile(r"^\s*([A-Za-z][\w.-]*)\s*(?:/\s*\d+\s*)?=\s*([A-Za-z]+)")


def read_results(value: str) -> tuple[str, list[tuple[str, str]]]:
    """(authserv-id, [(method, result), ...]) from one Authentication-Results value."""
    text = " ".join(value.split())
    for _ in range(8):  # nested comments, a few levels deep at most
        text, found = _COMMENT.subn(" ", text)
        if not found:
            break
    head, _, rest = text.partition(";")
    words = head.split()
    server = words[0].lower() if words else ""
    results = []
    for resinfo in rest.split(";"):
        match = _RESULT.match(resinfo)
        if match:
            results.append((match.group(1).lower(), match.group(2).lower()))
    return server, results


@dataclass(frozen=True)
class AuthCheck:
    """DMARC or SPF failed by our own server's word: no reply, and a person reads the mail."""

    policy: IntakePolicy

    def __call__(self, case: Case) -> Iterator[Problem]:
        ours = self.policy.authserv_id
        if not ours:
            return
        failed = []
        for value in case.message.header_values("authentication-results"):
            server, results = read_results(value)
            if server != ours:
                continue
            failed += [f"{m}={r}" for m, r in results if r in _FAILING.get(m, ())]
        if failed:
            evidence = f"Authentication-Results: {ours}; " + ", ".join(dict.fromkeys(failed))
            yield Problem(
                "auth_failed",
                Severity.INFO,
                f"本邮箱服务器未能验证发件人身份，邮件不予答复，由工作人员核实（{evidence}）。",
                "Our mail server could not confirm the sender, so the mail gets no answer "
                f"and a person checks it ({evidence}).",
            )
