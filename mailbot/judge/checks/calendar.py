"""Calendar invitations (iTIP, RFC 5546): a meeting request is no proposal and gets no reply.

Outlook and Gmail send an invitation as a text/calendar part with
``method=REQUEST`` (Gmail adds an invite.ics); updates and cancellations
come the same way. Such a mail is recorded and flagged for a person
(``calendar_invitation``, see mailbot.ledger.attention), never answered: a
"please correct" letter to a meeting organiser helps nobody.
"""

from __future__ import annotations

from collections.abc import Iterator

from mailbot.judge.checks.case import Case
from mailbot.judge.verdict import Problem, Severity

# The iTIP methods that schedule something; PUBLISH only shares an event (a conference's .ics).
_SCHEDULING = frozenset({"REQUEST", "CANCEL", "ADD", "COUNTER", "DECLINECOUNTER", "REFRESH"})


def check_calendar(case: Case) -> Iterator[Problem]:
    """One problem when the mail carries a calendar part that schedules a meeting."""
    methods = [m for m in dict.fromkeys(case.message.calendar_methods) if m in _SCHEDULING]
    if not methods:
        return
    evidence = "text/calendar; method=" + ", ".join(methods)
    yield Problem(
        "calendar_invitation",
        Severity.INFO,
        f"这是一封日历会议邀请，不是申请邮件，已转工作人员处理，不予自动答复（{evidence}）。",
        f"This is a calendar invitation, not an application: it is left to the secretariat "
        f"and gets no automatic answer ({evidence}).",
    )
