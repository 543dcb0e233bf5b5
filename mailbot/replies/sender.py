"""Sending the outbox over SMTP or into a folder, each reply at most once."""

from __future__ import annotations

import email.parser
import email.policy
import logging
import os
import re
import smtplib
import ssl
import tempfile
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, Protocol, cast

from sqlalchemy import CursorResult, func, select, update

from mailbot.config import ConfigError, ReplySettings, SmtpSettings
from mailbot.errors import MailbotError
from mailbot.replies.outbox import FAILED, PENDING, SENDING, SENT, UNCERTAIN
from mailbot.replies.render import one_line
from mailbot.store.db import Database
from mailbot.store.models import Reply

log = logging.getLogger(__name__)

MAX_ERROR = 500  # characters of last_error: one readable line, not a transcript


class TransportError(MailbotError):
    """One reply could not be handed over; a later attempt may succeed."""


class TransportUnavailable(TransportError):
    """No reply can be handed over now: the server is unreachable or refuses us."""


class Transport(Protocol):
    """Where replies go. ``send`` returns once the reply is handed over, or raises.

    ``reply_id`` only names things (the outbox folder's file names); an SMTP
    server never sees it. ``close`` ends a batch: a transport may keep one
    connection open between sends until then.
    """

    def send(
        self, raw: bytes, sender: str, recipients: list[str], *, reply_id: int | None = None
    ) -> None: ...

    def close(self) -> None: ...


@dataclass(frozen=True)
class SendReport:
    """What one run over the outbox did.

    ``deferred`` counts replies that were due and are still pending
    afterwards, with a retry scheduled.
    """

    sent: int = 0
    failed: int = 0
    deferred: int = 0

    def __str__(self) -> str:
        return f"{self.sent} sent, {self.deferred} waiting for a retry, {self.failed} failed"


# --------------------------------------------------------------------------- transports


class SmtpTransport:
    """An SMTP submission server; one connection serves a batch, ``close`` ends it."""

    def __init__(
        self,
        settings: SmtpSettings,
        password: str | None,
        *,
        local_hostname: str | None = None,
    ) -> None:
        if settings.username and not password:
            raise ConfigError(
                f"replies.smtp.username is {settings.username!r} but no password was given: "
                f"set the environment variable {settings.password_env}"
            )
        self.settings = settings
        self._password = password
        # None lets smtplib say socket.getfqdn() in EHLO, which may ask DNS.
        self._local_hostname = local_hostname
        self._smtp: smtplib.SMTP | None = None

    @property
    def server(self) -> str:
        return f"SMTP server {self.settings.host}:{self.settings.port}"

    def send(
        self, raw: bytes, sender: str, recipients: list[str], *, reply_id: int | None = None
    ) -> None:
        smtp = self._smtp or self._open()
        # 张三@example.cn cannot be said in plain SMTP; the server must offer SMTPUTF8.
        options = [] if all(a.isascii() for a in (sender, *recipients)) else ["SMTPUTF8"]
        # smtplib's errors are OSErrors too, so the socket's own come last.
        try:
            refused = smtp.sendmail(sender, recipients, raw, mail_options=options)
        except smtplib.SMTPServerDisconnected as exc:
            self._drop()
            raise TransportUnavailable(
                f"the {self.server} broke off: {self._describe(exc)}"
            ) from None
        except smtplib.SMTPSenderRefused as exc:
            # Refusing our own From refuses every reply: settings, not this reply.
            raise TransportUnavailable(
                f"the {self.server} refused the sender {sender}: {self._describe(exc)}"
            ) from None
        except smtplib.SMTPResponseException as exc:
            if exc.smtp_code == 421:  # the server is shutting down or overloaded
                self._drop()
                raise TransportUnavailable(f"the {self.server}: {self._describe(exc)}") from None
            raise TransportError(self._describe(exc)) from None
        except smtplib.SMTPException as exc:
            raise TransportError(self._describe(exc)) from None
        except OSError as exc:
            self._drop()
            raise TransportUnavailable(
                f"the {self.server} broke off: {self._describe(exc)}"
            ) from None
        if refused:
            log.warning("the %s refused some recipients: %s", self.server, refused)

    def close(self) -> None:
        smtp, self._smtp = self._smtp, None
        if smtp is None:
            return
        try:
            smtp.quit()
        except (smtplib.SMTPException, OSError):
            smtp.close()

    def _drop(self) -> None:
        smtp, self._smtp = self._smtp, None
        if smtp is not None:
            smtp.close()

    def _open(self) -> smtplib.SMTP:
        settings = self.settings
        context = ssl.create_default_context()
        smtp: smtplib.SMTP
        try:
            if settings.security == "ssl":
                smtp = smtplib.SMTP_SSL(
                    settings.host,
                    settings.port,
                    local_hostname=self._local_hostname,
                    timeout=settings.timeout,
                    context=context,
                )
            else:
                smtp = smtplib.SMTP(
                    settings.host,
                    settings.port,
                    local_hostname=self._local_hostname,
                    timeout=settings.timeout,
                )
        except (smtplib.SMTPException, OSError) as exc:
            raise TransportUnavailable(
                f"cannot reach the {self.server}: {self._describe(exc)}"
            ) from None
        try:
            smtp.ehlo()
            if settings.security == "starttls":
                if not smtp.has_extn("starttls"):
                    raise TransportUnavailable(
                        f"the {self.server} does not offer STARTTLS (replies.smtp.security)"
                    )
                smtp.starttls(context=context)
                smtp.ehlo()
            if settings.username and self._password:
                smtp.login(settings.username, self._password)
        except TransportUnavailable:
            smtp.close()
            raise
        except smtplib.SMTPAuthenticationError as exc:
            smtp.close()
            raise TransportUnavailable(
                f"the {self.server} refused the login of {settings.username!r}: "
                f"{self._describe(exc)}"
            ) from None
        except (smtplib.SMTPException, OSError) as exc:
            smtp.close()
            raise TransportUnavailable(f"the {self.server}: {self._describe(exc)}") from None
        self._smtp = smtp
        return smtp

    def _describe(self, exc: BaseException) -> str:
        if isinstance(exc, smtplib.SMTPRecipientsRefused):
            text = "recipient refused: " + "; ".join(
                f"{address}: {code} {_text(message)}"
                for address, (code, message) in exc.recipients.items()
            )
        elif isinstance(exc, smtplib.SMTPResponseException):
            text = f"{exc.smtp_code} {_text(exc.smtp_error)}"
        else:
            text = f"{type(exc).__name__}: {exc}"
        if self._password:
            # A server that echoes what it was sent must not put the password in the log.
            text = text.replace(self._password, "***")
        return text


def _text(value: bytes | str) -> str:
    return value.decode("utf-8", "replace") if isinstance(value, bytes) else value


class OutboxDirTransport:
    """Replies written as .eml files into a folder: the default when there is no server."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def file_name(self, recipients: list[str], reply_id: int | None) -> str:
        to = re.sub(r"[^A-Za-z0-9._@+-]", "_", ",".join(recipients))[:100]
        prefix = f"{reply_id:06d}" if reply_id is not None else f"x{uuid.uuid4().hex[:12]}"
        return f"{prefix}-{to}.eml"

    def send(
        self, raw: bytes, sender: str, recipients: list[str], *, reply_id: int | None = None
    ) -> None:
        target = self.path / self.file_name(recipients, reply_id)
        temporary: str | None = None
        try:
            self.path.mkdir(parents=True, exist_ok=True)
            # A reader of the folder sees a whole .eml file or none, never half of one.
            handle, temporary = tempfile.mkstemp(dir=self.path, prefix=".writing-")
            with os.fdopen(handle, "wb") as out:
                out.write(raw)
                out.flush()
                os.fsync(out.fileno())
            os.replace(temporary, target)
        except OSError as exc:
            if temporary is not None:
                Path(temporary).unlink(missing_ok=True)
            raise TransportUnavailable(
                f"cannot write to the outbox folder {self.path}: {exc}"
            ) from None

    def close(self) -> None:
        pass


# --------------------------------------------------------------------------- sending


def backoff(settings: ReplySettings, attempts: int) -> float:
    """Seconds to wait after the given number of failed attempts."""
    exponent = min(max(attempts - 1, 0), 32)  # 2**32 * 30 s is past any backoff_max
    return float(min(settings.backoff_initial * 2**exponent, settings.backoff_max))


def send_pending(
    db: Database,
    transport: Transport,
    settings: ReplySettings,
    now: Callable[[], datetime],
    *,
    limit: int | None = None,
) -> SendReport:
    """Send the replies that are due, oldest first, each at most once.

    Each reply is marked "sending" and committed before the transport sees
    it, so a process killed mid-send leaves it "sending" for
    :func:`recover_interrupted`, never sends it twice. An unreachable server
    ends the batch at once: the replies still due count one failed attempt
    each and back off, and one line in the log says why.
    """
    with db.transaction() as session:
        due = list(
            session.scalars(
                select(Reply.id)
                .where(Reply.state == PENDING, Reply.next_attempt_at <= now())
                .order_by(Reply.queued_at, Reply.id)
                .limit(limit)
            )
        )
    sent = failed = deferred = 0
    try:
        for index, reply_id in enumerate(due):
            claimed = _claim(db, reply_id, now())
            if claimed is None:  # another sender took it meanwhile
                continue
            raw, to_address = claimed
            try:
                transport.send(raw, envelope_sender(raw), [to_address], reply_id=reply_id)
            except TransportUnavailable as exc:
                # The server is not asked again for each remaining reply: every
                # reply due in this run shares the failed attempt and its backoff.
                states = [_record_failure(db, reply_id, str(exc), settings, now(), SENDING)[0]]
                states += [
                    _record_failure(db, later, str(exc), settings, now(), PENDING)[0]
                    for later in due[index + 1 :]
                ]
                failed += states.count(FAILED)
                deferred += states.count(PENDING)
                log.warning(
                    "replies: %s; %d replies wait in the outbox and will be retried",
                    one_line(str(exc)),
                    _count_pending(db),
                )
                break
            except TransportError as exc:
                state, attempts = _record_failure(db, reply_id, str(exc), settings, now(), SENDING)
                failed += state == FAILED
                deferred += state == PENDING
                log.warning(
                    "reply %d to %s not sent (attempt %d, now %s): %s",
                    reply_id,
                    to_address,
                    attempts,
                    state,
                    one_line(str(exc)),
                )
            except Exception as exc:
                # A fault of ours, not the server's: retrying repeats it, and the
                # reply may or may not have left, so a person looks at it.
                log.exception(
                    "reply %d to %s: unexpected error while sending", reply_id, to_address
                )
                _finish(db, reply_id, FAILED, f"unexpected error: {type(exc).__name__}: {exc}")
                failed += 1
            else:
                _finish(db, reply_id, SENT, None, sent_at=now())
                sent += 1
                log.info("reply %d sent to %s", reply_id, to_address)
    finally:
        transport.close()
    return SendReport(sent=sent, failed=failed, deferred=deferred)


def recover_interrupted(db: Database) -> int:
    """At start: replies left "sending" by a killed process become "uncertain"; return how many.

    They may or may not have reached the server, and a reply goes out at
    most once, so they are not resent; the digest shows them to the secretariat.
    The caller logs the count.
    """
    with db.transaction() as session:
        result = cast(
            CursorResult[Any],
            session.execute(
                update(Reply)
                .where(Reply.state == SENDING)
                .values(
                    state=UNCERTAIN,
                    next_attempt_at=None,
                    last_error="mailbot stopped while sending this reply: it may not have arrived",
                )
            ),
        )
        count = result.rowcount
    return count


def envelope_sender(raw: bytes) -> str:
    """The address in the reply's From header, which is also its envelope sender."""
    head = raw.split(b"\r\n\r\n", 1)[0].split(b"\n\n", 1)[0]
    headers = email.parser.HeaderParser(policy=email.policy.default).parsestr(
        head.decode("utf-8", "replace"), headersonly=True
    )
    addresses = getattr(headers["From"], "addresses", ())
    if not addresses:
        raise TransportError("the stored reply has no From address")
    return str(addresses[0].addr_spec)


def _claim(db: Database, reply_id: int, moment: datetime) -> tuple[bytes, str] | None:
    with db.transaction() as session:
        # One UPDATE, so two senders cannot both take the same reply.
        result = cast(
            CursorResult[Any],
            session.execute(
                update(Reply)
                .where(
                    Reply.id == reply_id,
                    Reply.state == PENDING,
                    Reply.next_attempt_at <= moment,
                )
                .values(state=SENDING)
            ),
        )
        if result.rowcount != 1:
            return None
        row = session.execute(select(Reply.raw, Reply.to_address).where(Reply.id == reply_id)).one()
        return row.raw, row.to_address


def _record_failure(
    db: Database,
    reply_id: int,
    error: str,
    settings: ReplySettings,
    moment: datetime,
    expected: str,
) -> tuple[str, int]:
    """Count a failed attempt; return the reply's new state and attempts.

    ``expected`` is the state the reply must still be in: a reply another
    sender has meanwhile taken or rescheduled is left alone.
    """
    with db.transaction() as session:
        reply = session.get_one(Reply, reply_id)
        not_due = reply.next_attempt_at is None or reply.next_attempt_at > moment
        if reply.state != expected or (expected == PENDING and not_due):
            return reply.state, reply.attempts
        reply.attempts += 1
        reply.last_error = one_line(error)[:MAX_ERROR]
        if reply.attempts >= settings.max_attempts:
            reply.state = FAILED
            reply.next_attempt_at = None
        else:
            reply.state = PENDING
            reply.next_attempt_at = moment + timedelta(seconds=backoff(settings, reply.attempts))
        return reply.state, reply.attempts


def _finish(
    db: Database, reply_id: int, state: str, error: str | None, *, sent_at: datetime | None = None
) -> None:
    with db.transaction() as session:
        reply = session.get_one(Reply, reply_id)
        reply.state = state
        reply.attempts += 1
        reply.next_attempt_at = None
        reply.sent_at = sent_at
        if error is not None:
            reply.last_error = one_line(error)[:MAX_ERROR]


def _count_pending(db: Database) -> int:
    with db.transaction() as session:
        return session.scalar(select(func.count(Reply.id)).where(Reply.state == PENDING)) or 0
