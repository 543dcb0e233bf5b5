"""Mail and letters needing a person: the one definition the desk, the CLI and the digest read.

A mail needs a person when its problems name one of ``NEEDS_A_PERSON`` (it
could not be read, judged or trusted, is a bounce of one of our replies,
comes from a colleague at the call's own domain, is a calendar invitation or
a file-less mail in an accepted submission's thread, its PI may not be
eligible, or its files came with another submission); a letter does when it
failed, may not have arrived, or bounced.
A mail a person marked handled, and a letter a person dealt with or sent
again, need nobody any more: ``_open_mails`` and ``_open_letters`` alone
say so.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, Select, Text, cast, or_, select
from sqlalchemy.orm import Session

from mailbot.calls import Call
from mailbot.domain import MailStatus, ReplyState
from mailbot.store.models import AuditEvent, Mail, Reply

# AuditEvent.action of a letter sent again as a new row, and of one a person dealt with.
OUTBOX_RESEND = "outbox_resend"
LETTER_DEALT_WITH = "letter_dealt_with"

# Why a mail needs a person, in (Chinese, English).
NEEDS_A_PERSON: dict[str, tuple[str, str]] = {
    "unparseable": ("无法解析", "could not be read"),
    "too_complex": ("结构过于复杂", "too complex to open"),
    "unjudged": ("未能判定", "could not be judged"),
    "auth_failed": ("发件人认证失败", "sender authentication failed"),
    "bounce": ("退信", "a bounce of our reply"),
    "own_domain": ("来自本机构域名", "from the call's own domain"),
    "calendar_invitation": ("日历会议邀请", "a calendar invitation"),
    "thread_followup": ("已受理申请的来信", "a mail in an accepted application's thread"),
    "pi_ongoing_project": ("负责人有在研项目", "the PI leads an ongoing project"),
    "same_files_as": ("与其他申请文件相同", "the same files as another submission"),
}
# Why a letter needs a person: the reply states it is in.
TROUBLED_LETTERS: dict[str, tuple[str, str]] = {
    ReplyState.FAILED: ("发送失败", "sending failed"),
    ReplyState.UNCERTAIN: ("发送中断，可能未送达", "interrupted: may not have arrived"),
    ReplyState.BOUNCED: ("被退信，请另行联系申请人", "bounced: reach the applicant another way"),
}
# How the other-mail list groups mail tied to no submission.
FLAGGED = frozenset({"bounce", "auth_failed", "own_domain", "calendar_invitation"})
UNMATCHED_KINDS = ("flagged", "unparseable", "ignored")


def codes(problems: Sequence[Any]) -> list[str]:
    return [str(p.get("code", "")) for p in problems if isinstance(p, Mapping)]


def _reasons(problems: Sequence[Any]) -> list[str]:
    """The codes for which a mail with these problems needs a person; empty when none."""
    return [code for code in dict.fromkeys(codes(problems)) if code in NEEDS_A_PERSON]


def may_have_code(*wanted: str) -> ColumnElement[bool]:
    """A mail whose problems may name one of these codes, read from the JSON text in SQL.

    It finds the few candidates among thousands; ``codes()`` on each decides.
    """
    text = cast(Mail.problems, Text)
    return or_(*(text.like(f'%"{code}"%') for code in wanted))


def _open_mails(call: Call) -> Select[Any]:
    # Columns, not whole mails: on a busy call there are thousands of candidates.
    return select(Mail.id, Mail.sender, Mail.subject, Mail.received_at, Mail.problems).where(
        Mail.call_id == call.id,
        Mail.duplicate_of_id.is_(None),
        Mail.handled_at.is_(None),
        may_have_code(*NEEDS_A_PERSON),
    )


def _open_letters(session: Session, call: Call) -> list[Reply]:
    troubled = session.scalars(
        select(Reply)
        .where(
            or_(Reply.call_id == call.id, Reply.call_id.is_(None)),
            Reply.state.in_(tuple(TROUBLED_LETTERS)),
        )
        .order_by(Reply.id)
    ).all()
    settled = settled_letters(session)
    return [reply for reply in troubled if reply.id not in settled]


def settled_letters(session: Session) -> set[int]:
    """Ids of letters a person dealt with or sent again (the resend is a row of its own)."""
    settled: set[int] = set()
    for action, reply_id, detail in session.execute(
        select(AuditEvent.action, AuditEvent.reply_id, AuditEvent.detail).where(
            AuditEvent.action.in_((OUTBOX_RESEND, LETTER_DEALT_WITH))
        )
    ):
        if action == LETTER_DEALT_WITH and reply_id is not None:
            settled.add(reply_id)
        elif action == OUTBOX_RESEND and isinstance(detail, Mapping):
            old = detail.get("resent_reply_id")
            if isinstance(old, int):
                settled.add(old)
    return settled


@dataclass(frozen=True)
class MailNeed:
    """A mail needing a person, and why (codes of NEEDS_A_PERSON)."""

    id: int
    sender: str | None
    subject: str
    received_at: datetime
    reasons: list[str]


@dataclass(frozen=True)
class Attention:
    """What needs a person now, oldest first."""

    mails: list[MailNeed]
    letters: list[Reply]

    @property
    def count(self) -> int:
        return len(self.mails) + len(self.letters)


def needing_a_person(session: Session, call: Call) -> Attention:
    candidates = session.execute(_open_mails(call).order_by(Mail.received_at, Mail.id))
    mails = [
        MailNeed(mail_id, sender, subject, received_at, found)
        for mail_id, sender, subject, received_at, problems in candidates
        if (found := _reasons(problems))
    ]
    letters = _open_letters(session, call)
    return Attention(mails=mails, letters=letters)


def _kind(status: str, problems: Sequence[Any]) -> str:
    found = set(_reasons(problems))
    if found & FLAGGED:
        return "flagged"
    # A mail the daemon would answer but could tie to no submission had no readable subject.
    if found or status != MailStatus.IGNORED:
        return "unparseable"
    return "ignored"


def mail_kind(mail: Mail) -> str:
    """How the other-mail list files a mail tied to no submission: flagged, unparseable, ignored."""
    return _kind(mail.status, mail.problems)


def unmatched_mails(
    session: Session, call: Call, kind: str = "", *, handled: bool = False
) -> list[Mail]:
    """Mail tied to no submission that nobody marked handled (all of it: ``handled``),
    newest first; of one kind when ``kind`` names one."""
    wanted = select(Mail).where(Mail.call_id == call.id, Mail.submission_id.is_(None))
    if not handled:
        wanted = wanted.where(Mail.handled_at.is_(None))
    mails = session.scalars(wanted.order_by(Mail.received_at.desc(), Mail.id.desc())).all()
    return [mail for mail in mails if not kind or mail_kind(mail) == kind]


def unmatched_counts(session: Session, call: Call) -> dict[str, int]:
    """How many open mails (not marked handled) tied to no submission there are of each kind."""
    counts = dict.fromkeys(UNMATCHED_KINDS, 0)
    for status, problems in session.execute(
        select(Mail.status, Mail.problems).where(
            Mail.call_id == call.id, Mail.submission_id.is_(None), Mail.handled_at.is_(None)
        )
    ):
        counts[_kind(status, problems)] += 1
    return counts
