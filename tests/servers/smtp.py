"""An aiosmtpd SMTP sink on 127.0.0.1 that records every message it is handed."""

from __future__ import annotations

import asyncio
import email
import email.message
import email.policy
import hmac
import secrets
import ssl
import threading
from dataclasses import dataclass
from typing import Any, Self

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, AuthResult, Envelope, LoginPassword, Session

from tests.servers.common import LOCALHOST, ManagedServer, free_port

__all__ = ["ReceivedMessage", "SinkHandler", "SmtpSink"]


@dataclass(frozen=True)
class ReceivedMessage:
    """One message as the sink saw it on the wire."""

    mail_from: str
    rcpt_tos: tuple[str, ...]
    data: bytes
    auth_user: str | None

    @property
    def message(self) -> email.message.EmailMessage:
        parsed = email.message_from_bytes(self.data, policy=email.policy.default)
        assert isinstance(parsed, email.message.EmailMessage)
        return parsed


class SinkHandler:
    def __init__(self, sink: SmtpSink) -> None:
        self._sink = sink

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        auth = session.auth_data
        raw = envelope.original_content
        self._sink._record(
            ReceivedMessage(
                mail_from=envelope.mail_from or "",
                rcpt_tos=tuple(envelope.rcpt_tos),
                data=raw if isinstance(raw, bytes) else b"",
                auth_user=auth.login.decode() if isinstance(auth, LoginPassword) else None,
            )
        )
        return "250 2.0.0 Message accepted"


class SmtpSink(ManagedServer):
    """An aiosmtpd server that records every message; AUTH is offered but optional.

    Given ``tls_context`` (a server context with its certificate) it offers
    STARTTLS; ``ident`` replaces the software name in its 220 greeting.
    """

    host: str
    port: int
    user: str
    password: str

    def __init__(
        self,
        *,
        port: int | None = None,
        ready_timeout: float = 5.0,
        tls_context: ssl.SSLContext | None = None,
        ident: str | None = None,
    ) -> None:
        self.host = LOCALHOST
        self.port = port or free_port()
        self._tls_context = tls_context
        self._ident = ident
        self.user = f"mailbot-{secrets.token_hex(4)}"
        self.password = secrets.token_urlsafe(18)
        self._ready_timeout = ready_timeout
        self._controller: Controller | None = None
        self._messages: list[ReceivedMessage] = []
        self._arrived = threading.Condition()

    @property
    def running(self) -> bool:
        return self._controller is not None

    @property
    def messages(self) -> list[ReceivedMessage]:
        """A snapshot; later arrivals do not change the returned list."""
        with self._arrived:
            return list(self._messages)

    def _record(self, message: ReceivedMessage) -> None:
        with self._arrived:
            self._messages.append(message)
            self._arrived.notify_all()

    def clear(self) -> None:
        with self._arrived:
            self._messages.clear()

    def wait_for(self, n: int, timeout: float = 5.0) -> list[ReceivedMessage]:
        """Block until at least *n* messages arrived; returns all of them."""
        with self._arrived:
            if not self._arrived.wait_for(lambda: len(self._messages) >= n, timeout):
                raise TimeoutError(
                    f"SMTP sink got {len(self._messages)} message(s) within {timeout} s, "
                    f"expected {n}"
                )
            return list(self._messages)

    def _authenticate(
        self,
        server: SMTP,
        session: Session,
        envelope: Envelope,
        mechanism: str,
        auth_data: Any,
    ) -> AuthResult:
        ok = (
            isinstance(auth_data, LoginPassword)
            and hmac.compare_digest(auth_data.login, self.user.encode())
            and hmac.compare_digest(auth_data.password, self.password.encode())
        )
        if not ok:
            # handled=False makes aiosmtpd send the 535 reply; True would leave the
            # client waiting for an answer until its timeout.
            return AuthResult(success=False, handled=False)
        return AuthResult(success=True, auth_data=auth_data)

    def _handler(self) -> SinkHandler:
        return SinkHandler(self)

    def start(self) -> Self:
        if self._controller is not None:
            return self
        # aiosmtpd closes the event loop on stop, so each start needs a new
        # Controller and loop.
        controller = Controller(
            self._handler(),
            hostname=self.host,
            port=self.port,
            loop=asyncio.new_event_loop(),
            ready_timeout=self._ready_timeout,
            # An explicit name avoids socket.getfqdn(), i.e. a DNS lookup off-host.
            server_hostname="mailbot-test-sink",
            authenticator=self._authenticate,
            auth_require_tls=False,
            enable_SMTPUTF8=True,
            tls_context=self._tls_context,
            ident=self._ident,
        )
        controller.start()
        self._controller = controller
        self._register_cleanup()
        return self

    def stop(self) -> None:
        controller, self._controller = self._controller, None
        if controller is not None:
            # Returns once the loop thread has closed the listening socket.
            controller.stop()
