"""The desk's Flask application for the one App: it registers the pages, the guard, the headers."""

from __future__ import annotations

import secrets
from collections.abc import Callable
from datetime import datetime

from flask import Flask, Response, g, render_template
from jinja2 import StrictUndefined
from markupsafe import Markup
from werkzeug.exceptions import HTTPException

from mailbot.app import App
from mailbot.config import WebSettings
from mailbot.mail.names import shown, without_bidi
from mailbot.replies.render import Renderer
from mailbot.store.models import utcnow
from mailbot.web import edge, labels
from mailbot.web.dealing_views import Dealing
from mailbot.web.desk import Desk
from mailbot.web.forms import Forms
from mailbot.web.guard import Guard
from mailbot.web.pages import Pages
from mailbot.web.users import Users


def create_app(
    app: App,
    *,
    web: WebSettings | None = None,
    secure_cookies: bool | None = None,
    clock: Callable[[], datetime] = utcnow,
) -> Flask:
    """The intake desk for one App; serve it with `mailbot web` or any WSGI server.

    ``web`` defaults to the config's [web] section; ``secure_cookies``, when
    given, overrides its secure_cookies.
    """
    templates = app.settings.templates_path() / "web"
    flask = Flask("mailbot.web", template_folder=str(templates), static_folder=None)
    flask.jinja_env.autoescape = True  # every template is HTML, whatever its name
    flask.jinja_env.undefined = StrictUndefined
    web = web if web is not None else app.settings.web
    secure = web.secure_cookies if secure_cookies is None else secure_cookies
    desk = Desk(app, Renderer(templates), secure, clock)
    flask.jinja_env.globals.update(
        desk=desk,
        call=app.call,
        labels=labels,
        label=labels.label,
        csp_nonce=nonce,
    )
    flask.jinja_env.filters["size"] = file_size
    flask.jinja_env.filters["shown"] = shown
    # Whatever a page prints, no sender's text reorders what the reader sees.
    flask.jinja_env.finalize = visible
    edge.install(flask, web.trusted_proxies, web.allowed_hosts)  # before the guard
    Guard(desk).register(flask)
    Pages(desk).register(flask)
    Forms(desk).register(flask)
    Users(desk).register(flask)
    Dealing(desk).register(flask)
    flask.after_request(security_headers)
    flask.register_error_handler(HTTPException, error_page)
    return flask


def file_size(size: int | None) -> str:
    if size is None:
        return "-"
    if size < 1024:
        return f"{size} B"
    if size < 1024 * 1024:
        return f"{size / 1024:.1f} KB"
    return f"{size / 1024 / 1024:.1f} MB"


def visible(value: object) -> object:
    """Every value a template prints, with its bidirectional controls escaped."""
    if isinstance(value, Markup):
        return Markup(without_bidi(str(value)))  # the controls are no HTML: still safe
    if isinstance(value, str):
        return without_bidi(value)
    return value


def nonce() -> str:
    """This response's CSP nonce: only the desk's own <style> block carries it."""
    if "csp_nonce" not in g:
        g.csp_nonce = secrets.token_urlsafe(16)
    value: str = g.csp_nonce
    return value


def security_headers(response: Response) -> Response:
    # No script runs on any page of the desk: a sender's text cannot become one.
    response.headers.setdefault(
        "Content-Security-Policy",
        "default-src 'none'; script-src 'none'; "
        f"style-src 'nonce-{nonce()}'; img-src 'self' data:; "
        "form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
    )
    response.headers["X-Content-Type-Options"] = "nosniff"
    response.headers["X-Frame-Options"] = "DENY"
    response.headers["Referrer-Policy"] = "same-origin"
    response.headers["Cross-Origin-Opener-Policy"] = "same-origin"
    # Applicants' data: no copy left in a shared browser's cache.
    response.headers["Cache-Control"] = "no-store"
    return response


def error_page(error: HTTPException) -> tuple[str, int]:
    code = error.code or 500
    return render_template("error.html", code=code, error=error), code
