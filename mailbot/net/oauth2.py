"""OAuth2 access tokens for the mail servers, and the SASL messages that carry them.

Microsoft 365 and Gmail have switched basic authentication off: IMAP and
SMTP take an access token instead (SASL XOAUTH2, or OAUTHBEARER of RFC 7628).
A ``TokenSource`` gets one from the provider's token endpoint with the
refresh token the operator put in the environment (the refresh grant of
RFC 6749, 6), keeps it, and gets a new one shortly before it expires, or
when the server refused it (``renew``). No token or secret is ever logged
or put into an error message.
"""

from __future__ import annotations

import http.client
import json
import logging
import os
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from email.message import Message
from typing import overload

from mailbot.config import ConfigError, OAuth2Settings
from mailbot.errors import MailbotError
from mailbot.net.hosts import is_loopback

log = logging.getLogger(__name__)

# A token is renewed this long before it expires, at most a quarter of its lifetime.
REFRESH_MARGIN = 300.0
# Used when the token endpoint does not say how long its token lives (RFC 6749 makes it optional).
DEFAULT_LIFETIME = 3600.0
# The token endpoint's answer is a small JSON object; more is not read.
MAX_RESPONSE = 1 << 20


class OAuth2Error(MailbotError):
    """No access token: the token endpoint is unreachable or refused the refresh token."""


@dataclass(frozen=True)
class Grant:
    """What the token endpoint is shown for an access token: the refresh token and, for a
    confidential client, the client secret. Neither is ever printed."""

    refresh_token: str = field(repr=False)
    client_secret: str | None = field(default=None, repr=False)


@dataclass(frozen=True)
class _Token:
    value: str
    renew_at: float  # on the source's clock
    expires_at: float


def check_token_url(url: str, section: str) -> None:
    """A token URL mailbot may send a refresh token to: https, or http to this machine only."""
    parts = urllib.parse.urlsplit(url)
    if parts.scheme == "https" and parts.hostname:
        return
    if parts.scheme == "http" and parts.hostname and is_loopback(parts.hostname):
        return
    raise ConfigError(
        f"{section}.oauth2.token_url {url!r}: give the provider's https:// token endpoint "
        "(see the README, 'Mail servers'); a refresh token never goes out unencrypted"
    )


class TokenSource:
    """Access tokens for one account: fetched when first needed, kept until shortly before
    they expire. Safe to share between threads."""

    def __init__(
        self,
        settings: OAuth2Settings,
        grant: Grant,
        *,
        section: str,
        clock: Callable[[], float] = time.monotonic,
        timeout: float = 30.0,
    ) -> None:
        self.settings = settings
        self.section = section
        self._grant = grant
        self._clock = clock
        self._timeout = timeout
        self._token: _Token | None = None
        self._lock = threading.Lock()

    @classmethod
    def from_settings(
        cls,
        settings: OAuth2Settings,
        section: str,
        *,
        clock: Callable[[], float] = time.monotonic,
        timeout: float = 30.0,
    ) -> TokenSource:
        """The token source a config section asks for; ConfigError naming what is missing."""
        if not settings.token_url:
            raise ConfigError(
                f"{section}.oauth2.token_url is empty: OAuth2 needs the provider's token "
                "endpoint (see the README, 'Mail servers')"
            )
        check_token_url(settings.token_url, section)
        if not settings.client_id:
            raise ConfigError(
                f"{section}.oauth2.client_id is empty: give the application (client) ID "
                "registered with the provider"
            )
        refresh_token = _from_env(
            settings.refresh_token_env, f"{section}.oauth2.refresh_token_env", "refresh token"
        )
        client_secret = None
        if settings.client_secret_env:
            client_secret = _from_env(
                settings.client_secret_env, f"{section}.oauth2.client_secret_env", "client secret"
            )
        grant = Grant(refresh_token, client_secret)
        return cls(settings, grant, section=section, clock=clock, timeout=timeout)

    def token(self) -> str:
        """An access token that is not about to expire."""
        with self._lock:
            token = self._token
            if token is None:
                return self._fetch().value
            now = self._clock()
            if now < token.renew_at:
                return token.value
            try:
                return self._fetch().value
            except OAuth2Error as exc:
                if now >= token.expires_at:
                    raise
                # The provider's hiccup need not stop the mail while the old token lives.
                self._token = token
                log.warning(
                    "%s: cannot renew the OAuth2 access token yet (%s); using the current one "
                    "for %.0f s more",
                    self.section,
                    exc,
                    token.expires_at - now,
                )
                return token.value

    def renew(self, refused: str) -> str:
        """A new access token after a server refused ``refused`` (unless another thread
        already got a new one meanwhile)."""
        with self._lock:
            token = self._token
            if token is None or token.value == refused:
                token = self._fetch()
            return token.value

    def mask(self, text: str) -> str:
        """``text`` without the current access token, should a server have echoed it."""
        token = self._token
        return text.replace(token.value, "***") if token is not None else text

    def _fetch(self) -> _Token:
        self._token = None
        started = self._clock()
        answer = self._post(self._form())
        value = answer.get("access_token")
        if not isinstance(value, str) or not value:
            raise OAuth2Error(f"the token endpoint {self.url} answered without an access_token")
        lifetime = _lifetime(answer.get("expires_in"))
        rotated = answer.get("refresh_token")
        if isinstance(rotated, str) and rotated:
            # Microsoft hands out a new refresh token with each access token.
            self._grant = replace(self._grant, refresh_token=rotated)
        expires_at = started + lifetime
        self._token = _Token(value, expires_at - min(REFRESH_MARGIN, lifetime / 4), expires_at)
        log.info("%s: got an OAuth2 access token valid for %.0f s", self.section, lifetime)
        return self._token

    @property
    def url(self) -> str:
        return self.settings.token_url

    def _form(self) -> bytes:
        form = {
            "grant_type": "refresh_token",
            "refresh_token": self._grant.refresh_token,
            "client_id": self.settings.client_id,
        }
        if self._grant.client_secret:
            form["client_secret"] = self._grant.client_secret
        if self.settings.scope:
            form["scope"] = self.settings.scope
        return urllib.parse.urlencode(form).encode("ascii")

    def _post(self, body: bytes) -> dict[str, object]:
        request = urllib.request.Request(
            self.url,
            data=body,
            headers={
                "Content-Type": "application/x-www-form-urlencoded",
                "Accept": "application/json",
            },
            method="POST",
        )
        try:
            with urllib.request.urlopen(request, timeout=self._timeout) as response:
                return _json_object(response.read(MAX_RESPONSE), response.headers)
        except urllib.error.HTTPError as exc:
            with exc:
                detail = _json_object(exc.read(MAX_RESPONSE), exc.headers, strict=False)
            raise self._refused(exc.code, detail) from None
        except (OSError, http.client.HTTPException) as exc:  # URLError and timeouts too
            reason = getattr(exc, "reason", None) or exc
            raise OAuth2Error(f"cannot reach the token endpoint {self.url}: {reason}") from None
        except ValueError as exc:
            raise OAuth2Error(f"the token endpoint {self.url} answered {exc}") from None

    def _refused(self, status: int, detail: dict[str, object]) -> OAuth2Error:
        code = str(detail.get("error") or f"HTTP {status}")
        description = " ".join(str(detail.get("error_description") or "").split())[:200]
        said = f"{code}: {description}" if description else code
        if code in ("invalid_grant", "invalid_client", "unauthorized_client"):
            fix = (
                "sign in again to get a new refresh token and set "
                + self.settings.refresh_token_env
                if code == "invalid_grant"
                else f"check {self.section}.oauth2.client_id and the client secret"
            )
            return OAuth2Error(
                f"the token endpoint {self.url} refused the refresh token ({said}): {fix}"
            )
        return OAuth2Error(f"the token endpoint {self.url} gave no access token ({said})")


def _from_env(name: str, key: str, what: str) -> str:
    if not name:
        raise ConfigError(f"{key} is empty: name the environment variable that holds the {what}")
    value = os.environ.get(name)
    if not value:
        raise ConfigError(f"the environment variable {name} (the OAuth2 {what}) is not set")
    return value


def _lifetime(value: object) -> float:
    """Seconds from ``expires_in``: a number, or a string of one (as some providers send)."""
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        return DEFAULT_LIFETIME
    try:
        seconds = float(value)
    except ValueError:
        return DEFAULT_LIFETIME
    return seconds if 0 < seconds < float("inf") else DEFAULT_LIFETIME


def _json_object(data: bytes, headers: Message, *, strict: bool = True) -> dict[str, object]:
    try:
        text = data.decode(headers.get_content_charset() or "utf-8", "replace")
    except LookupError:  # a charset Python does not know
        text = data.decode("utf-8", "replace")
    try:
        value = json.loads(text)
    except ValueError:
        if strict:
            raise ValueError("something that is not JSON") from None
        return {}
    if not isinstance(value, dict):
        if strict:
            raise ValueError("JSON that is not an object")
        return {}
    return value


# -- SASL ------------------------------------------------------------------------


def sasl_response(mechanism: str, user: str, token: str) -> str:
    """The client's first SASL message carrying ``token`` for ``user``."""
    if mechanism.lower() == "oauthbearer":
        # RFC 7628, 3.1: a GS2 header naming the user, then key=value pairs.
        authzid = user.replace("=", "=3D").replace(",", "=2C")
        return f"n,a={authzid},\x01auth=Bearer {token}\x01\x01"
    return f"user={user}\x01auth=Bearer {token}\x01\x01"


class SaslAnswer:
    """A SASL client for IMAP AUTHENTICATE and SMTP AUTH carrying one access token.

    The first call (no challenge, or an empty one) gives the token. A later
    challenge is the server's error (RFC 7628, 3.2.2), which the client must
    acknowledge, with a single %x01 for OAUTHBEARER and an empty line for
    XOAUTH2, before the server ends the exchange with its refusal.
    """

    def __init__(self, mechanism: str, user: str, token: str) -> None:
        self._mechanism = mechanism.lower()
        self._first: str | None = sasl_response(mechanism, user, token)

    @overload
    def __call__(self, challenge: None = None, /) -> str | None: ...
    @overload
    def __call__(self, challenge: bytes, /) -> str: ...
    def __call__(self, challenge: bytes | None = None, /) -> str | None:
        first, self._first = self._first, None
        if first is not None:
            return first
        if challenge:
            log.debug("the server refused the token: %s", challenge.decode("utf-8", "replace"))
        return "\x01" if self._mechanism == "oauthbearer" else ""
