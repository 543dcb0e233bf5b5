"""What a batch's transaction knows of the mail already recorded: read once, kept up to date.

A batch of fetched mails is recorded in one transaction (mailbot.intake.batch).
Instead of three queries a mail to find whether it is recorded already (at its
place, as the same bytes at another place, as another delivery of the same
content), one query reads every row the batch's places and hashes can match,
and each mail recorded in the batch is added to the index, so a mail finds an
earlier one of its own batch exactly as it would find one recorded before.
The folders' cursors are read once and moved in memory, flushed with the rest.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from sqlalchemy import and_, or_, select
from sqlalchemy.orm import Session

from mailbot.sources.base import Fetched
from mailbot.store.models import FolderState, Mail


@dataclass(frozen=True)
class Wanted:
    """What one mail of a batch is looked up by."""

    item: Fetched
    message_id: str | None
    raw_sha256: str
    content_sha256: str


@dataclass
class Index:
    """The recorded mails a batch may meet again, and the folders' cursors."""

    source: str
    call_id: str
    at: dict[str, Mail] = field(default_factory=dict)  # by location
    twins: dict[tuple[str, str], Mail] = field(default_factory=dict)  # (raw hash, Message-ID)
    originals: dict[str, Mail] = field(default_factory=dict)  # content hash -> the first copy
    cursors: dict[str, FolderState] = field(default_factory=dict)

    def load(self, session: Session, wanted: Sequence[Wanted]) -> None:
        """Read, in one query, every recorded mail these mails may be; and their cursors."""
        if not wanted:
            return
        locations = sorted({w.item.location for w in wanted})
        raws = sorted({w.raw_sha256 for w in wanted if w.message_id is not None})
        contents = sorted({w.content_sha256 for w in wanted})
        here = Mail.source == self.source
        rows = session.scalars(
            select(Mail)
            .where(
                or_(
                    and_(here, Mail.location.in_(locations)),
                    and_(here, Mail.raw_sha256.in_(raws), Mail.message_id.is_not(None)),
                    and_(
                        Mail.call_id == self.call_id,
                        Mail.content_sha256.in_(contents),
                        Mail.duplicate_of_id.is_(None),
                    ),
                )
            )
            .order_by(Mail.id)
        )
        for mail in rows:
            self.add(mail)
        self._load_cursors(session, sorted({w.item.folder for w in wanted if w.item.uid}))

    def _load_cursors(self, session: Session, folders: list[str]) -> None:
        missing = [folder for folder in folders if folder not in self.cursors]
        if not missing:
            return
        for state in session.scalars(
            select(FolderState).where(
                FolderState.source == self.source, FolderState.folder.in_(missing)
            )
        ):
            self.cursors[state.folder] = state

    def add(self, mail: Mail) -> None:
        """A mail recorded (or read): later mails of the batch find it."""
        if mail.source == self.source:
            self.at.setdefault(mail.location, mail)
            if mail.message_id is not None:
                self.twins.setdefault((mail.raw_sha256, mail.message_id), mail)
        if (
            mail.call_id == self.call_id
            and mail.content_sha256 is not None
            and mail.duplicate_of_id is None
        ):
            self.originals.setdefault(mail.content_sha256, mail)

    def moved(self, mail: Mail, old_location: str) -> None:
        """A recorded mail now lives at another place."""
        if self.at.get(old_location) is mail:
            del self.at[old_location]
        self.at[mail.location] = mail

    def advance(self, session: Session, item: Fetched) -> None:
        """Move the folder's cursor past this mail, in the transaction that records it."""
        if item.uid is None:
            return
        state = self.cursors.get(item.folder)
        if state is None:
            state = FolderState(
                source=self.source, folder=item.folder, uidvalidity=None, last_uid=0
            )
            session.add(state)
            self.cursors[item.folder] = state
        if state.uidvalidity != item.uidvalidity:
            state.uidvalidity, state.last_uid = item.uidvalidity, item.uid
        else:
            state.last_uid = max(state.last_uid, item.uid)
