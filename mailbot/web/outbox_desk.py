"""The outbox as the desk shows it: every letter by state, resent or marked dealt with.

A resend queues a new outbox row (same recipient, subject, text and thread,
a new Message-ID) and keeps the old one as it was; marking a letter dealt
with changes nothing in the outbox and is a line in the audit trail.
"""

from __future__ import annotations

import email
import email.policy
from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy import func, select
from sqlalchemy.orm import Session, defer, selectinload

from mailbot.app import App
from mailbot.domain import ReplyState
from mailbot.ledger.attention import LETTER_DEALT_WITH, OUTBOX_RESEND
from mailbot.replies.outbox import Outgoing, queue_reply
from mailbot.store.models import AuditEvent, Mail, Reply, Submission
from mailbot.web.actions import Acting, ActionError, Entry, audit

# The outbox page's filters: a name, the states it covers.
STATE_GROUPS: dict[str, tuple[str, ...]] = {
    "waiting": (ReplyState.PENDING, ReplyState.SENDING, ReplyState.HANDED),
    "sent": (ReplyState.SENT,),
    "failed": (ReplyState.FAILED,),
    "uncertain": (ReplyState.UNCERTAIN,),
    "bounced": (ReplyState.BOUNCED,),
    "suppressed": (ReplyState.SUPPRESSED,),
    "superseded": (ReplyState.SUPERSEDED,),
}
RESENDABLE = frozenset({ReplyState.FAILED, ReplyState.UNCERTAIN, ReplyState.BOUNCED})
TROUBLED = (ReplyState.FAILED, ReplyState.UNCERTAIN, ReplyState.BOUNCED, ReplyState.SUPPRESSED)

# AuditEvent.action values, which the ledger reads to know what is settled.
DEALT_WITH = LETTER_DEALT_WITH

PAGE_SIZE = 100


@dataclass(frozen=True)
class Letter:
    """One outbox row, with what the desk knows about it."""

    reply: Reply
    reference: str | None
    dealt_with: AuditEvent | None
    resent_as: int | None  # the id of the row a resend queued


@dataclass(frozen=True)
class OutboxPage:
    letters: list[Letter]
    counts: dict[str, int]  # per state group
    total: int  # rows matching the filter
    page: int
    pages: int


def outbox_page(session: Session, call_id: str, group: str, page: int) -> OutboxPage:
    """One page of the outbox, newest first, in one state group (or all)."""
    states = STATE_GROUPS.get(group)
    of_call = (Reply.call_id == call_id) | Reply.call_id.is_(None)
    by_state = dict(
        session.execute(
            select(Reply.state, func.count(Reply.id)).where(of_call).group_by(Reply.state)
        ).all()
    )
    counts = {
        name: sum(by_state.get(s, 0) for s in group_states)
        for name, group_states in STATE_GROUPS.items()
    }
    wanted = select(Reply).where(of_call)
    if states is not None:
        wanted = wanted.where(Reply.state.in_(states))
    total = session.scalar(select(func.count()).select_from(wanted.subquery())) or 0
    pages = max(1, -(-total // PAGE_SIZE))
    page = min(max(page, 1), pages)
    replies = session.scalars(
        wanted.options(defer(Reply.raw), selectinload(Reply.mail).selectinload(Mail.submission))
        .order_by(Reply.id.desc())
        .limit(PAGE_SIZE)
        .offset((page - 1) * PAGE_SIZE)
    ).all()
    return OutboxPage(_letters(session, replies), counts, total, page, pages)


def _letters(session: Session, replies: Sequence[Reply]) -> list[Letter]:
    ids = [reply.id for reply in replies]
    references = dict(
        session.execute(
            select(Submission.id, Submission.reference).where(
                Submission.id.in_(sorted({r.submission_id for r in replies if r.submission_id}))
            )
        ).all()
    )
    dealt: dict[int, AuditEvent] = {}
    resent: dict[int, int] = {}
    for event in session.scalars(
        select(AuditEvent)
        .where(AuditEvent.action.in_((DEALT_WITH, OUTBOX_RESEND)))
        .order_by(AuditEvent.id)
    ):
        if event.action == DEALT_WITH and event.reply_id in ids and event.reply_id is not None:
            dealt[event.reply_id] = event
        old = event.detail.get("resent_reply_id")
        if event.action == OUTBOX_RESEND and old in ids and event.reply_id is not None:
            resent[int(old)] = event.reply_id
    letters = []
    for reply in replies:
        submission_id = reply.submission_id or (reply.mail.submission_id if reply.mail else None)
        reference = references.get(submission_id) if submission_id else None
        if reference is None and reply.mail is not None and reply.mail.submission is not None:
            reference = reply.mail.submission.reference
        letters.append(Letter(reply, reference, dealt.get(reply.id), resent.get(reply.id)))
    return letters


MAX_ID = 2**63 - 1  # a larger number is no row's id, and the database would refuse it


def _letter(session: Session, call_id: str, reply_id: int) -> Reply:
    reply = session.get(Reply, reply_id) if 0 < reply_id <= MAX_ID else None
    if reply is None or reply.call_id not in (call_id, None):
        raise LookupError(reply_id)
    return reply


def resend(session: Session, app: App, reply_id: int, acting: Acting) -> Reply:
    """Queue a failed, uncertain or bounced letter again as a new row; the old one stays."""
    acting = acting.checked()
    old = _letter(session, app.call.id, reply_id)
    if old.state not in RESENDABLE:
        raise ActionError("not_resendable", reply_id=old.id)
    original = email.message_from_bytes(old.raw, policy=email.policy.default)
    reply = queue_reply(
        session,
        # A letter a person wrote stays a person's letter when it is sent again.
        Outgoing.again(
            old,
            submission_id=old.submission_id,
            by_person=original.get("Auto-Submitted") is None,
        ),
        settings=app.settings.replies,
        call=app.call,
        now=acting.now,
    )
    entry = Entry(
        OUTBOX_RESEND,
        submission=session.get(Submission, old.submission_id) if old.submission_id else None,
        reply=reply,
        detail={"resent_reply_id": old.id, "state": reply.state, "to": old.to_address},
    )
    audit(session, acting, entry)
    return reply


def mark_dealt_with(session: Session, app: App, reply_id: int, acting: Acting) -> None:
    """A letter in trouble a person has dealt with another way (a phone call, a new address)."""
    acting = acting.checked()
    reply = _letter(session, app.call.id, reply_id)
    if reply.state not in TROUBLED:
        raise ActionError("nothing_to_deal_with", reply_id=reply.id, state=reply.state)
    done = session.scalar(
        select(AuditEvent.id).where(
            AuditEvent.action == DEALT_WITH, AuditEvent.reply_id == reply.id
        )
    )
    if done is not None:
        raise ActionError("letter_dealt_with", reply_id=reply.id)
    entry = Entry(
        DEALT_WITH,
        submission=session.get(Submission, reply.submission_id) if reply.submission_id else None,
        reply=reply,
        detail={"state": reply.state, "to": reply.to_address},
    )
    audit(session, acting, entry)
