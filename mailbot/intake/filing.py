"""Filing mail in the mailbox once it is recorded: the folder's cursor and the settled marks.

A mail is moved or flagged (mailbot.sources.base.Filing) only after its
transaction committed, and marked settled after that, so a stop in between
leaves it recorded and unsettled: the next poll files it (settle_pending).
A stamped PDF that completes a submission is filed under the status it gave
the submission, not under its own mail's.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

from sqlalchemy import Select, select, update
from sqlalchemy.orm import Session

from mailbot.app import App
from mailbot.sources.base import Cursor, Filing, Mailbox, MoveTo
from mailbot.store.models import FolderState, Mail, Version

log = logging.getLogger(__name__)


def load_cursor(app: App, source: str, folder: str) -> Cursor:
    """How far the folder has been recorded (an empty cursor for a folder never seen)."""
    with app.db.transaction() as session:
        state = session.scalar(
            select(FolderState).where(FolderState.source == source, FolderState.folder == folder)
        )
        return Cursor(state.uidvalidity, state.last_uid) if state else Cursor()


def mark_settled(app: App, source: str, done: Sequence[tuple[str, Filing]]) -> None:
    """Record that these mails were filed: one UPDATE per filing, in one transaction."""
    by_filing: dict[Filing, list[str]] = {}
    for location, filing in done:
        by_filing.setdefault(filing, []).append(location)
    with app.db.transaction() as session:
        for filing, locations in by_filing.items():
            session.execute(
                update(Mail)
                .where(Mail.source == source, Mail.location.in_(locations))
                .values(settled=True, settled_folder=_folder(filing))
                .execution_options(synchronize_session=False)
            )


def _folder(filing: Filing) -> str | None:
    """The folder a mail was moved to (Mail.settled_folder); None when it was flagged."""
    return filing.folder if isinstance(filing, MoveTo) else None


def filed_status(session: Session, mail: Mail) -> str:
    """The status a mail is filed under: for a completion, the submission's resulting one.

    A stamped PDF sent on its own is, by itself, a mail missing its Word file; taken
    with the version it completes it may make the submission accepted, and is filed so.
    """
    completed = session.scalar(
        select(Version.status).where(Version.mail_id == mail.id, Version.kind == "completion")
    )
    return completed or mail.status


def filed_statuses(
    session: Session, source: str, rows: Sequence[tuple[str, str]]
) -> list[tuple[str, str]]:
    """(location, status) rows with each completion's status put in place of its mail's."""
    locations = [location for location, _status in rows]
    completed = {
        location: status
        for location, status in session.execute(
            select(Mail.location, Version.status)
            .join(Version, Version.mail_id == Mail.id)
            .where(
                Mail.source == source,
                Mail.location.in_(locations),
                Version.kind == "completion",
            )
        )
    }
    return [(location, completed.get(location, status)) for location, status in rows]


def unsettled(source: str, folder: str) -> Select[str, str]:
    """The mail of a folder recorded but not filed; every poll asks (index ix_mails_unsettled)."""
    return select(Mail.location, Mail.status).where(
        Mail.source == source, Mail.folder == folder, Mail.settled.is_(False)
    )


def settle_pending(app: App, mailbox: Mailbox, folder: str) -> None:
    """File mail that was recorded but not yet moved (the process stopped in between)."""
    with app.db.transaction() as session:
        rows = [
            (location, status)
            for location, status in session.execute(unsettled(mailbox.name, folder))
        ]
        if rows:
            rows = filed_statuses(session, mailbox.name, rows)
    if not rows:
        return
    done = [(location, app.filing(status)) for location, status in rows]
    log.info("%s %s: filing %d mails recorded before a stop", mailbox.name, folder, len(done))
    mailbox.settle(folder, done)
    mark_settled(app, mailbox.name, done)
