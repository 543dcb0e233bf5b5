"""The desk's edge: what a request must be before any page sees it.

- Behind ``trusted_proxies`` reverse proxies, werkzeug's ProxyFix takes the
  scheme, client address and host from their X-Forwarded-* headers, so the
  Origin check, redirects and the per-address sign-in limit see the browser's
  ``https://`` and its real address. With 0 proxies those headers are ignored:
  anyone can write them.
- Only the host names in ``allowed_hosts`` are answered (400 otherwise).
- Bodies are bounded three times: waitress refuses a body over MAX_BODY before
  reading it; Flask refuses a form over MAX_FORM, and a sign-in form (sent by
  anyone, before any session) over MAX_LOGIN_FORM, before parsing it.
- Ids in paths and query strings are 64-bit database ids or not found (404).
"""

from __future__ import annotations

from collections.abc import Sequence

from flask import Flask, abort, request
from werkzeug.exceptions import SecurityError
from werkzeug.middleware.proxy_fix import ProxyFix
from werkzeug.routing import IntegerConverter, Map

MAX_BODY = 1024 * 1024  # waitress: larger bodies are refused unread
MAX_FORM = 256 * 1024  # a letter and a reason; nothing is uploaded to the desk
MAX_LOGIN_FORM = 64 * 1024  # a name, a password and a token
MAX_ID = 2**63 - 1  # the largest id SQLite and PostgreSQL store (BIGINT)
PUBLIC_FORMS = frozenset({"login"})


class IdConverter(IntegerConverter):
    """``<id:name>`` in a route: a positive 64-bit integer; anything else is not found."""

    regex = r"[0-9]+"  # ASCII digits: "\d" would take "１２" for 12

    def __init__(self, url_map: Map) -> None:
        super().__init__(url_map, min=1, max=MAX_ID)


def query_id(name: str) -> int | None:
    """A database id from the query string: None if absent, 404 if it cannot be an id."""
    value = request.args.get(name)
    if value is None or value == "":
        return None
    if not value.isascii() or not value.isdigit() or not 1 <= int(value) <= MAX_ID:
        abort(404)
    return int(value)


def install(flask: Flask, trusted_proxies: int, allowed_hosts: Sequence[str]) -> None:
    """Put the edge in front of the desk's pages; call it before any other before_request."""
    flask.url_map.converters["id"] = IdConverter
    flask.config["MAX_CONTENT_LENGTH"] = MAX_FORM
    if allowed_hosts:
        flask.config["TRUSTED_HOSTS"] = list(allowed_hosts)
    flask.before_request(_check)
    if trusted_proxies > 0:
        n = trusted_proxies
        # Flask's documented way to add WSGI middleware; mypy takes wsgi_app for a method.
        flask.wsgi_app = ProxyFix(  # type: ignore[method-assign]
            flask.wsgi_app, x_for=n, x_proto=n, x_host=n
        )


def _check() -> None:
    # Flask checks the host before routing and keeps the refusal for later: raise it
    # now, before the sign-in guard builds a redirect for a host nobody trusts.
    if isinstance(request.routing_exception, SecurityError):
        abort(400, "host")
    if request.endpoint in PUBLIC_FORMS:
        request.max_content_length = MAX_LOGIN_FORM
