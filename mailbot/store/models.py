"""The database: every mail, every submission and its versions, every reply."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, ClassVar

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Text,
    UniqueConstraint,
    false,
    text,
)
from sqlalchemy.engine import Dialect
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship
from sqlalchemy.types import TypeDecorator


class UtcDateTime(TypeDecorator[datetime]):
    """Aware datetimes in, aware UTC datetimes out, on SQLite as on PostgreSQL."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime: mailbot stores aware times only")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def utcnow() -> datetime:
    return datetime.now(UTC)


NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)
    type_annotation_map: ClassVar[dict[Any, Any]] = {
        datetime: UtcDateTime,
        dict[str, Any]: JSON,
        list[Any]: JSON,
    }


class Mail(Base):
    """Every mail that reached the mailbox, ignored ones too."""

    __tablename__ = "mails"
    __table_args__ = (
        UniqueConstraint("source", "location", name="uq_mails_source_location"),
        # One original per sent mail and call; every further copy points at it. The
        # database, not a read before the insert, settles two daemons racing.
        Index(
            "uq_mails_original_content",
            "call_id",
            "content_sha256",
            unique=True,
            sqlite_where=text("duplicate_of_id IS NULL"),
            postgresql_where=text("duplicate_of_id IS NULL"),
        ),
        # A poll asks for the mail recorded but not yet filed: a handful, among
        # thousands filed. The condition reads as SQLAlchemy writes
        # ``Mail.settled.is_(False)``, or SQLite does not use the index.
        Index(
            "ix_mails_unsettled",
            "source",
            "folder",
            sqlite_where=text("settled IS 0"),
            postgresql_where=text("settled IS false"),
        ),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    call_id: Mapped[str] = mapped_column(String(64), index=True)
    source: Mapped[str] = mapped_column(String(255))
    folder: Mapped[str] = mapped_column(String(255))
    # Where the mail sat when fetched: "UIDVALIDITY:UID" for IMAP, the file key for Maildir.
    location: Mapped[str] = mapped_column(String(512))
    uidvalidity: Mapped[int | None] = mapped_column(BigInteger)
    uid: Mapped[int | None] = mapped_column(BigInteger)
    message_id: Mapped[str | None] = mapped_column(String(998), index=True)
    raw_sha256: Mapped[str] = mapped_column(String(64), index=True)
    raw_size: Mapped[int] = mapped_column(Integer)
    sender: Mapped[str | None] = mapped_column(String(320))
    sender_name: Mapped[str] = mapped_column(Text, default="")
    reply_to: Mapped[str | None] = mapped_column(String(320))
    subject: Mapped[str] = mapped_column(Text, default="")
    received_at: Mapped[datetime]
    processed_at: Mapped[datetime] = mapped_column(default=utcnow)
    status: Mapped[str] = mapped_column(String(32), index=True)
    problems: Mapped[list[Any]] = mapped_column(default=list)
    institution: Mapped[str | None] = mapped_column(Text)
    pi: Mapped[str | None] = mapped_column(Text)
    submission_id: Mapped[int | None] = mapped_column(ForeignKey("submissions.id"), index=True)
    # What the Word form says (see `mailbot check --json`'s "form"), and the PDF's page count.
    form: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    pdf_pages: Mapped[int | None] = mapped_column(Integer)
    # What the seal check saw on the PDF scan (`mailbot check --json`'s "seal"); null before 0011.
    seal: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    settled: Mapped[bool] = mapped_column(Boolean, default=False)
    settled_folder: Mapped[str | None] = mapped_column(String(255))
    # The sha256 of the mail without its trace headers (mailbot.store.content): the
    # same for every copy the mailbox got of one sent mail. Null for mail before 0004.
    content_sha256: Mapped[str | None] = mapped_column(String(64), index=True)
    # Set on a further copy of a mail already recorded: filed as ignored, never answered.
    duplicate_of_id: Mapped[int | None] = mapped_column(ForeignKey("mails.id"), index=True)
    # Set by `mailbot reprocess` when it changed this mail's verdict without a reply;
    # the next `reprocess --reply` tells the applicant and clears it.
    reply_due: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    # Set when a person at the desk dealt with a mail tied to no submission (answered
    # it, or found nothing to do): it leaves the list of open "other mail".
    handled_at: Mapped[datetime | None]
    handled_by: Mapped[str | None] = mapped_column(String(64))
    handled_reason: Mapped[str | None] = mapped_column(Text)
    # Set when a person attached this mail (tied to no submission by the daemon) to
    # submission_id: "version" or "supporting" (mailbot.intake.attaching); a reprocess keeps it.
    attached_as: Mapped[str | None] = mapped_column(String(16))

    attachments: Mapped[list[Attachment]] = relationship(
        back_populates="mail", order_by="Attachment.id", cascade="all, delete-orphan"
    )
    submission: Mapped[Submission | None] = relationship(back_populates="mails")
    replies: Mapped[list[Reply]] = relationship(back_populates="mail", order_by="Reply.id")


class Attachment(Base):
    """A file as it came with a mail; its bytes live in the blob store under sha256."""

    __tablename__ = "attachments"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    mail_id: Mapped[int] = mapped_column(ForeignKey("mails.id"), index=True)
    filename: Mapped[str] = mapped_column(Text)
    content_type: Mapped[str] = mapped_column(String(255))
    size: Mapped[int] = mapped_column(BigInteger)
    sha256: Mapped[str] = mapped_column(String(64), index=True)
    role: Mapped[str] = mapped_column(String(16))

    mail: Mapped[Mail] = relationship(back_populates="attachments")


class Submission(Base):
    """One proposal, keyed by (call, institution, PI), with a stable reference."""

    __tablename__ = "submissions"
    __table_args__ = (
        UniqueConstraint("call_id", "institution_key", "pi_key", name="uq_submissions_key"),
        UniqueConstraint("call_id", "seq", name="uq_submissions_seq"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    call_id: Mapped[str] = mapped_column(String(64))
    seq: Mapped[int] = mapped_column(Integer)
    reference: Mapped[str] = mapped_column(String(64), unique=True)
    institution: Mapped[str] = mapped_column(Text)
    pi: Mapped[str] = mapped_column(Text)
    institution_key: Mapped[str] = mapped_column(String(512))
    pi_key: Mapped[str] = mapped_column(String(255))
    status: Mapped[str] = mapped_column(String(32), index=True)
    current_version: Mapped[int] = mapped_column(Integer, default=0)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)

    versions: Mapped[list[Version]] = relationship(
        back_populates="submission", order_by="Version.number"
    )
    mails: Mapped[list[Mail]] = relationship(back_populates="submission", order_by="Mail.id")


class Version(Base):
    """What a submission was after one mail: new, a resubmission, or a completion."""

    __tablename__ = "versions"
    __table_args__ = (UniqueConstraint("submission_id", "number", name="uq_versions_number"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    submission_id: Mapped[int] = mapped_column(ForeignKey("submissions.id"), index=True)
    number: Mapped[int] = mapped_column(Integer)
    mail_id: Mapped[int] = mapped_column(ForeignKey("mails.id"))
    kind: Mapped[str] = mapped_column(String(16))  # new, resubmission, completion
    status: Mapped[str] = mapped_column(String(32))
    problems: Mapped[list[Any]] = mapped_column(default=list)
    files: Mapped[list[Any]] = mapped_column(default=list)  # [{filename, role, size, sha256}]
    received_at: Mapped[datetime]
    superseded: Mapped[bool] = mapped_column(Boolean, default=False)
    form: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    pdf_pages: Mapped[int | None] = mapped_column(Integer)
    # What the seal check saw on the PDF scan (`mailbot check --json`'s "seal"); null before 0011.
    seal: Mapped[dict[str, Any] | None] = mapped_column(JSON)

    submission: Mapped[Submission] = relationship(back_populates="versions")
    mail: Mapped[Mail] = relationship()


class Reply(Base):
    """A reply in the outbox: written with the verdict, sent by a separate job."""

    __tablename__ = "replies"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    mail_id: Mapped[int | None] = mapped_column(ForeignKey("mails.id"), index=True)
    submission_id: Mapped[int | None] = mapped_column(ForeignKey("submissions.id"), index=True)
    to_address: Mapped[str] = mapped_column(String(320), index=True)
    template: Mapped[str] = mapped_column(String(64))
    message_id: Mapped[str] = mapped_column(String(255), unique=True)
    subject: Mapped[str] = mapped_column(Text)
    raw: Mapped[bytes] = mapped_column()  # the whole reply, built once when queued
    # pending, sending, handed (committed before the final dot), sent, uncertain (killed
    # after the dot: not resent), suppressed, failed (see replies/sender.py), bounced
    # (a bounce came back for it: last_error says what the server said)
    state: Mapped[str] = mapped_column(String(16), index=True)
    # The call whose daemon sends it (null before 0004: any daemon may).
    call_id: Mapped[str | None] = mapped_column(String(64), index=True)
    queued_at: Mapped[datetime] = mapped_column(default=utcnow)
    sent_at: Mapped[datetime | None]
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime | None]
    last_error: Mapped[str | None] = mapped_column(Text)

    mail: Mapped[Mail | None] = relationship(back_populates="replies")


class FolderState(Base):
    """Per mailbox folder: the UIDVALIDITY seen and the highest UID processed."""

    __tablename__ = "folder_states"
    __table_args__ = (UniqueConstraint("source", "folder", name="uq_folder_states_folder"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    source: Mapped[str] = mapped_column(String(255))
    folder: Mapped[str] = mapped_column(String(255))
    uidvalidity: Mapped[int | None] = mapped_column(BigInteger)
    last_uid: Mapped[int] = mapped_column(BigInteger, default=0)


# --------------------------------------------------------------------------- the intake desk


class User(Base):
    """A member of the secretariat who may use the intake desk (`mailbot user add NAME`)."""

    __tablename__ = "users"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(64), unique=True)
    password_hash: Mapped[str] = mapped_column(String(255))  # Argon2id, never the password
    active: Mapped[bool] = mapped_column(Boolean, default=True)  # False: disabled, signs in no more
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    last_login_at: Mapped[datetime | None]
    # admin (also manages accounts), editor (acts on submissions), viewer (reads only).
    role: Mapped[str] = mapped_column(String(16), default="editor")


class WebSession(Base):
    """A signed-in browser; the cookie holds a token whose sha256 alone is stored here."""

    __tablename__ = "web_sessions"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    token_sha256: Mapped[str] = mapped_column(String(64), unique=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"), index=True)
    csrf_token: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    last_seen_at: Mapped[datetime] = mapped_column(default=utcnow)
    expires_at: Mapped[datetime]

    user: Mapped[User] = relationship()


class LoginAttempt(Base):
    """One try at signing in, kept so failed tries can be counted and limited."""

    __tablename__ = "login_attempts"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(64), index=True)
    remote_addr: Mapped[str] = mapped_column(String(64), index=True)
    at: Mapped[datetime] = mapped_column(default=utcnow, index=True)
    succeeded: Mapped[bool] = mapped_column(Boolean, default=False)


class LoginThrottle(Base):
    """Failed sign-ins in a row for one login name (an account or not): the delay and the lock.

    Each try is counted before its password is checked, so tries sent at once
    cannot slip past the delay; a sign-in that succeeds removes the row.
    """

    __tablename__ = "login_throttles"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(64), unique=True)
    failures: Mapped[int] = mapped_column(Integer, default=0)
    last_try_at: Mapped[datetime]
    next_try_at: Mapped[datetime]  # a try before this is refused without a look at the password
    locked_at: Mapped[datetime | None]  # set at the lock; an admin lifts it


class TrustedDevice(Base):
    """A browser an account signed in from: its cookie's sha256, so the address limit spares it."""

    __tablename__ = "trusted_devices"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    token_sha256: Mapped[str] = mapped_column(String(64), unique=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"), index=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    last_used_at: Mapped[datetime] = mapped_column(default=utcnow)


class AuditEvent(Base):
    """What a person did at the desk, when and why: a decision, a withdrawal, a note, a letter."""

    __tablename__ = "audit_events"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    at: Mapped[datetime] = mapped_column(default=utcnow)
    # The name as it was, so the trail reads the same if the account is later removed.
    actor: Mapped[str] = mapped_column(String(64))
    user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    action: Mapped[str] = mapped_column(String(32))
    submission_id: Mapped[int | None] = mapped_column(ForeignKey("submissions.id"), index=True)
    mail_id: Mapped[int | None] = mapped_column(ForeignKey("mails.id"), index=True)
    reply_id: Mapped[int | None] = mapped_column(ForeignKey("replies.id"))
    reason: Mapped[str] = mapped_column(Text, default="")
    previous_status: Mapped[str | None] = mapped_column(String(32))
    new_status: Mapped[str | None] = mapped_column(String(32))
    detail: Mapped[dict[str, Any]] = mapped_column(default=dict)


class DeskDraft(Base):
    """A letter being written at the desk, kept server-side: an expired session loses nothing.

    One per person and submission. ``token`` goes in the letter's form: a send
    that arrives after the session expired is kept under it, for the same
    person only, and ``kept_at`` says the text waits to be restored.
    """

    __tablename__ = "desk_drafts"
    __table_args__ = (UniqueConstraint("user_id", "submission_id", name="uq_desk_drafts_owner"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"), index=True)
    submission_id: Mapped[int] = mapped_column(ForeignKey("submissions.id"))
    token: Mapped[str] = mapped_column(String(64), unique=True)
    template: Mapped[str] = mapped_column(String(64), default="")
    subject: Mapped[str] = mapped_column(Text, default="")
    body: Mapped[str] = mapped_column(Text, default="")
    reason: Mapped[str] = mapped_column(Text, default="")
    kept_at: Mapped[datetime | None]
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)


class Reminder(Base):
    """A reminder before the deadline queued for a submission at one point (hours before).

    One per submission and point, by a unique key: a restart, or a second daemon,
    queues none twice. ``reply_id`` is the letter in the outbox.
    """

    __tablename__ = "reminders"
    __table_args__ = (UniqueConstraint("submission_id", "hours_before", name="uq_reminders_point"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    submission_id: Mapped[int] = mapped_column(ForeignKey("submissions.id"), index=True)
    hours_before: Mapped[int] = mapped_column(Integer)
    reply_id: Mapped[int | None] = mapped_column(ForeignKey("replies.id"))
    queued_at: Mapped[datetime] = mapped_column(default=utcnow)


# --------------------------------------------------------------------------- daemons


class Lease(Base):
    """Which daemon serves a mailbox (or sends a call's outbox) now, and until when.

    ``source`` is the mailbox's name (``imap://user@host:993``, ``maildir:/srv/mail``)
    or ``outbox:CALL``. The holder renews it while it works and deletes it on a
    clean exit; once past ``expires_at`` another daemon may take it over.
    """

    __tablename__ = "leases"

    source: Mapped[str] = mapped_column(String(255), primary_key=True)
    holder: Mapped[str] = mapped_column(String(255))
    acquired_at: Mapped[datetime]
    expires_at: Mapped[datetime]


class DaemonState(Base):
    """What the daemon serving a mailbox last did, for `mailbot status` and the desk's strip.

    One row per mailbox (``source`` as in ``mails.source``), written by the
    daemon at its start, at each poll and at each renewal of its lease.
    """

    __tablename__ = "daemon_states"

    source: Mapped[str] = mapped_column(String(255), primary_key=True)
    call_id: Mapped[str] = mapped_column(String(64), index=True)
    holder: Mapped[str] = mapped_column(String(255))
    started_at: Mapped[datetime]
    heartbeat_at: Mapped[datetime]
    polled_at: Mapped[datetime | None]  # the last poll that ended without a fault
    poll_summary: Mapped[str] = mapped_column(Text, default="")
    # Mail the last poll fetched but could not record: it waits in the mailbox.
    waiting: Mapped[int] = mapped_column(Integer, default=0)
    error: Mapped[str | None] = mapped_column(Text)
    error_at: Mapped[datetime | None]
    stopped_at: Mapped[datetime | None]  # a clean exit; None while it runs (or died)
