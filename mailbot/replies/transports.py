"""Where replies go: an SMTP server, or a folder of .eml files.

A transport hands one reply over and says how it went::

    TransportError                 this reply was not taken; a later attempt may succeed
    ├── TransportUnavailable       no reply can be handed over now (unreachable, login refused)
    └── DeliveryUncertain          the whole reply left and the answer never came

Every transport calls the ``handover`` it is given at the last moment a
failure still delivers nothing: before the final dot of SMTP's DATA, before
the rename that shows the .eml file. If ``handover`` raises, the reply is
dropped and the exception goes to the caller unchanged.
"""

from __future__ import annotations

import logging
import os
import re
import smtplib
import socket
import tempfile
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Protocol

from mailbot.config import ConfigError, SmtpSettings
from mailbot.errors import MailbotError
from mailbot.net.oauth2 import OAuth2Error, SaslAnswer, TokenSource
from mailbot.net.tls import certificate_hint, client_context

log = logging.getLogger(__name__)

_LINE_END = re.compile(rb"\r\n|\r|\n")
_LEADING_DOT = re.compile(rb"^\.", re.MULTILINE)


class TransportError(MailbotError):
    """One reply could not be handed over; a later attempt may succeed."""


class TransportUnavailable(TransportError):
    """No reply can be handed over now: the server is unreachable or refuses us."""


class DeliveryUncertain(TransportError):
    """The server got the whole reply but its answer never came: it may have been delivered."""


class Transport(Protocol):
    """Where replies go. ``send`` returns once the reply is handed over, or raises.

    ``handover``, when given, is called once per send, at the point of no
    return: up to it a failure delivers nothing, after it the reply counts as
    gone unless the receiving end refuses it in so many words. An exception
    from ``handover`` drops the reply undelivered and reaches the caller
    unchanged. ``reply_id`` only names things (the outbox folder's file
    names); an SMTP server never sees it. ``close`` ends a batch: a transport
    may keep one connection open between sends until then.
    """

    def send(
        self,
        raw: bytes,
        sender: str,
        recipients: list[str],
        *,
        reply_id: int | None = None,
        handover: Callable[[], None] | None = None,
    ) -> None: ...

    def close(self) -> None: ...


def smtp_data(raw: bytes) -> bytes:
    """The message as DATA carries it, without the final dot (RFC 5321, 4.5.2).

    Every line ends in CRLF, the last one too, and a line that starts with a
    dot gets a second one, which the server takes off again.
    """
    data = _LINE_END.sub(b"\r\n", raw)
    if not data.endswith(b"\r\n"):
        data += b"\r\n"
    return _LEADING_DOT.sub(b"..", data)


class SmtpTransport:
    """An SMTP submission server; one connection serves a batch, ``close`` ends it.

    The transaction is spelled out instead of ``sendmail`` so that
    ``handover`` runs between the message and the dot that ends it: a server
    delivers nothing whose dot it never received.
    """

    def __init__(
        self,
        settings: SmtpSettings,
        credential: str | TokenSource | None,
        *,
        local_hostname: str | None = None,
    ) -> None:
        """``credential`` is the password, where OAuth2 access tokens come from, or None
        for a server that takes replies without a login."""
        if settings.username and not credential:
            raise ConfigError(
                f"replies.smtp.username is {settings.username!r} but no password was given: "
                f"set the environment variable {settings.password_env}"
            )
        self.settings = settings
        self._credential = credential
        # None lets smtplib say socket.getfqdn() in EHLO, which may ask DNS.
        self._local_hostname = local_hostname
        self._smtp: smtplib.SMTP | None = None

    @property
    def server(self) -> str:
        return f"SMTP server {self.settings.host}:{self.settings.port}"

    def send(
        self,
        raw: bytes,
        sender: str,
        recipients: list[str],
        *,
        reply_id: int | None = None,
        handover: Callable[[], None] | None = None,
    ) -> None:
        smtp, refused = self._begin(smtp_data(raw), sender, recipients)
        if handover is not None:
            try:
                handover()
            except BaseException:
                # Without the final dot the server throws away what it got.
                self._drop()
                raise
        try:
            smtp.send(b".\r\n")
            code, message = smtp.getreply()
        except (smtplib.SMTPException, OSError) as exc:
            self._drop()
            raise DeliveryUncertain(
                f"the {self.server} broke off after the whole reply was sent and before it "
                f"answered, so it may have been delivered: {self._describe(exc)}"
            ) from None
        if code != 250:
            with self._errors(sender):
                self._abandon(smtp, code)
                raise smtplib.SMTPDataError(code, message)
        if refused:
            log.warning("the %s refused some recipients: %s", self.server, refused)

    def _begin(
        self, data: bytes, sender: str, recipients: list[str]
    ) -> tuple[smtplib.SMTP, dict[str, tuple[int, bytes]]]:
        """The transaction up to its final dot, on the batch's connection or a new one.

        A server may close a connection that carried earlier replies (an idle
        timeout, a limit of messages per connection), which shows only when the
        next reply is begun. Up to the final dot it has delivered nothing, so
        the reply is begun once more on a new connection; a second failure,
        or one on a new connection, is the reply's.
        """
        reused = self._smtp is not None
        smtp = self._smtp or self._open()
        try:
            with self._errors(sender):
                return smtp, self._transfer(smtp, data, sender, recipients)
        except TransportError as exc:
            if not reused or self._smtp is not None:
                raise  # a refusal on a live connection, or a new one failing
            log.info("%s; opening a new connection", exc)
        smtp = self._open()
        with self._errors(sender):
            return smtp, self._transfer(smtp, data, sender, recipients)

    def _transfer(
        self, smtp: smtplib.SMTP, data: bytes, sender: str, recipients: list[str]
    ) -> dict[str, tuple[int, bytes]]:
        """MAIL, RCPT, DATA and the message: all of a transaction but its final dot."""
        smtp.ehlo_or_helo_if_needed()
        # 张三@example.cn cannot be said in plain SMTP; the server must offer SMTPUTF8.
        options = [] if all(a.isascii() for a in (sender, *recipients)) else ["SMTPUTF8"]
        if smtp.does_esmtp and smtp.has_extn("size"):
            options.append(f"SIZE={len(data)}")
        self._mail_from(smtp, sender, options)
        refused: dict[str, tuple[int, bytes]] = {}
        for address in recipients:
            code, message = smtp.rcpt(address)
            if code not in (250, 251):
                refused[address] = (code, message)
            if code == 421:
                self._drop()
                raise smtplib.SMTPRecipientsRefused(refused)
        if len(refused) == len(recipients):
            self._abandon(smtp, code)
            raise smtplib.SMTPRecipientsRefused(refused)
        code, message = smtp.docmd("DATA")
        if code != 354:
            self._abandon(smtp, code)
            raise smtplib.SMTPDataError(code, message)
        smtp.send(data)
        return refused

    def _mail_from(self, smtp: smtplib.SMTP, sender: str, options: list[str]) -> None:
        code, message = smtp.mail(sender, options)
        if code == 250:
            return
        self._abandon(smtp, code)
        if code == 552:
            # RFC 1870: this reply is over the server's size limit; a smaller one is not.
            raise smtplib.SMTPResponseException(code, message)
        raise smtplib.SMTPSenderRefused(code, message, sender)

    @contextmanager
    def _errors(self, sender: str) -> Iterator[None]:
        """smtplib's errors as ours; smtplib's are OSErrors too, so the socket's come last."""
        try:
            yield
        except smtplib.SMTPServerDisconnected as exc:
            self._drop()
            raise TransportUnavailable(
                f"the {self.server} broke off: {self._describe(exc)}"
            ) from None
        except smtplib.SMTPResponseException as exc:
            if exc.smtp_code == 421:  # the server is closing the connection
                self._drop()
                raise TransportUnavailable(f"the {self.server}: {self._describe(exc)}") from None
            if isinstance(exc, smtplib.SMTPSenderRefused):
                # Refusing our own From refuses every reply: settings, not this reply.
                raise TransportUnavailable(
                    f"the {self.server} refused the sender {sender}: {self._describe(exc)}"
                ) from None
            raise TransportError(self._describe(exc)) from None
        except smtplib.SMTPException as exc:
            raise TransportError(self._describe(exc)) from None
        except OSError as exc:
            self._drop()
            raise TransportUnavailable(
                f"the {self.server} broke off: {self._describe(exc)}"
            ) from None

    def _abandon(self, smtp: smtplib.SMTP, code: int) -> None:
        """End a refused transaction so that the connection can carry the next reply."""
        if code == 421:
            self._drop()
            return
        try:
            smtp.rset()
        except (smtplib.SMTPException, OSError):
            self._drop()

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
        context = client_context(settings, self.server)
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
            hint = certificate_hint(exc, "replies.smtp")
            raise TransportUnavailable(
                f"cannot reach the {self.server}: {self._describe(exc)}{hint}"
            ) from None
        try:
            # The final dot goes out on its own after the message, and the server
            # answers nothing before it: with Nagle's algorithm it waited for the
            # server's delayed ACK, 40 ms a reply (bench/, issue 7).
            if smtp.sock is not None:
                smtp.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            smtp.ehlo()
            if settings.security == "starttls":
                if not smtp.has_extn("starttls"):
                    raise TransportUnavailable(
                        f"the {self.server} does not offer STARTTLS (replies.smtp.security)"
                    )
                smtp.starttls(context=context)
                smtp.ehlo()
            self._login(smtp)
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
            hint = certificate_hint(exc, "replies.smtp")
            raise TransportUnavailable(f"the {self.server}: {self._describe(exc)}{hint}") from None
        self._smtp = smtp
        return smtp

    def _login(self, smtp: smtplib.SMTP) -> None:
        credential = self._credential
        if isinstance(credential, str):
            smtp.login(self.settings.username, credential)
        elif credential is not None:
            self._oauth2_login(smtp, credential)

    def _oauth2_login(self, smtp: smtplib.SMTP, tokens: TokenSource) -> None:
        mechanism = self.settings.auth.upper()
        offered = (smtp.esmtp_features.get("auth") or "").upper().split()
        if mechanism not in offered:
            raise TransportUnavailable(
                f"the {self.server} does not offer {mechanism} login (replies.smtp.auth); "
                f"it offers {' '.join(offered) or 'no login'}"
            )
        user = self.settings.username
        try:
            token = tokens.token()
            try:
                smtp.auth(mechanism, SaslAnswer(mechanism, user, token))
            except smtplib.SMTPAuthenticationError:
                # Expired or revoked early: one new token, then the refusal stands.
                log.info("the %s refused the access token; getting a new one", self.server)
                smtp.auth(mechanism, SaslAnswer(mechanism, user, tokens.renew(token)))
        except OAuth2Error as exc:
            raise TransportUnavailable(f"the {self.server}: {exc}") from None

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
        # A server that echoes what it was sent must not put the password in the log.
        if isinstance(self._credential, str):
            text = text.replace(self._credential, "***")
        elif self._credential is not None:
            text = self._credential.mask(text)
        return text

    # -- looking without sending (mailbot doctor) -----------------------------

    def probe(self) -> list[str]:
        """Open a session as for a reply (connect, TLS, login) and close it.

        Returns the extensions the server offers after login; raises
        TransportUnavailable as a send would.
        """
        smtp = self._smtp or self._open()
        try:
            return sorted(smtp.esmtp_features)
        finally:
            self.close()


def _text(value: bytes | str) -> str:
    return value.decode("utf-8", "replace") if isinstance(value, bytes) else value


class OutboxDirTransport:
    """Replies written as .eml files into a folder: the default when there is no server.

    A reply's file is named after its id, so sending it again replaces the
    file instead of adding a second one.
    """

    def __init__(self, path: Path) -> None:
        self.path = path

    def file_name(self, recipients: list[str], reply_id: int | None) -> str:
        to = re.sub(r"[^A-Za-z0-9._@+-]", "_", ",".join(recipients))[:100]
        prefix = f"{reply_id:06d}" if reply_id is not None else f"x{uuid.uuid4().hex[:12]}"
        return f"{prefix}-{to}.eml"

    def send(
        self,
        raw: bytes,
        sender: str,
        recipients: list[str],
        *,
        reply_id: int | None = None,
        handover: Callable[[], None] | None = None,
    ) -> None:
        target = self.path / self.file_name(recipients, reply_id)
        temporary: str | None = None
        try:
            try:
                if not self.path.is_dir():
                    # Replies name applicants and their proposals: for mailbot's user alone.
                    self.path.mkdir(mode=0o700, parents=True, exist_ok=True)
                    os.chmod(self.path, 0o700)
                # A reader of the folder sees a whole .eml file or none, never half of one;
                # mkstemp makes it 0600, which the rename keeps.
                handle, temporary = tempfile.mkstemp(dir=self.path, prefix=".writing-")
                with os.fdopen(handle, "wb") as out:
                    out.write(raw)
                    out.flush()
                    os.fsync(out.fileno())
            except OSError as exc:
                raise TransportUnavailable(
                    f"cannot write to the outbox folder {self.path}: {exc}"
                ) from None
            if handover is not None:
                handover()
            try:
                os.replace(temporary, target)
            except OSError as exc:
                raise TransportUnavailable(
                    f"cannot write to the outbox folder {self.path}: {exc}"
                ) from None
            temporary = None
        finally:
            if temporary is not None:
                Path(temporary).unlink(missing_ok=True)

    def close(self) -> None:
        pass
