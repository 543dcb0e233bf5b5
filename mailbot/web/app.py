"""The desk's Flask application, built around the one App: pages, guard and headers."""

from __future__ import annotations

import secrets
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from flask import Flask, Response, g, render_template
from jinja2 import StrictUndefined
from markupsafe import Markup
from werkzeug.exceptions import HTTPException

from mailbot.app import App
from mailbot.config import WebSettings
from mailbot.mail.names import shown, without_bidi
from mailbot.replies.render import Renderer
from mailbot.service.status import current_status, status_lines
from mailbot.store.models import utcnow
from mailbot.web import labels
from mailbot.web.desk import focus_areas


@dataclass(frozen=True)
class Desk:
    """What every view needs: the App, the letter templates, the clock, the cookie rules."""

    app: App
    letters: Renderer  # templates/web/reply/*.txt.j2, rendered as the replies are
    secure_cookies: bool
    clock: Callable[[], datetime]

    def now(self) -> datetime:
        return self.clock()

    def local(self, moment: datetime | None) -> str:
        """A moment in Beijing time (the call's time zone), as the log shows it."""
        if moment is None:
            return "-"
        return self.app.call.local(moment).strftime("%Y-%m-%d %H:%M:%S")

    def service(self) -> list[tuple[str, str]]:
        """The figures of `mailbot status`, for the strip atop every page."""
        digest = self.app.settings.digest
        tz = self.app.call.tz
        with self.app.db.transaction() as session:
            figures = current_status(
                session, self.app.call.id, tz, digest.at, digest.to, self.now()
            )
        return status_lines(figures, tz)

    def focus_area(self, code: str | None) -> tuple[str, str]:
        if not code or code == "-":
            return ("-", "")
        return focus_areas(self.app.call).get(code, (code, ""))

    def focus_area_text(self, code: str | None) -> str:
        zh, en = self.focus_area(code)
        return f"{zh} {en}".strip()


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
    from mailbot.web import edge
    from mailbot.web.dealing_views import Dealing
    from mailbot.web.forms import Forms
    from mailbot.web.guard import Guard
    from mailbot.web.pages import Pages
    from mailbot.web.users import Users

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
