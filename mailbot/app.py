"""App: the one object built in main() and passed down (settings, call, database, store)."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, TypeVar

from mailbot.calls import Call, load_call
from mailbot.config import ConfigError, ImapSettings, Settings, SmtpSettings, TlsSettings, secret
from mailbot.documents.scan import SealLimits
from mailbot.judge.policy import IntakePolicy, JudgeLimits
from mailbot.sources.base import Filing, Flag, Mailbox, MoveTo

if TYPE_CHECKING:  # each loaded where it is first used: `mailbot check` needs none of them
    from mailbot.judge.processes import Judges
    from mailbot.net.oauth2 import TokenSource
    from mailbot.replies.render import Renderer
    from mailbot.replies.transports import Transport
    from mailbot.store.blobs import BlobStore
    from mailbot.store.db import Database

T = TypeVar("T", bound=TlsSettings)


def wall_clock() -> datetime:
    return datetime.now(UTC)


def intake_policy(settings: Settings) -> IntakePolicy:
    """The operator's [intake] settings as the checks read them (daemon and `check` alike)."""
    intake = settings.intake
    return IntakePolicy(
        own_addresses=frozenset([settings.replies.from_address, *intake.own_addresses]),
        own_domains=frozenset(intake.own_domains),
        deny=tuple(intake.deny),
        authserv_id=intake.authserv_id,
        max_mail_size=intake.max_mail_size,
        max_depth=intake.max_depth,
        max_parts=intake.max_parts,
        seal=SealLimits(
            check=intake.seal.check,
            dpi=intake.seal.dpi,
            max_page_pixels=intake.seal.max_page_pixels,
            max_image_pixels=intake.seal.max_image_pixels,
            timeout=intake.seal.timeout,
        ),
    )


def judge_limits(settings: Settings) -> JudgeLimits:
    """The operator's [intake] limits on judging one mail: isolation, time, memory."""
    intake = settings.intake
    return JudgeLimits(
        isolate=intake.isolate, timeout=intake.judge_timeout, memory=intake.judge_memory
    )


@dataclass
class App:
    settings: Settings
    call: Call
    db: Database
    blobs: BlobStore
    renderer: Renderer
    _judges: Judges | None = field(default=None, init=False, repr=False)
    # What OAuth2 token lifetimes are measured by (a test sets a fake one).
    token_clock: Callable[[], float] = field(default=time.monotonic, repr=False)
    # What the intake queues replies by and the outbox sends them by (the settling
    # window is measured against it; a test sets a fake one).
    clock: Callable[[], datetime] = field(default=wall_clock, repr=False)
    # Per config section: a reconnect or the next batch of replies reuses the token.
    _tokens: dict[str, TokenSource] = field(default_factory=dict, init=False, repr=False)

    @classmethod
    def build(cls, settings: Settings) -> App:
        from mailbot.replies.render import Renderer
        from mailbot.store.blobs import BlobStore
        from mailbot.store.db import Database

        return cls(
            settings=settings,
            call=load_call(settings.rules_path()),
            db=Database(settings.database()),
            blobs=BlobStore(settings.path(settings.store_dir)),
            renderer=Renderer(settings.templates_path()),
        )

    def open_mailbox(self) -> Mailbox:
        source = self.settings.source
        if source.kind == "imap":
            from mailbot.sources.imap import ImapMailbox

            imap = self.with_ca_path(source.imap)
            return ImapMailbox(imap, self.credential(imap, "source.imap"), flag=source.flag)
        from mailbot.sources.maildir import MaildirMailbox

        return MaildirMailbox(self.settings.path(source.maildir.path), flag=source.flag)

    def transport(self) -> Transport:
        from mailbot.replies.transports import OutboxDirTransport, SmtpTransport

        replies = self.settings.replies
        if replies.transport == "smtp":
            smtp = self.with_ca_path(replies.smtp)
            if smtp.auth == "password" and not smtp.username:
                return SmtpTransport(smtp, None)
            return SmtpTransport(smtp, self.credential(smtp, "replies.smtp"))
        return OutboxDirTransport(self.settings.path(replies.outbox_dir))

    def credential(self, server: ImapSettings | SmtpSettings, section: str) -> str | TokenSource:
        """How to log in to a server: its password, or its OAuth2 token source."""
        if server.auth == "password":
            return secret(server.password_env)
        if not server.username:
            raise ConfigError(
                f"{section}.username is empty: OAuth2 login ({server.auth}) names the account"
            )
        from mailbot.net.oauth2 import TokenSource

        tokens = self._tokens.get(section)
        if tokens is None or tokens.settings != server.oauth2:
            tokens = TokenSource.from_settings(
                server.oauth2, section, clock=self.token_clock, timeout=server.timeout
            )
            self._tokens[section] = tokens
        return tokens

    def with_ca_path(self, server: T) -> T:
        """The server's settings with ca_file read against the config's folder."""
        if not server.ca_file:
            return server
        return server.model_copy(update={"ca_file": str(self.settings.path(server.ca_file))})

    def filing(self, status: str) -> Filing:
        """How a mail of this status is filed: moved to its status's folder, or flagged."""
        source = self.settings.source
        folder = source.folders.folder(status) if source.after == "move" else ""
        return MoveTo(folder) if folder else Flag()

    @property
    def policy(self) -> IntakePolicy:
        """The operator's [intake] settings as the checks read them."""
        return intake_policy(self.settings)

    @property
    def judges(self) -> Judges:
        """The judging processes, started at the first mail to judge."""
        if self._judges is None:
            from mailbot.judge.processes import Judges

            self._judges = Judges(
                self.call,
                self.policy,
                self.settings.intake.judge_processes,
                self.blobs,
                limits=judge_limits(self.settings),
            )
        return self._judges

    def close_judges(self) -> None:
        if self._judges is not None:
            self._judges.close()

    def close(self) -> None:
        """Stop the judging processes and close the database's connections."""
        self.close_judges()
        self.db.dispose()

    @property
    def outbox_dir(self) -> Path:
        return self.settings.path(self.settings.replies.outbox_dir)
