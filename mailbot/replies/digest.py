"""The daily digest to the secretariat: counts, new submissions, open corrections, troubles."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import Select, func, select
from sqlalchemy.orm import Session

from mailbot.calls import Call
from mailbot.config import ReplySettings
from mailbot.domain import ReplyState, SubmissionStatus
from mailbot.ledger.attention import NEEDS_A_PERSON, Attention, needing_a_person
from mailbot.ledger.labels import STATUSES
from mailbot.replies.outbox import Outgoing, queue_reply
from mailbot.replies.render import Renderer, call_context, local_text, single_line
from mailbot.store.models import Mail, Reply, Submission, Version

# The digest's template, and the Reply.template that marks a queued digest.
DIGEST = "digest"


def last_digest_at(session: Session) -> datetime | None:
    """When the last digest was queued, so the next one reports what came since."""
    # Replies carry no call id; one database serves one call's mailbox.
    return session.scalar(select(func.max(Reply.queued_at)).where(Reply.template == DIGEST))


def digest_context(
    session: Session, call: Call, *, since: datetime | None, now: datetime
) -> dict[str, Any]:
    """The digest's variables (templates/README.md) read from the database."""
    submissions = select(Submission).where(Submission.call_id == call.id)
    new = submissions.order_by(Submission.seq)
    if since is not None:
        new = new.where(Submission.created_at > since)
    attention = needing_a_person(session, call)
    needing = _needing(call, attention)
    since_zh, since_en = local_text(call, since)
    generated_zh, generated_en = call.local_text(now)
    return {
        **call_context(call),
        "date": call.local(now).date().isoformat(),
        "generated_zh": generated_zh,
        "generated_en": generated_en,
        "since_zh": since_zh,
        "since_en": since_en,
        "counts": _counts(session, call),
        "submissions_total": session.scalar(
            select(func.count(Submission.id)).where(Submission.call_id == call.id)
        )
        or 0,
        "new_submissions": [_identity(s) for s in session.scalars(new)],
        "open_corrections": _open_corrections(session, submissions),
        "needs_a_person": needing,
        "unparseable": [
            {k: item[k] for k in ("mail_id", "sender", "subject", "received")}
            for item, mail in zip(needing, attention.mails, strict=True)
            if "unparseable" in mail.reasons
        ],
        "status_labels": STATUSES,
        "troubled_replies": _troubled(attention),
        "suppressed_replies": _suppressed(session, since),
    }


def _suppressed(session: Session, since: datetime | None) -> int:
    """How many replies were recorded but not sent, over an hourly limit, since ``since``."""
    query = select(func.count(Reply.id)).where(Reply.state == ReplyState.SUPPRESSED)
    if since is not None:
        query = query.where(Reply.queued_at > since)
    return session.scalar(query) or 0


def _counts(session: Session, call: Call) -> dict[str, int]:
    """How many mails of the call have each status."""
    return {
        status: count
        for status, count in session.execute(
            select(Mail.status, func.count(Mail.id))
            .where(Mail.call_id == call.id)
            .group_by(Mail.status)
            .order_by(Mail.status)
        )
    }


def _open_corrections(session: Session, submissions: Select[Submission]) -> list[dict[str, Any]]:
    """The submissions waiting for a correction, each with its latest version's error codes."""
    waiting = []
    for submission in session.scalars(
        submissions.where(Submission.status == SubmissionStatus.NEEDS_CORRECTION).order_by(
            Submission.seq
        )
    ):
        latest = session.scalars(
            select(Version)
            .where(Version.submission_id == submission.id)
            .order_by(Version.number.desc())
            .limit(1)
        ).first()
        waiting.append(
            {**_identity(submission), "codes": _codes(latest.problems if latest else [], True)}
        )
    return waiting


def _needing(call: Call, attention: Attention) -> list[dict[str, Any]]:
    """The mails that need a person, with the reasons in both languages."""
    return [
        {
            "mail_id": mail.id,
            "sender": mail.sender,
            "subject": single_line(mail.subject),
            "received": call.local_text(mail.received_at)[1],
            "codes": mail.reasons,
            "reasons_zh": "、".join(NEEDS_A_PERSON[code][0] for code in mail.reasons),
            "reasons_en": ", ".join(NEEDS_A_PERSON[code][1] for code in mail.reasons),
        }
        for mail in attention.mails
    ]


def _troubled(attention: Attention) -> list[dict[str, Any]]:
    """The replies that did not reach their applicant (failed, uncertain, bounced)."""
    return [
        {
            "reply_id": reply.id,
            "to_address": reply.to_address,
            "state": reply.state,
            "subject": reply.subject,
            "last_error": single_line(reply.last_error or ""),
        }
        for reply in attention.letters
    ]


def _identity(submission: Submission) -> dict[str, Any]:
    return {
        "reference": submission.reference,
        "institution": submission.institution,
        "pi": submission.pi,
    }


def _codes(problems: Sequence[Any], errors_only: bool) -> list[str]:
    """Problem codes from stored problems (Problem.as_json() dicts, or bare codes)."""
    codes = []
    for problem in problems:
        if isinstance(problem, dict):
            if errors_only and problem.get("severity", "error") != "error":
                continue
            codes.append(str(problem.get("code", "")))
        else:
            codes.append(str(problem))
    return list(dict.fromkeys(code for code in codes if code))


def queue_digest(
    session: Session,
    *,
    settings: ReplySettings,
    call: Call,
    renderer: Renderer,
    to: Sequence[str],
    now: datetime,
) -> list[Reply]:
    """Queue the daily digest to each secretariat address; it covers what came since the last.

    Nothing is queued when there is no address ([digest] to is empty).
    """
    if not to:
        return []
    context = digest_context(session, call, since=last_digest_at(session), now=now)
    subject, body = renderer.render(DIGEST, context)
    return [
        queue_reply(
            session,
            Outgoing(to_address=address, template=DIGEST, subject=subject, body=body),
            settings=settings,
            call=call,
            now=now,
        )
        for address in to
    ]
