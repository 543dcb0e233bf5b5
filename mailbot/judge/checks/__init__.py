"""The checks, and verdict_for(): one Message in, one Verdict out, no I/O.

Every check has the same contract (:class:`Check`): it reads a :class:`Case`
and yields Problems. Checks in ``IGNORE_CHECKS`` decide whether a mail must
never be answered; if any finds something, the mail is ``ignored`` and the
others are not run. The deadline makes a mail ``late`` whatever else is
wrong; otherwise any problem of severity error means ``needs_correction``.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any, Protocol

from mailbot.calls import Call
from mailbot.judge.checks.archives import check_archives
from mailbot.judge.checks.attachments import check_attachments
from mailbot.judge.checks.authresults import AuthCheck
from mailbot.judge.checks.autoreply import check_autoreply
from mailbot.judge.checks.calendar import check_calendar
from mailbot.judge.checks.case import Case
from mailbot.judge.checks.deadline import check_deadline
from mailbot.judge.checks.eligibility import check_eligibility
from mailbot.judge.checks.form import check_documents
from mailbot.judge.checks.limits import LimitCheck, check_readable
from mailbot.judge.checks.links import check_links
from mailbot.judge.checks.seal import check_seal
from mailbot.judge.checks.senders import SenderCheck
from mailbot.judge.checks.subject import check_subject
from mailbot.judge.policy import DEFAULT_POLICY, IntakePolicy
from mailbot.judge.readings.documents import DocumentReading
from mailbot.judge.verdict import Problem, Severity, Status, Verdict
from mailbot.mail.message import Message


class Check(Protocol):
    """Yield what is wrong with the case; yield nothing when all is well.

    A check never does I/O and never raises for anything a sender can put in
    a mail: odd input is a Problem, not an exception.
    """

    def __call__(self, case: Case, /) -> Iterable[Problem]: ...


def ignore_checks(policy: IntakePolicy) -> tuple[Check, ...]:
    """The never-answer checks, those that read the operator's settings bound to them."""
    return (
        check_readable,
        LimitCheck(policy),
        check_autoreply,
        SenderCheck(policy),
        AuthCheck(policy),
        check_calendar,
    )


IGNORE_CHECKS: tuple[Check, ...] = ignore_checks(DEFAULT_POLICY)
DEADLINE_CHECKS: tuple[Check, ...] = (check_deadline,)
CONTENT_CHECKS: tuple[Check, ...] = (
    check_subject,
    check_attachments,
    check_archives,
    check_links,
    check_documents,
    check_eligibility,
    check_seal,
)


def verdict_for(
    message: Message,
    call: Call,
    received_at: datetime | None = None,
    policy: IntakePolicy | None = None,
) -> Verdict:
    """Judge one mail against the call.

    ``received_at`` is when the mailbox received the mail (IMAP INTERNALDATE,
    Maildir file time). Without it, the mail's own topmost Received header,
    then its Date, stand in; failing both, now, with a note saying so.
    ``policy`` is the operator's [intake] settings (deny list, own addresses,
    authserv-id, limits); without it, the defaults.
    """
    notes: list[Problem] = []
    if received_at is None:
        received_at = message.receipt_guess
    if received_at is None:
        received_at = datetime.now(UTC)
        notes.append(
            Problem(
                "received_at_unknown",
                Severity.INFO,
                "邮件中没有收件时间，按当前时间判断。",
                "The mail shows no receipt time; it was judged as received now.",
            )
        )
    elif received_at.tzinfo is None:
        received_at = received_at.replace(tzinfo=call.tz)
    received_at = call.local(received_at)
    case = Case(
        message=message, call=call, received_at=received_at, policy=policy or DEFAULT_POLICY
    )

    ignored = _run(IGNORE_CHECKS if policy is None else ignore_checks(policy), case)
    if ignored:  # never answered: its documents are not worth reading
        return _verdict(case, Status.IGNORED, ignored + notes, read_documents=False)
    late = _run(DEADLINE_CHECKS, case)
    problems = late + _run(CONTENT_CHECKS, case) + notes
    if late:
        status = Status.LATE
    elif any(p.severity is Severity.ERROR for p in problems):
        status = Status.NEEDS_CORRECTION
    else:
        status = Status.ACCEPTED
    return _verdict(case, status, problems)


def _run(checks: Iterable[Check], case: Case) -> list[Problem]:
    return [problem for check in checks for problem in check(case)]


def _verdict(
    case: Case, status: Status, problems: list[Problem], *, read_documents: bool = True
) -> Verdict:
    institution, pi = case.identity
    documents = case.documents if read_documents else None
    return Verdict(
        status=status,
        received_at=case.received_at,
        institution=institution,
        pi=pi,
        problems=tuple(problems),
        attachments=case.files.roles,
        form=documents.form.as_json() if documents and documents.form else None,
        pdf_pages=documents.pdf_pages if documents else None,
        seal=_seal_json(documents),
    )


def _seal_json(documents: DocumentReading | None) -> dict[str, Any] | None:
    """`check --json`'s "seal": null when no readable PDF was looked at."""
    if documents is None or not documents.seal_checked:
        return None
    if documents.seal is None:  # PDFium could not open what pypdf read
        return {
            "found": False,
            "page": None,
            "confidence": 0.0,
            "colour": None,
            "pages_checked": [],
            "complete": False,
        }
    return documents.seal.as_json()
