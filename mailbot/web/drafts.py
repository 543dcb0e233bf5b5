"""Letters being written at the desk, kept server-side per person: nothing typed is lost.

The letter page opens a draft (one per person and submission) and puts its
token in the form. A send refused, or arriving after the session expired,
keeps the text under that token; the same person finds it on the letter
page again (after signing in). The token is unguessable and bound to one
person, so neither another site nor another colleague can read or plant one.
"""

from __future__ import annotations

import secrets
from collections.abc import Mapping
from datetime import datetime, timedelta

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from mailbot.store.models import DeskDraft, Submission

KEEP_FOR = timedelta(days=30)  # a draft nobody came back to is removed after this
MAX_FIELD = 100_000


def open_draft(session: Session, user_id: int, submission: Submission, now: datetime) -> DeskDraft:
    """This person's draft for this submission, made if there is none."""
    session.execute(delete(DeskDraft).where(DeskDraft.updated_at < now - KEEP_FOR))
    draft = session.scalar(
        select(DeskDraft).where(
            DeskDraft.user_id == user_id, DeskDraft.submission_id == submission.id
        )
    )
    if draft is None:
        draft = DeskDraft(
            user_id=user_id,
            submission_id=submission.id,
            token=secrets.token_urlsafe(32),
            kept_at=None,
            updated_at=now,
        )
        session.add(draft)
        session.flush()
    return draft


def keep(
    session: Session, token: str, reference: str, form: Mapping[str, str], now: datetime
) -> DeskDraft | None:
    """Keep a letter form's text in the draft its token names; None if no such draft."""
    if not token or len(token) > 64:
        return None
    draft = session.scalar(select(DeskDraft).where(DeskDraft.token == token))
    if draft is None:
        return None
    submission = session.get(Submission, draft.submission_id)
    if submission is None or submission.reference != reference.strip().upper():
        return None
    draft.template = form.get("template", "")[:64]
    draft.subject = form.get("subject", "")[:MAX_FIELD]
    draft.body = form.get("body", "")[:MAX_FIELD]
    draft.reason = form.get("reason", "")[:MAX_FIELD]
    draft.kept_at = now
    draft.updated_at = now
    return draft


def kept(session: Session, user_id: int, submission: Submission) -> DeskDraft | None:
    """The text this person left unsent for this submission, if any."""
    return session.scalar(
        select(DeskDraft).where(
            DeskDraft.user_id == user_id,
            DeskDraft.submission_id == submission.id,
            DeskDraft.kept_at.is_not(None),
        )
    )


def discard(session: Session, user_id: int, submission: Submission) -> None:
    """The letter is sent, or the person chose to start again: forget the text."""
    session.execute(
        delete(DeskDraft).where(
            DeskDraft.user_id == user_id, DeskDraft.submission_id == submission.id
        )
    )


def keep_unsent(session: Session, reference: str, form: Mapping[str, str], now: datetime) -> bool:
    """A letter sent after its session expired: keep it for its writer; True if kept.

    The guard calls this before it sends the person to sign in, so the
    letter page shows the text again once they are back.
    """
    return keep(session, form.get("draft", ""), reference, form, now) is not None
