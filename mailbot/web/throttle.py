"""Limits on guessing passwords that slow an attacker without locking the desk.

Three rules, each answered before the password is looked at:

- per name: after FREE_TRIES failures in a row, each further try must wait
  twice as long as the one before (2 s, 4 s, 8 s ...); a try before its time
  is refused (429, Retry-After), nobody sleeps. After LOCK_AFTER failures
  in a row the name is locked until an admin unlocks it (the users page or
  `mailbot user unlock`). A sign-in that succeeds clears the count. Names
  that are no account count the same, so the answers tell nothing.
- per address: MAX_FAILURES_PER_ADDRESS failures from one client address
  within FAILURE_WINDOW refuse further tries from that address for a while;
  they count against no name, so they lock nobody out.
- trusted browsers: a browser that signed in as an account keeps a cookie;
  its tries for that account pass both limits above, so a colleague at the
  same address as the attacker, or the owner of a name being guessed, still
  signs in. A wrong password from a trusted browser revokes its trust.
"""

from __future__ import annotations

import hashlib
import math
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import delete, func, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from mailbot.store.models import LoginAttempt, LoginThrottle, TrustedDevice, User

FREE_TRIES = 3
FIRST_DELAY = timedelta(seconds=2)
MAX_DELAY = timedelta(minutes=15)
LOCK_AFTER = 10

FAILURE_WINDOW = timedelta(minutes=15)
MAX_FAILURES_PER_ADDRESS = 20

DEVICE_LIFETIME = timedelta(days=180)
# Rows of names that are no account, and of unlocked names, are forgotten after this.
THROTTLE_MEMORY = timedelta(days=1)


@dataclass(frozen=True)
class Refusal:
    """Why a try is refused before its password is checked, and when to come back."""

    reason: str  # "wait" (the name's delay), "locked" (until an admin unlocks), "address"
    retry_after: int  # seconds; 0 for a lock, which no waiting lifts


def delay_after(failures: int) -> timedelta:
    """How long a name waits after this many failures in a row."""
    if failures < FREE_TRIES:
        return timedelta()
    delay: timedelta = FIRST_DELAY * (2 ** min(failures - FREE_TRIES, 20))
    return min(delay, MAX_DELAY)


def _seconds(span: timedelta) -> int:
    return max(1, math.ceil(span.total_seconds()))


def address_refusal(session: Session, remote_addr: str, now: datetime) -> Refusal | None:
    """A refusal when this address failed too often within the window."""
    failed = session.scalar(
        select(func.count(LoginAttempt.id)).where(
            LoginAttempt.succeeded.is_(False),
            LoginAttempt.at > now - FAILURE_WINDOW,
            LoginAttempt.remote_addr == remote_addr[:64],
        )
    )
    if (failed or 0) < MAX_FAILURES_PER_ADDRESS:
        return None
    oldest = session.scalar(
        select(LoginAttempt.at)
        .where(
            LoginAttempt.succeeded.is_(False),
            LoginAttempt.at > now - FAILURE_WINDOW,
            LoginAttempt.remote_addr == remote_addr[:64],
        )
        .order_by(LoginAttempt.at.desc())
        .offset(MAX_FAILURES_PER_ADDRESS - 1)
        .limit(1)
    )
    free_at = (oldest or now) + FAILURE_WINDOW
    return Refusal("address", _seconds(free_at - now))


def _ensure_row(session: Session, name: str, now: datetime) -> None:
    values = {"name": name, "failures": 0, "last_try_at": now, "next_try_at": now}
    dialect = session.get_bind().dialect.name
    if dialect == "postgresql":
        session.execute(postgresql.insert(LoginThrottle).values(values).on_conflict_do_nothing())
    elif dialect == "sqlite":
        session.execute(sqlite.insert(LoginThrottle).values(values).on_conflict_do_nothing())
    elif session.scalar(select(LoginThrottle.id).where(LoginThrottle.name == name)) is None:
        session.add(LoginThrottle(**values))
        session.flush()


def claim_try(session: Session, name: str, now: datetime) -> Refusal | None:
    """Count a try at this name as failed before checking it, or refuse it (None: go on).

    The count and the check are one conditional UPDATE, so tries sent at the
    same moment are refused past the first: none waits for another's answer.
    """
    name = name[:64]
    _ensure_row(session, name, now)
    claimed = session.execute(
        update(LoginThrottle)
        .where(
            LoginThrottle.name == name,
            LoginThrottle.locked_at.is_(None),
            LoginThrottle.next_try_at <= now,
        )
        .values(failures=LoginThrottle.failures + 1, last_try_at=now, next_try_at=now + MAX_DELAY)
        .execution_options(synchronize_session=False)
    )
    row = session.scalar(
        select(LoginThrottle)
        .where(LoginThrottle.name == name)
        .execution_options(populate_existing=True)
    )
    assert row is not None  # made just above
    if claimed.rowcount == 0:  # type: ignore[attr-defined]
        if row.locked_at is not None:
            return Refusal("locked", 0)
        return Refusal("wait", _seconds(row.next_try_at - now))
    row.next_try_at = now + delay_after(row.failures)
    return None


def settle_try(session: Session, name: str, succeeded: bool, now: datetime) -> None:
    """After the password was checked: clear the count on success, lock after too many."""
    name = name[:64]
    if succeeded:
        session.execute(delete(LoginThrottle).where(LoginThrottle.name == name))
        return
    row = session.scalar(select(LoginThrottle).where(LoginThrottle.name == name))
    if row is not None and row.failures >= LOCK_AFTER and row.locked_at is None:
        row.locked_at = now


def forget_old(session: Session, now: datetime) -> None:
    """Forget unlocked names quiet for a day, locks of names that are no account, old browsers."""
    quiet = LoginThrottle.last_try_at < now - THROTTLE_MEMORY
    accounts = select(User.name)
    session.execute(
        delete(LoginThrottle)
        .where(quiet, (LoginThrottle.locked_at.is_(None)) | LoginThrottle.name.not_in(accounts))
        .execution_options(synchronize_session=False)
    )
    session.execute(delete(TrustedDevice).where(TrustedDevice.last_used_at < now - DEVICE_LIFETIME))


def locks(session: Session) -> dict[str, LoginThrottle]:
    """Every name with failures in a row, by name (for the users page and `mailbot user list`)."""
    return {row.name: row for row in session.scalars(select(LoginThrottle))}


def unlock(session: Session, name: str) -> bool:
    """Lift a name's lock and its count of failures; False if there was nothing to lift."""
    result = session.execute(delete(LoginThrottle).where(LoginThrottle.name == name[:64]))
    return bool(result.rowcount)  # type: ignore[attr-defined]


# --------------------------------------------------------------------------- trusted browsers


def _sha256(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def trusted_device(session: Session, token: str, name: str) -> TrustedDevice | None:
    """The trusted browser behind a cookie, if it signed in as this name before."""
    if not token or len(token) > 128:
        return None
    return session.scalar(
        select(TrustedDevice)
        .join(User, User.id == TrustedDevice.user_id)
        .where(TrustedDevice.token_sha256 == _sha256(token), User.name == name[:64])
    )


def trust_device(session: Session, user: User, token: str, now: datetime) -> str:
    """The cookie's token for a browser that just signed in as user (the same if it had one)."""
    device = trusted_device(session, token, user.name)
    if device is None:
        token = secrets.token_urlsafe(32)
        device = TrustedDevice(token_sha256=_sha256(token), user_id=user.id, created_at=now)
        session.add(device)
    device.last_used_at = now
    return token


def distrust(session: Session, token: str) -> None:
    """This browser is trusted no more (a wrong password was sent from it)."""
    session.execute(delete(TrustedDevice).where(TrustedDevice.token_sha256 == _sha256(token)))


def forget_devices(session: Session, user_id: int) -> None:
    """No browser of this account is trusted any more (disabled, or its password reset)."""
    session.execute(delete(TrustedDevice).where(TrustedDevice.user_id == user_id))
