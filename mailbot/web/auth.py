"""Accounts, sign-in sessions and the limit on failed sign-ins, kept in the database.

Passwords are stored as Argon2id hashes. A session cookie holds a random
token; the database keeps only its sha256, so a copy of the database signs
no one in. Every try is recorded; the limits on failed tries are in
throttle.py, the roles and the management of accounts in accounts.py.
"""

from __future__ import annotations

import hashlib
import re
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import cache

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from mailbot.errors import MailbotError
from mailbot.store.models import LoginAttempt, User, WebSession
from mailbot.web.roles import ROLES
from mailbot.web.throttle import FAILURE_WINDOW, forget_devices, unlock

SESSION_LIFETIME = timedelta(hours=12)
SESSION_IDLE = timedelta(hours=2)
# How often a session's last_seen_at is written: not on every request.
SEEN_RESOLUTION = timedelta(minutes=1)

MIN_PASSWORD = 10
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._@-]{0,63}")

_hasher = PasswordHasher()  # a constant: its parameters, no state


@cache
def _dummy_hash() -> str:
    """Verified against when the account does not exist, so the answer takes as long."""
    return _hasher.hash(secrets.token_hex(16))


class AccountError(MailbotError):
    """An account that cannot be created or changed as asked."""


@dataclass(frozen=True)
class Actor:
    """Who is acting at the desk, as the audit trail names them."""

    user_id: int
    name: str
    role: str = "editor"

    @property
    def can_act(self) -> bool:
        return self.role in ("admin", "editor")

    @property
    def is_admin(self) -> bool:
        return self.role == "admin"


def hash_password(password: str) -> str:
    if len(password) < MIN_PASSWORD:
        raise AccountError(
            f"密码至少 {MIN_PASSWORD} 个字符 a password needs at least {MIN_PASSWORD} characters"
        )
    return _hasher.hash(password)


def check_role(role: str) -> str:
    if role not in ROLES:
        raise AccountError(f"{role!r} is not a role: use admin, editor or viewer")
    return role


def add_user(session: Session, name: str, password: str, role: str = "editor") -> User:
    """A new account; the name is a login name (letters, digits, . _ @ -)."""
    check_role(role)
    if not _NAME.fullmatch(name):
        raise AccountError(
            f"{name!r} is not a login name: use up to 64 letters, digits, '.', '_', '@' or '-'"
        )
    if session.scalar(select(User).where(User.name == name)) is not None:
        raise AccountError(f"the account {name} exists already: `mailbot user passwd {name}`")
    user = User(name=name, password_hash=hash_password(password), active=True, role=role)
    session.add(user)
    unlock(session, name)  # failures counted against the name before it was an account
    session.flush()
    return user


def find_user(session: Session, name: str) -> User:
    user = session.scalar(select(User).where(User.name == name))
    if user is None:
        raise AccountError(f"no account {name}: `mailbot user add {name}`")
    return user


def set_password(session: Session, name: str, password: str) -> User:
    """A new password for an account; its open sessions end, its browsers are trusted no more."""
    user = find_user(session, name)
    user.password_hash = hash_password(password)
    end_sessions(session, user.id)
    forget_devices(session, user.id)
    return user


def end_sessions(session: Session, user_id: int, keep: int | None = None) -> None:
    """Sign an account out everywhere (but the session `keep`, if given)."""
    query = delete(WebSession).where(WebSession.user_id == user_id)
    if keep is not None:
        query = query.where(WebSession.id != keep)
    session.execute(query)


def password_is(user: User, password: str) -> bool:
    try:
        return bool(_hasher.verify(user.password_hash, password))
    except (VerificationError, InvalidHashError):
        return False


def token_sha256(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def authenticate(
    session: Session, name: str, password: str, remote_addr: str, now: datetime
) -> User | None:
    """The account if the password is right (recording the attempt either way), else None."""
    user = session.scalar(select(User).where(User.name == name, User.active.is_(True)))
    try:
        _hasher.verify(user.password_hash if user else _dummy_hash(), password)
        good = user is not None
    except (VerificationError, InvalidHashError):
        good = False
    session.add(LoginAttempt(name=name[:64], remote_addr=remote_addr[:64], at=now, succeeded=good))
    if not good or user is None:
        return None
    if _hasher.check_needs_rehash(user.password_hash):
        user.password_hash = _hasher.hash(password)
    user.last_login_at = now
    # Old attempts are only needed for the window: keep the table small.
    session.execute(delete(LoginAttempt).where(LoginAttempt.at < now - 4 * FAILURE_WINDOW))
    return user


def open_session(session: Session, user: User, now: datetime) -> tuple[str, WebSession]:
    """A new session for a user who just signed in; returns the cookie's token."""
    token = secrets.token_urlsafe(32)
    web_session = WebSession(
        token_sha256=token_sha256(token),
        user_id=user.id,
        csrf_token=secrets.token_urlsafe(32),
        created_at=now,
        last_seen_at=now,
        expires_at=now + SESSION_LIFETIME,
    )
    session.add(web_session)
    session.execute(delete(WebSession).where(WebSession.expires_at < now))
    session.flush()
    return token, web_session


def find_session(session: Session, token: str, now: datetime) -> WebSession | None:
    """The live session for a cookie's token, touched; None if unknown, expired or idle."""
    if not token or len(token) > 128:
        return None
    web_session = session.scalar(
        select(WebSession).where(WebSession.token_sha256 == token_sha256(token))
    )
    if web_session is None:
        return None
    if (
        web_session.expires_at <= now
        or web_session.last_seen_at + SESSION_IDLE <= now
        or not web_session.user.active
    ):
        session.delete(web_session)
        return None
    if now - web_session.last_seen_at >= SEEN_RESOLUTION:
        web_session.last_seen_at = now
    return web_session


def close_session(session: Session, token: str) -> None:
    session.execute(delete(WebSession).where(WebSession.token_sha256 == token_sha256(token)))
