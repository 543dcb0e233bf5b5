"""The daily digest to the secretariat: counts, new submissions, open corrections."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy.orm import Session

from mailbot.app import App
from mailbot.replies.outbox import queue_digest as queue_digest_replies
from mailbot.store.models import Reply


def queue_digest(app: App, session: Session, now: datetime) -> list[Reply]:
    """Queue today's digest to each address in [digest] to; nothing when there is none."""
    return queue_digest_replies(
        session,
        settings=app.settings.replies,
        call=app.call,
        renderer=app.renderer,
        to=app.settings.digest.to,
        now=now,
    )
