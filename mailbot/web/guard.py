"""The desk's door: every page needs a session, every form a CSRF token, sign-ins are limited.

A session cookie is HttpOnly and SameSite=Lax (and Secure, with the __Host-
prefix, behind HTTPS). Each session has its own CSRF token, checked with the
Origin header on every POST. The sign-in form, which comes before any
session, carries a token that must match a short-lived cookie of its own.
Roles: a viewer's forms are refused (but signing out and changing their own
password), and the accounts pages are an admin's alone.
"""

from __future__ import annotations

import hmac
import re
import secrets
from urllib.parse import urlsplit

from flask import Flask, Response, abort, g, redirect, render_template, request, url_for
from werkzeug.exceptions import Forbidden
from werkzeug.wrappers.response import Response as BaseResponse

from mailbot.web.auth import (
    SESSION_LIFETIME,
    Actor,
    authenticate,
    close_session,
    find_session,
    open_session,
)
from mailbot.web.desk import Desk
from mailbot.web.drafts import keep_unsent
from mailbot.web.throttle import (
    DEVICE_LIFETIME,
    Refusal,
    address_refusal,
    claim_try,
    distrust,
    forget_old,
    settle_try,
    trust_device,
    trusted_device,
)


class Refused(Forbidden):
    """A 403 whose reason is for the person refused, in Chinese and in English."""

    def __init__(self, zh: str, en: str) -> None:
        super().__init__(f"{zh} {en}")
        self.zh = zh
        self.en = en


PUBLIC = frozenset({"login"})
# What a viewer may still send: signing out and a new password of their own.
SELF_SERVICE = frozenset({"logout", "account"})
VIEWER_REFUSED = ("只读账户不能操作。", "A viewer's account reads only and cannot act.")
ADMIN_ONLY = ("只有管理员可以管理账户。", "Only an admin manages accounts.")
_TOKEN = re.compile(r"[A-Za-z0-9_-]{43}")
LOGIN_COOKIE_AGE = 3600


class Guard:
    def __init__(self, desk: Desk) -> None:
        self.desk = desk

    @property
    def session_cookie(self) -> str:
        # __Host-: only over HTTPS, for this host and path "/", never set by a subdomain.
        return "__Host-mailbot_session" if self.desk.secure_cookies else "mailbot_session"

    @property
    def login_cookie(self) -> str:
        return "__Host-mailbot_login" if self.desk.secure_cookies else "mailbot_login"

    @property
    def device_cookie(self) -> str:
        return "__Host-mailbot_device" if self.desk.secure_cookies else "mailbot_device"

    def register(self, flask: Flask) -> None:
        flask.before_request(self.check)
        flask.after_request(self.set_login_cookie)
        flask.add_url_rule("/login", "login", self.login, methods=["GET", "POST"])
        flask.add_url_rule("/logout", "logout", self.logout, methods=["POST"])
        flask.context_processor(lambda: {"actor": g.get("actor"), "csrf_token": g.get("csrf")})

    # -- every request ----------------------------------------------------------

    def check(self) -> BaseResponse | None:
        """Let a request through only with a live session and, for a POST, its CSRF token."""
        g.actor = None
        g.csrf = None
        token = request.cookies.get(self.session_cookie, "")
        if token:
            with self.desk.app.db.transaction() as session:
                web_session = find_session(session, token, self.desk.now())
                if web_session is not None:
                    user = web_session.user
                    g.actor = Actor(user.id, user.name, user.role)
                    g.csrf = web_session.csrf_token
                    g.web_session_id = web_session.id
        if request.endpoint in PUBLIC:
            return None
        if g.actor is None:
            wanted = request.full_path if request.method == "GET" else self.unsent_letter()
            return redirect(url_for("login", next=wanted.rstrip("?")), 303)
        if request.method not in ("GET", "HEAD"):
            self.require_token(g.csrf)
            if not g.actor.can_act and request.endpoint not in SELF_SERVICE:
                raise Refused(*VIEWER_REFUSED)
        endpoint = request.endpoint or ""
        if (endpoint == "users" or endpoint.startswith("users_")) and not g.actor.is_admin:
            raise Refused(*ADMIN_ONLY)
        return None

    def unsent_letter(self) -> str:
        """Where to land after signing in from a POST: the form's page; a letter's text kept."""
        reference = (request.view_args or {}).get("reference")
        if not isinstance(reference, str):
            return "/"
        if request.endpoint in ("accept", "withdraw", "resend"):
            return url_for(f"confirm_{request.endpoint}", reference=reference)
        if request.endpoint != "send":
            return url_for("submission", reference=reference)
        with self.desk.app.db.transaction() as session:
            if not keep_unsent(session, reference, request.form, self.desk.now()):
                return url_for("submission", reference=reference)
        return url_for("write", reference=reference)

    def require_token(self, expected: str | None) -> None:
        sent = request.form.get("csrf_token", "")
        if not expected or not sent or not hmac.compare_digest(sent, expected):
            abort(403, "CSRF token missing or wrong")
        origin = request.headers.get("Origin")
        if origin is not None and origin != request.host_url.rstrip("/"):
            abort(403, "form sent from another site")

    # -- signing in and out -----------------------------------------------------

    def login(self) -> BaseResponse | tuple[str, int, dict[str, str]] | str:
        wanted = _local_path(request.values.get("next", "/"))
        if request.method == "GET":
            if g.actor is not None:
                return redirect(wanted, 303)
            return self._form(wanted)
        self.require_token(request.cookies.get(self.login_cookie))
        name = request.form.get("name", "").strip()
        password = request.form.get("password", "")
        remote = request.remote_addr or "?"
        device = request.cookies.get(self.device_cookie, "")
        now = self.desk.now()
        # The try is counted (committed) before the password is checked.
        with self.desk.app.db.transaction() as session:
            trusted = trusted_device(session, device, name) is not None
            refusal = None if trusted else address_refusal(session, remote, now)
            refusal = refusal or (None if trusted else claim_try(session, name, now))
        if refusal is not None:
            return self._refused(wanted, refusal)
        with self.desk.app.db.transaction() as session:
            user = authenticate(session, name, password, remote, now)
            if trusted and user is None:
                distrust(session, device)  # one wrong password: a stranger again
            if not trusted:
                settle_try(session, name, user is not None, now)
            if user is None:
                return self._form(wanted, error="wrong"), 401, {}
            forget_old(session, now)
            device = trust_device(session, user, device, now)
            # A session from before this sign-in is not carried over (no fixation).
            close_session(session, request.cookies.get(self.session_cookie, ""))
            token, _ = open_session(session, user, now)
        return self._signed_in(wanted, token, device)

    def _signed_in(self, wanted: str, token: str, device: str) -> BaseResponse:
        """Off to the page asked for, with the session's cookie and the trusted browser's."""
        response = redirect(wanted, 303)
        response.set_cookie(
            self.session_cookie,
            token,
            max_age=int(SESSION_LIFETIME.total_seconds()),
            path="/",
            secure=self.desk.secure_cookies,
            httponly=True,
            samesite="Lax",
        )
        response.set_cookie(
            self.device_cookie,
            device,
            max_age=int(DEVICE_LIFETIME.total_seconds()),
            path="/",
            secure=self.desk.secure_cookies,
            httponly=True,
            samesite="Strict",
        )
        response.delete_cookie(
            self.login_cookie, path="/", secure=self.desk.secure_cookies, httponly=True
        )
        return response

    def _refused(self, wanted: str, refusal: Refusal) -> tuple[str, int, dict[str, str]]:
        """429 with the reason in both languages; Retry-After unless only an admin can help."""
        headers = {"Retry-After": str(refusal.retry_after)} if refusal.retry_after else {}
        page = self._form(wanted, error=refusal.reason, retry_after=refusal.retry_after)
        return page, 429, headers

    def _form(self, wanted: str, error: str = "", retry_after: int = 0) -> str:
        """The sign-in page, with the token of its cookie (a new one if there is none)."""
        # Kept, not renewed: the browser's own requests (a favicon) must not void an open form.
        token = request.cookies.get(self.login_cookie, "")
        if not _TOKEN.fullmatch(token):
            token = secrets.token_urlsafe(32)
        g.login_cookie = token
        return render_template(
            "login.html", next=wanted, login_token=token, error=error, retry_after=retry_after
        )

    def logout(self) -> BaseResponse:
        with self.desk.app.db.transaction() as session:
            close_session(session, request.cookies.get(self.session_cookie, ""))
        response = redirect(url_for("login"), 303)
        response.delete_cookie(
            self.session_cookie, path="/", secure=self.desk.secure_cookies, httponly=True
        )
        return response

    def set_login_cookie(self, response: Response) -> Response:
        token = g.get("login_cookie")
        if token:
            response.set_cookie(
                self.login_cookie,
                token,
                max_age=LOGIN_COOKIE_AGE,
                path="/",
                secure=self.desk.secure_cookies,
                httponly=True,
                samesite="Strict",
            )
        return response


def _local_path(target: str) -> str:
    """Where to go after signing in: a path on this site, never another site."""
    parts = urlsplit(target)
    if (
        parts.scheme
        or parts.netloc
        or not target.startswith("/")
        or target.startswith("//")
        or "\\" in target
        or any(ord(ch) < 32 for ch in target)
    ):
        return "/"
    return target
