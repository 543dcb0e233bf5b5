"""Managing the desk's accounts: list, add, disable, enable, roles, passwords, unlock.

Used by the users page (an admin's) and by `mailbot user`. Each change is an
AuditEvent naming the account in its detail, so who did what to whom stays
on record. The desk is never left without an active admin.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from mailbot.store.models import AuditEvent, User
from mailbot.web.auth import (
    AccountError,
    Actor,
    add_user,
    check_role,
    end_sessions,
    find_user,
    hash_password,
    password_is,
    set_password,
)
from mailbot.web.throttle import forget_devices, locks, unlock

# AuditEvent.action values of the accounts.
ADD = "account_add"
DISABLE = "account_disable"
ENABLE = "account_enable"
ROLE = "account_role"
RESET = "account_password"
UNLOCK = "account_unlock"
OWN_PASSWORD = "own_password"

COMMAND_LINE = Actor(0, "command line", "admin")  # who acts through `mailbot user`


@dataclass(frozen=True)
class Account:
    """One line of the users page and of `mailbot user list`."""

    name: str
    role: str
    active: bool
    created_at: datetime
    last_login_at: datetime | None
    failures: int  # failed sign-ins in a row
    locked_at: datetime | None

    @property
    def state(self) -> str:
        if not self.active:
            return "disabled"
        return "locked" if self.locked_at is not None else "active"


def accounts(session: Session) -> list[Account]:
    """Every account, by name, with its failed sign-ins and lock."""
    throttled = locks(session)
    lines = []
    for user in session.scalars(select(User).order_by(User.name)):
        row = throttled.get(user.name)
        lines.append(
            Account(
                name=user.name,
                role=user.role,
                active=user.active,
                created_at=user.created_at,
                last_login_at=user.last_login_at,
                failures=row.failures if row else 0,
                locked_at=row.locked_at if row else None,
            )
        )
    return lines


def _record(
    session: Session, actor: Actor, action: str, name: str, now: datetime, **more: str
) -> None:
    session.add(
        AuditEvent(
            at=now,
            actor=actor.name,
            user_id=actor.user_id or None,
            action=action,
            reason="",
            detail={"account": name, **more},
        )
    )


def _active_admins(session: Session) -> int:
    query = select(func.count(User.id)).where(User.active.is_(True), User.role == "admin")
    return session.scalar(query) or 0


def _keep_an_admin(session: Session, user: User) -> None:
    if user.active and user.role == "admin" and _active_admins(session) <= 1:
        raise AccountError(
            f"{user.name} 是唯一的管理员 is the only active admin: make another admin first"
        )


def first_role(session: Session) -> str:
    """The role `mailbot user add` gives when none is asked: admin while there is no admin."""
    return "editor" if _active_admins(session) else "admin"


def create(
    session: Session, actor: Actor, name: str, password: str, role: str, now: datetime
) -> User:
    user = add_user(session, name, password, role)
    _record(session, actor, ADD, name, now, role=role)
    return user


def set_active(session: Session, actor: Actor, name: str, active: bool, now: datetime) -> User:
    """Disable (signed out everywhere, no sign-in) or enable an account; never the last admin."""
    user = find_user(session, name)
    if user.active == active:
        state = "启用 enabled" if active else "停用 disabled"
        raise AccountError(f"{name} 已是{state} already")
    if not active:
        if user.id == actor.user_id:
            raise AccountError("不能停用自己的账户 You cannot disable your own account")
        _keep_an_admin(session, user)
        end_sessions(session, user.id)
        forget_devices(session, user.id)
    user.active = active
    _record(session, actor, ENABLE if active else DISABLE, name, now)
    return user


def set_role(session: Session, actor: Actor, name: str, role: str, now: datetime) -> User:
    user = find_user(session, name)
    check_role(role)
    if role != "admin":
        _keep_an_admin(session, user)
    if user.role != role:
        _record(session, actor, ROLE, name, now, role=role, previous=user.role)
        user.role = role
    return user


def reset_password(session: Session, actor: Actor, name: str, password: str, now: datetime) -> User:
    """A new password set for someone (they are signed out everywhere and unlocked)."""
    user = set_password(session, name, password)
    unlock(session, name)
    _record(session, actor, RESET, name, now)
    return user


def unlock_account(session: Session, actor: Actor, name: str, now: datetime) -> bool:
    """Lift the lock and the failed tries of an account; False if it had none."""
    find_user(session, name)
    lifted = unlock(session, name)
    if lifted:
        _record(session, actor, UNLOCK, name, now)
    return lifted


@dataclass(frozen=True)
class PasswordChange:
    """What the account page's form gives: the current password and the new one, twice."""

    current: str = field(repr=False)
    new: str = field(repr=False)
    again: str = field(repr=False)


def change_own_password(
    session: Session,
    actor: Actor,
    change: PasswordChange,
    now: datetime,
    keep_session: int | None = None,
) -> None:
    """A person's new password, given their current one; their other sessions end."""
    user = session.get(User, actor.user_id)
    if user is None or not password_is(user, change.current):
        raise AccountError("当前密码不对 The current password is wrong")
    if change.new != change.again:
        raise AccountError("两次输入的新密码不一致 The two new passwords differ")
    if change.new == change.current:
        raise AccountError("新密码与当前密码相同 The new password is the current one")
    user.password_hash = hash_password(change.new)
    end_sessions(session, user.id, keep=keep_session)
    _record(session, actor, OWN_PASSWORD, user.name, now)


def account_events(session: Session, limit: int = 50) -> Sequence[AuditEvent]:
    """The latest changes to accounts, newest first."""
    actions = (ADD, DISABLE, ENABLE, ROLE, RESET, UNLOCK, OWN_PASSWORD)
    return session.scalars(
        select(AuditEvent)
        .where(AuditEvent.action.in_(actions))
        .order_by(AuditEvent.id.desc())
        .limit(limit)
    ).all()
