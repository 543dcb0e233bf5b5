"""An OAuth2 provider on 127.0.0.1, and Dovecot and an SMTP sink that take its access tokens.

``TokenServer`` plays the provider: its token endpoint turns a refresh token
into a short-lived access token (RFC 6749, 6) and its introspection endpoint
tells Dovecot's oauth2 passdb whose a token is (RFC 7662 shape). The test
expires access tokens and revokes refresh tokens at will, and reads what
each endpoint was asked.
"""

from __future__ import annotations

import base64
import json
import secrets
import threading
import urllib.parse
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, Self

from aiosmtpd.smtp import SMTP, AuthResult, LoginPassword

from tests.servers.common import LOCALHOST, ManagedServer
from tests.servers.dovecot import Dovecot
from tests.servers.smtp import SinkHandler, SmtpSink


@dataclass
class Introspection:
    """One question a mail server asked the provider: was the token good?"""

    token: str
    user: str | None  # None: refused


@dataclass
class _Grant:
    user: str
    revoked: bool = False


@dataclass
class _State:
    client_id: str
    client_secret: str
    lifetime: int
    down: bool = False  # the token endpoint answers 503
    rotate: bool = False  # each grant replaces the refresh token it was given (Microsoft's way)
    refresh_tokens: dict[str, _Grant] = field(default_factory=dict)
    access_tokens: dict[str, str] = field(default_factory=dict)  # token -> user
    issued: list[str] = field(default_factory=list)
    scopes: list[str] = field(default_factory=list)  # asked for, per grant
    introspections: list[Introspection] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)


class TokenServer(ManagedServer):
    """A provider's token and introspection endpoints over plain HTTP on 127.0.0.1."""

    def __init__(self, *, lifetime: int = 600) -> None:
        self.host = LOCALHOST
        self._state = _State(
            client_id=f"mailbot-{secrets.token_hex(4)}",
            client_secret=secrets.token_urlsafe(12),
            lifetime=lifetime,
        )
        self._httpd: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    @property
    def client_id(self) -> str:
        return self._state.client_id

    @property
    def client_secret(self) -> str:
        return self._state.client_secret

    @property
    def port(self) -> int:
        assert self._httpd is not None, "the token server is not running"
        return int(self._httpd.server_address[1])

    @property
    def token_url(self) -> str:
        return f"http://{self.host}:{self.port}/token"

    @property
    def introspection_url(self) -> str:
        return f"http://{self.host}:{self.port}/introspect"

    def start(self) -> Self:
        if self._httpd is None:
            state = self._state
            handler = type("Handler", (_Handler,), {"state": state})
            self._httpd = ThreadingHTTPServer((self.host, 0), handler)
            self._httpd.daemon_threads = True
            # stop() waits for the serving loop to look again: every 50 ms, not the default 0.5 s.
            self._thread = threading.Thread(
                target=self._httpd.serve_forever,
                kwargs={"poll_interval": 0.05},
                name="token-server",
                daemon=True,
            )
            self._thread.start()
            self._register_cleanup()
        return self

    def stop(self) -> None:
        httpd, self._httpd = self._httpd, None
        if httpd is not None:
            httpd.shutdown()
            httpd.server_close()
        if self._thread is not None:
            self._thread.join()
            self._thread = None

    # -- what the test does as the provider -----------------------------------

    def refresh_token(self, user: str) -> str:
        """A refresh token for ``user``, as the provider hands out at sign-in."""
        token = f"rt-{secrets.token_urlsafe(12)}"
        with self._state.lock:
            self._state.refresh_tokens[token] = _Grant(user)
        return token

    def revoke(self, refresh_token: str) -> None:
        with self._state.lock:
            self._state.refresh_tokens[refresh_token].revoked = True

    def set_down(self, down: bool) -> None:
        """Make the token endpoint answer 503 Service Unavailable, or stop that."""
        with self._state.lock:
            self._state.down = down

    def rotate_refresh_tokens(self, rotate: bool) -> None:
        """Hand out a new refresh token with each access token and revoke the one used, or stop."""
        with self._state.lock:
            self._state.rotate = rotate

    def expire_access_tokens(self) -> None:
        """Every access token handed out so far stops working."""
        with self._state.lock:
            self._state.access_tokens.clear()

    def check(self, token: str) -> str | None:
        """The user an access token is good for, or None; recorded like an introspection."""
        with self._state.lock:
            user = self._state.access_tokens.get(token)
            self._state.introspections.append(Introspection(token, user))
            return user

    @property
    def issued(self) -> list[str]:
        """The access tokens handed out, oldest first."""
        with self._state.lock:
            return list(self._state.issued)

    @property
    def scopes(self) -> list[str]:
        """The scope each granted request asked for, oldest first."""
        with self._state.lock:
            return list(self._state.scopes)

    @property
    def introspections(self) -> list[Introspection]:
        with self._state.lock:
            return list(self._state.introspections)


class _Handler(BaseHTTPRequestHandler):
    state: _State

    def log_message(self, format: str, *args: Any) -> None:
        pass  # the test reads the recorded calls instead

    def _answer(self, status: int, body: dict[str, Any]) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_POST(self) -> None:
        if self.path != "/token":
            self._answer(404, {"error": "not_found"})
            return
        length = int(self.headers.get("Content-Length") or 0)
        form = dict(urllib.parse.parse_qsl(self.rfile.read(length).decode()))
        state = self.state
        if state.down:
            self._answer(503, {"error": "temporarily_unavailable"})
            return
        if form.get("grant_type") != "refresh_token":
            self._answer(400, {"error": "unsupported_grant_type"})
            return
        if form.get("client_id") != state.client_id or (
            form.get("client_secret") != state.client_secret
        ):
            self._answer(401, {"error": "invalid_client"})
            return
        with state.lock:
            grant = state.refresh_tokens.get(form.get("refresh_token", ""))
            if grant is None or grant.revoked:
                self._answer(
                    400,
                    {
                        "error": "invalid_grant",
                        "error_description": "The refresh token has been revoked.",
                    },
                )
                return
            token = f"at-{secrets.token_urlsafe(16)}"
            state.access_tokens[token] = grant.user
            state.issued.append(token)
            state.scopes.append(form.get("scope", ""))
            body = {"access_token": token, "token_type": "Bearer", "expires_in": state.lifetime}
            if state.rotate:
                grant.revoked = True
                rotated = f"rt-{secrets.token_urlsafe(12)}"
                state.refresh_tokens[rotated] = _Grant(grant.user)
                body["refresh_token"] = rotated
        self._answer(200, body)

    def do_GET(self) -> None:
        # Dovecot's introspection_mode = auth: the token as a bearer token.
        if self.path != "/introspect":
            self._answer(404, {"error": "not_found"})
            return
        bearer = self.headers.get("Authorization", "")
        token = bearer.removeprefix("Bearer ").strip()
        with self.state.lock:
            user = self.state.access_tokens.get(token)
            self.state.introspections.append(Introspection(token, user))
        if user is None:
            self._answer(401, {"error": "invalid_token", "active": False})
        else:
            self._answer(200, {"active": True, "email": user})


class OAuthDovecot(Dovecot):
    """Dovecot taking XOAUTH2 and OAUTHBEARER logins, checked at ``tokens``' introspection."""

    def __init__(self, tokens: TokenServer, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.tokens = tokens

    def _auth_config(self, passwd: Path) -> str:
        oauth2 = passwd.parent / "dovecot-oauth2.conf.ext"
        oauth2.write_text(
            f"introspection_url = {self.tokens.introspection_url}\n"
            "introspection_mode = auth\n"
            "username_attribute = email\n"
            "active_attribute = active\n"
            "active_value = true\n"
            "force_introspection = yes\n"
        )
        oauth2.chmod(0o644)
        return f"""\
auth_mechanisms = plain login xoauth2 oauthbearer
passdb {{
  driver = passwd-file
  mechanisms = plain login
  args = {passwd}
}}
passdb {{
  driver = oauth2
  mechanisms = xoauth2 oauthbearer
  args = {oauth2}
}}"""


class _OAuthSinkHandler(SinkHandler):
    """XOAUTH2 and OAUTHBEARER as Microsoft's and Google's SMTP servers take them."""

    def __init__(self, sink: OAuthSmtpSink) -> None:
        super().__init__(sink)
        self._sink: OAuthSmtpSink = sink
        self._tokens = sink.tokens

    async def auth_XOAUTH2(self, server: SMTP, args: list[str]) -> AuthResult:
        return await self._bearer(server, args, "XOAUTH2")

    async def auth_OAUTHBEARER(self, server: SMTP, args: list[str]) -> AuthResult:
        return await self._bearer(server, args, "OAUTHBEARER")

    async def _bearer(self, server: SMTP, args: list[str], mechanism: str) -> AuthResult:
        if len(args) > 1:
            blob = base64.b64decode(args[1])
        else:
            answer = await server.challenge_auth("")
            if not isinstance(answer, bytes):
                return AuthResult(success=False, handled=True)
            blob = answer
        user, token = _bearer_fields(blob.decode(), mechanism)
        if user is not None and self._tokens.check(token) == user:
            # The token is not kept: the recorded message names the user alone.
            return AuthResult(success=True, auth_data=LoginPassword(user.encode(), b""))
        # RFC 7628, 3.2.2: the error as a challenge, which the client acknowledges.
        error = json.dumps({"status": "invalid_token", "schemes": "bearer"})
        acknowledged = await server.challenge_auth(error)
        if not isinstance(acknowledged, bytes):
            return AuthResult(success=False, handled=True)
        self._sink.acknowledgements.append(acknowledged)
        return AuthResult(success=False, handled=False)


def _bearer_fields(text: str, mechanism: str) -> tuple[str | None, str]:
    """The user and the token of an XOAUTH2 or OAUTHBEARER initial response."""
    fields = text.split("\x01")
    user: str | None = None
    token = ""
    if mechanism == "OAUTHBEARER":
        header = fields[0].split(",")
        if len(header) > 1 and header[1].startswith("a="):
            user = header[1][2:].replace("=2C", ",").replace("=3D", "=")
        fields = fields[1:]
    for item in fields:
        key, _, value = item.partition("=")
        if key == "user":
            user = value
        elif key == "auth":
            token = value.removeprefix("Bearer ")
    return user, token


class OAuthSmtpSink(SmtpSink):
    """The SMTP sink taking XOAUTH2 and OAUTHBEARER, checked with ``tokens``."""

    def __init__(self, tokens: TokenServer, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.tokens = tokens
        # What clients answered to a refusal (RFC 7628, 3.2.2: %x01, or empty for XOAUTH2).
        self.acknowledgements: list[bytes] = []

    def _handler(self) -> SinkHandler:
        return _OAuthSinkHandler(self)
