"""The accounts pages: /users for an admin (list, add, disable, reset, unlock), /account for all.

The guard lets only admins reach the endpoints named users*, and lets a
viewer post only to /account (their own password) and /logout.
"""

from __future__ import annotations

from collections.abc import Callable

from flask import Flask, abort, g, redirect, render_template, request, url_for
from sqlalchemy import select
from werkzeug.wrappers.response import Response as BaseResponse

from mailbot.store.models import User
from mailbot.web import accounts
from mailbot.web.accounts import account_events
from mailbot.web.auth import AccountError
from mailbot.web.desk import Desk
from mailbot.web.roles import ROLES
from mailbot.web.throttle import LOCK_AFTER

# ?done= notices after a change (each form redirects after its POST).
DONE: dict[str, tuple[str, str]] = {
    "added": ("账户已创建。", "Account created."),
    "disabled": ("账户已停用，其登录已结束。", "Account disabled; its sessions ended."),
    "enabled": ("账户已启用。", "Account enabled."),
    "unlocked": ("账户已解锁。", "Account unlocked."),
    "not_locked": ("该账户未被锁定。", "The account was not locked."),
    "reset": ("密码已重设，该账户的登录已结束。", "Password reset; the account's sessions ended."),
    "role": ("角色已更改。", "Role changed."),
    "password": ("您的密码已更改。", "Your password is changed."),
}

ROLE_LABELS: dict[str, tuple[str, str]] = {
    "admin": ("管理员", "admin"),
    "editor": ("编辑", "editor"),
    "viewer": ("只读", "viewer"),
}
STATE_LABELS: dict[str, tuple[str, str]] = {
    "active": ("正常", "active"),
    "locked": ("已锁定", "locked"),
    "disabled": ("已停用", "disabled"),
}

ACCOUNT_ACTIONS: dict[str, tuple[str, str]] = {
    accounts.ADD: ("创建账户", "Account added"),
    accounts.DISABLE: ("停用账户", "Account disabled"),
    accounts.ENABLE: ("启用账户", "Account enabled"),
    accounts.ROLE: ("更改角色", "Role changed"),
    accounts.RESET: ("重设密码", "Password reset"),
    accounts.UNLOCK: ("解锁", "Unlocked"),
    accounts.OWN_PASSWORD: ("更改自己的密码", "Changed own password"),
}

# An act on one account, by its name: returns the notice to show.
Act = Callable[[str], str]


class Users:
    def __init__(self, desk: Desk) -> None:
        self.desk = desk
        self.app = desk.app

    def register(self, flask: Flask) -> None:
        flask.add_url_rule("/users", "users", self.listing, methods=["GET"])
        flask.add_url_rule("/users", "users_add", self.add, methods=["POST"])
        acts: dict[str, Act] = {
            "disable": self.disable,
            "enable": self.enable,
            "unlock": self.unlock,
            "password": self.reset,
            "role": self.role,
        }
        for name, act in acts.items():
            flask.add_url_rule(
                f"/users/<name>/{name}", f"users_{name}", self._form(act), methods=["POST"]
            )
        flask.add_url_rule("/account", "account", self.account, methods=["GET", "POST"])
        flask.jinja_env.globals.update(
            role_labels=ROLE_LABELS, state_labels=STATE_LABELS, account_actions=ACCOUNT_ACTIONS
        )

    # -- the admin's page ---------------------------------------------------------

    def listing(
        self, error: str = "", status: int = 200, form: dict[str, str] | None = None
    ) -> tuple[str, int]:
        with self.app.db.transaction() as session:
            lines = accounts.accounts(session)
            events = account_events(session)
            return (
                render_template(
                    "users.html",
                    accounts=lines,
                    events=events,
                    roles=ROLES,
                    lock_after=LOCK_AFTER,
                    notice=DONE.get(request.args.get("done", "")),
                    error=error,
                    form=form or {},
                    page="users",
                ),
                status,
            )

    def add(self) -> BaseResponse | tuple[str, int]:
        name = request.form.get("name", "").strip()
        role = request.form.get("role", "")
        password = request.form.get("password", "")
        try:
            if password != request.form.get("again", ""):
                raise AccountError("两次输入的密码不一致 The two passwords differ")
            with self.app.db.transaction() as session:
                accounts.create(session, g.actor, name, password, role, self.desk.now())
        except AccountError as exc:
            return self.listing(error=str(exc), status=400, form={"name": name, "role": role})
        return redirect(url_for("users", done="added"), 303)

    def _form(self, act: Act) -> Callable[[str], BaseResponse | tuple[str, int]]:
        def view(name: str) -> BaseResponse | tuple[str, int]:
            try:
                notice = act(name)
            except AccountError as exc:
                return self.listing(error=str(exc), status=400)
            return redirect(url_for("users", done=notice, _anchor=f"user-{name}"), 303)

        return view

    def _exists(self, name: str) -> None:
        with self.app.db.transaction() as session:
            if session.scalar(select(User.id).where(User.name == name)) is None:
                abort(404)

    def disable(self, name: str) -> str:
        self._exists(name)
        if request.form.get("confirm") != "yes":
            raise AccountError("请勾选确认 Tick the box to confirm")
        with self.app.db.transaction() as session:
            accounts.set_active(session, g.actor, name, False, self.desk.now())
        return "disabled"

    def enable(self, name: str) -> str:
        self._exists(name)
        with self.app.db.transaction() as session:
            accounts.set_active(session, g.actor, name, True, self.desk.now())
        return "enabled"

    def unlock(self, name: str) -> str:
        self._exists(name)
        with self.app.db.transaction() as session:
            lifted = accounts.unlock_account(session, g.actor, name, self.desk.now())
        return "unlocked" if lifted else "not_locked"

    def reset(self, name: str) -> str:
        self._exists(name)
        password = request.form.get("password", "")
        if password != request.form.get("again", ""):
            raise AccountError("两次输入的密码不一致 The two passwords differ")
        with self.app.db.transaction() as session:
            accounts.reset_password(session, g.actor, name, password, self.desk.now())
        return "reset"

    def role(self, name: str) -> str:
        self._exists(name)
        with self.app.db.transaction() as session:
            accounts.set_role(session, g.actor, name, request.form.get("role", ""), self.desk.now())
        return "role"

    # -- everyone's own password ------------------------------------------------

    def account(self) -> BaseResponse | tuple[str, int]:
        error = ""
        if request.method == "POST":
            try:
                with self.app.db.transaction() as session:
                    change = accounts.PasswordChange(
                        current=request.form.get("current", ""),
                        new=request.form.get("password", ""),
                        again=request.form.get("again", ""),
                    )
                    accounts.change_own_password(
                        session,
                        g.actor,
                        change,
                        self.desk.now(),
                        keep_session=g.get("web_session_id"),
                    )
            except AccountError as exc:
                error = str(exc)
            else:
                return redirect(url_for("account", done="password"), 303)
        page = render_template(
            "account.html",
            notice=DONE.get(request.args.get("done", "")),
            error=error,
            page="account",
        )
        return page, 400 if error else 200
