"""An aiosmtpd SMTP sink on 127.0.0.1 that records every message it is handed.

It also counts what a client costs a server (connections, EHLOs, logins) and
can act as real servers do on a bad day: refuse a recipient, refuse a message
after its final dot, or close the connection after some messages.
"""

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
    connection: int = 0  # which connection carried it: 1 for the sink's first, and so on

    @property
    def message(self) -> email.message.EmailMessage:
        parsed = email.message_from_bytes(self.data, policy=email.policy.default)
        assert isinstance(parsed, email.message.EmailMessage)
        return parsed


class _CountedSMTP(SMTP):
    """aiosmtpd's server for one connection, which tells the sink when it greets and ends."""

    def __init__(self, handler: Any, *, sink: SmtpSink, **kwargs: Any) -> None:
        super().__init__(handler, **kwargs)
        self.sink = sink
        self.number = 0  # set at the first EHLO: the controller's own probe never greets
        self.delivered = 0  # messages taken on this connection

    def connection_lost(self, error: Exception | None) -> None:
        super().connection_lost(error)
        if self.number:
            self.sink._ended()


class _CountingController(Controller):
    def __init__(self, handler: Any, *, sink: SmtpSink, **kwargs: Any) -> None:
        super().__init__(handler, **kwargs)
        self._sink = sink

    def factory(self) -> SMTP:
        return _CountedSMTP(self.handler, sink=self._sink, **self.SMTP_kwargs)


class SinkHandler:
    def __init__(self, sink: SmtpSink) -> None:
        self._sink = sink

    async def handle_EHLO(
        self,
        server: SMTP,
        session: Session,
        envelope: Envelope,
        hostname: str,
        responses: list[str],
    ) -> list[str]:
        session.host_name = hostname  # aiosmtpd leaves this to a handler with this hook
        if isinstance(server, _CountedSMTP) and not server.number:
            server.number = self._sink._greeted()
        self._sink._count("ehlos")
        return responses

    async def handle_RCPT(
        self, server: SMTP, session: Session, envelope: Envelope, address: str, options: list[str]
    ) -> str:
        refusal = self._sink.refuse_recipients.get(address)
        if refusal is not None:
            return refusal
        envelope.rcpt_tos.append(address)
        envelope.rcpt_options.extend(options)
        return "250 OK"

    async def handle_MAIL(
        self, server: SMTP, session: Session, envelope: Envelope, address: str, options: list[str]
    ) -> str:
        if isinstance(server, _CountedSMTP) and self._closing(server) and self._sink.say_421:
            # As a server past its limit says it: a 421, then the connection closes.
            self._close_soon(server)
            return "421 4.7.0 Too many messages on this connection, closing it"
        envelope.mail_from = address
        envelope.mail_options.extend(options)
        return "250 OK"

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        refusal = next(
            (
                self._sink.refuse_messages[a]
                for a in envelope.rcpt_tos
                if a in self._sink.refuse_messages
            ),
            None,
        )
        if refusal is not None:
            return refusal  # refused after its final dot: nothing delivered
        auth = session.auth_data
        raw = envelope.original_content
        number = server.number if isinstance(server, _CountedSMTP) else 0
        self._sink._record(
            ReceivedMessage(
                mail_from=envelope.mail_from or "",
                rcpt_tos=tuple(envelope.rcpt_tos),
                data=raw if isinstance(raw, bytes) else b"",
                auth_user=auth.login.decode() if isinstance(auth, LoginPassword) else None,
                connection=number,
            )
        )
        if isinstance(server, _CountedSMTP):
            server.delivered += 1
            if self._closing(server) and not self._sink.say_421:
                # Closed without a word once its 250 is out, as an idle timeout closes it.
                self._close_soon(server)
        return "250 2.0.0 Message accepted"

    def _closing(self, server: _CountedSMTP) -> bool:
        limit = self._sink.close_after
        return limit is not None and server.delivered >= limit

    @staticmethod
    def _close_soon(server: SMTP) -> None:
        """Close the connection once the answer being written has gone out."""
        transport = server.transport
        if transport is not None:
            server.loop.call_soon(transport.close)


class SmtpSink(ManagedServer):
    """An aiosmtpd server that records every message; AUTH is offered but optional.

    Given ``tls_context`` (a server context with its certificate) it offers
    STARTTLS; ``ident`` replaces the software name in its 220 greeting;
    ``size_limit`` is the message size it takes (its SIZE, RFC 1870).

    ``connections`` counts the client connections that greeted it (EHLO),
    ``ehlos`` and ``logins`` the EHLOs and successful AUTHs, ``open_connections``
    those not yet closed. A test may set ``refuse_recipients`` (address -> the
    RCPT answer), ``refuse_messages`` (address -> the answer after the final
    dot), and ``close_after`` (the server closes a connection once it has taken
    that many messages: silently after the last 250, or with ``say_421`` by
    answering the next MAIL with 421).
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
        size_limit: int | None = None,
    ) -> None:
        self.host = LOCALHOST
        self.port = port or free_port()
        self._tls_context = tls_context
        self._ident = ident
        self._size_limit = size_limit
        self.user = f"mailbot-{secrets.token_hex(4)}"
        self.password = secrets.token_urlsafe(18)
        self._ready_timeout = ready_timeout
        self._controller: Controller | None = None
        self._messages: list[ReceivedMessage] = []
        self._arrived = threading.Condition()
        self._counts = {"connections": 0, "open": 0, "ehlos": 0, "logins": 0}
        self.refuse_recipients: dict[str, str] = {}
        self.refuse_messages: dict[str, str] = {}
        self.close_after: int | None = None
        self.say_421 = False

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

    @property
    def connections(self) -> int:
        return self._counts["connections"]

    @property
    def open_connections(self) -> int:
        return self._counts["open"]

    @property
    def ehlos(self) -> int:
        return self._counts["ehlos"]

    @property
    def logins(self) -> int:
        return self._counts["logins"]

    def _count(self, what: str) -> None:
        with self._arrived:
            self._counts[what] += 1

    def _greeted(self) -> int:
        """A new connection said EHLO: its number."""
        with self._arrived:
            self._counts["connections"] += 1
            self._counts["open"] += 1
            return self._counts["connections"]

    def _ended(self) -> None:
        with self._arrived:
            self._counts["open"] -= 1
            self._arrived.notify_all()

    def wait_closed(self, timeout: float = 5.0) -> None:
        """Block until no client connection is open."""
        with self._arrived:
            if not self._arrived.wait_for(lambda: self._counts["open"] == 0, timeout):
                raise TimeoutError(
                    f"SMTP sink still has {self._counts['open']} open connection(s) "
                    f"after {timeout} s"
                )

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
        self._count("logins")
        return AuthResult(success=True, auth_data=auth_data)

    def _handler(self) -> SinkHandler:
        return SinkHandler(self)

    def start(self) -> Self:
        if self._controller is not None:
            return self
        # aiosmtpd closes the event loop on stop, so each start needs a new
        # Controller and loop.
        controller = _CountingController(
            self._handler(),
            sink=self,
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
            # The SIZE it offers in EHLO, and refuses a MAIL FROM over (552): 32 MiB unless given.
            **({} if self._size_limit is None else {"data_size_limit": self._size_limit}),
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
