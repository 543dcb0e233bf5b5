"""`mailbot web` and `mailbot user ...`: the intake desk and its accounts."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

import click

from mailbot.cli.common import build_app, one_line_errors
from mailbot.net.hosts import is_loopback
from mailbot.web.roles import ROLES

if TYPE_CHECKING:
    from mailbot.config import WebSettings

log = logging.getLogger(__name__)


@click.command()
@click.option("--host", default=None, help="Address to listen on.  [default: [web] host]")
@click.option(
    "--port",
    default=None,
    type=click.IntRange(1, 65535),
    help="Port to listen on.  [default: [web] port]",
)
@click.option(
    "--trusted-proxies",
    default=None,
    type=click.IntRange(0),
    metavar="N",
    help="How many HTTPS reverse proxies stand in front; their X-Forwarded-Proto, -For and "
    "-Host headers are believed.  [default: [web] trusted_proxies]",
)
@click.option(
    "--secure-cookies",
    is_flag=True,
    help="Mark cookies Secure (__Host- prefix): set it when the desk is reached over HTTPS.",
)
@click.pass_context
@one_line_errors
def web(
    ctx: click.Context,
    host: str | None,
    port: int | None,
    trusted_proxies: int | None,
    secure_cookies: bool,
) -> None:
    """Serve the secretariat's intake desk (sign in with an account from `mailbot user add`)."""
    from mailbot.service.preflight import check_templates
    from mailbot.web.app import create_app
    from mailbot.web.server import serve

    app = build_app(ctx)
    app.db.check_schema()
    check_templates(app.settings)
    settings = app.settings.web.model_copy(
        update={
            "host": host if host is not None else app.settings.web.host,
            "port": port if port is not None else app.settings.web.port,
            "trusted_proxies": (
                trusted_proxies if trusted_proxies is not None else app.settings.web.trusted_proxies
            ),
            "secure_cookies": secure_cookies or app.settings.web.secure_cookies,
        }
    )
    _warn(settings)
    logging.getLogger("waitress").setLevel(logging.INFO)
    click.echo(f"intake desk on http://{settings.host}:{settings.port}/ (Ctrl-C stops it)")
    serve(create_app(app, web=settings), settings.host, settings.port, settings.trusted_proxies)


def _warn(settings: WebSettings) -> None:
    """A warning line for each setting that leaves sessions or sign-ins exposed."""
    if settings.trusted_proxies and not settings.secure_cookies:
        log.warning(
            "trusted_proxies = %d but secure_cookies is off: the session cookie is not marked "
            "Secure and could leave the browser over plain http; set secure_cookies = true "
            "(or --secure-cookies) when the proxy serves https",
            settings.trusted_proxies,
        )
    elif not is_loopback(settings.host) and not settings.secure_cookies:
        log.warning(
            "serving on %s without --secure-cookies: passwords and sessions cross the network "
            "in clear unless an HTTPS proxy stands in front",
            settings.host,
        )
    if settings.trusted_proxies and not settings.allowed_hosts:
        log.warning(
            "trusted_proxies = %d but allowed_hosts is empty: any Host header is answered; "
            "name the desk's host names in [web] allowed_hosts",
            settings.trusted_proxies,
        )


@click.group()
def user() -> None:
    """Accounts of the intake desk."""


@user.command("add")
@click.argument("name")
@click.option(
    "--role",
    type=click.Choice(ROLES),
    help="admin (also manages accounts), editor (reads and acts) or viewer (reads only). "
    "Default: admin for the first account, editor after.",
)
@click.pass_context
@one_line_errors
def user_add(ctx: click.Context, name: str, role: str | None) -> None:
    """Create the account NAME; its password is asked twice and stored as an Argon2 hash."""
    from mailbot.store.models import utcnow
    from mailbot.web.accounts import COMMAND_LINE, create, first_role

    app = build_app(ctx)
    app.db.check_schema()
    password = _ask_password("Password")
    with app.db.transaction() as session:
        role = role or first_role(session)
        create(session, COMMAND_LINE, name, password, role, utcnow())
    click.echo(f"account {name} created ({role})")


@user.command("list")
@click.pass_context
@one_line_errors
def user_list(ctx: click.Context) -> None:
    """Every account: role, state (active, locked, disabled), failed sign-ins, last sign-in."""
    from mailbot.web.accounts import accounts

    app = build_app(ctx)
    app.db.check_schema()
    with app.db.transaction() as session:
        lines = accounts(session)
    if not lines:
        click.echo("no accounts yet: `mailbot user add NAME`")
        return
    width = max(len(line.name) for line in lines)
    for line in lines:
        last = (
            app.call.local(line.last_login_at).strftime("%Y-%m-%d %H:%M")
            if line.last_login_at
            else "never"
        )
        click.echo(
            f"{line.name:<{width}}  {line.role:<6}  {line.state:<8}  "
            f"failed {line.failures:>2}  last sign-in {last}"
        )


@user.command("disable")
@click.argument("name")
@click.pass_context
@one_line_errors
def user_disable(ctx: click.Context, name: str) -> None:
    """Disable NAME (a colleague who left): signed out now, no sign-in until enabled."""
    from mailbot.store.models import utcnow
    from mailbot.web.accounts import COMMAND_LINE, set_active

    app = build_app(ctx)
    app.db.check_schema()
    with app.db.transaction() as session:
        set_active(session, COMMAND_LINE, name, False, utcnow())
    click.echo(f"account {name} disabled")


@user.command("enable")
@click.argument("name")
@click.pass_context
@one_line_errors
def user_enable(ctx: click.Context, name: str) -> None:
    """Let a disabled account NAME sign in again."""
    from mailbot.store.models import utcnow
    from mailbot.web.accounts import COMMAND_LINE, set_active

    app = build_app(ctx)
    app.db.check_schema()
    with app.db.transaction() as session:
        set_active(session, COMMAND_LINE, name, True, utcnow())
    click.echo(f"account {name} enabled")


@user.command("unlock")
@click.argument("name")
@click.pass_context
@one_line_errors
def user_unlock(ctx: click.Context, name: str) -> None:
    """Lift the lock that failed sign-ins put on NAME, and forget its failed tries."""
    from mailbot.store.models import utcnow
    from mailbot.web.accounts import COMMAND_LINE, unlock_account

    app = build_app(ctx)
    app.db.check_schema()
    with app.db.transaction() as session:
        lifted = unlock_account(session, COMMAND_LINE, name, utcnow())
    click.echo(f"account {name} unlocked" if lifted else f"account {name} was not locked")


@user.command("passwd")
@click.argument("name")
@click.pass_context
@one_line_errors
def user_passwd(ctx: click.Context, name: str) -> None:
    """Set a new password for NAME; its open sessions end and a lock on it is lifted."""
    from mailbot.store.models import utcnow
    from mailbot.web.accounts import COMMAND_LINE, reset_password

    app = build_app(ctx)
    app.db.check_schema()
    password = _ask_password("New password")
    with app.db.transaction() as session:
        reset_password(session, COMMAND_LINE, name, password, utcnow())
    click.echo(f"password of {name} changed")


def _ask_password(label: str) -> str:
    # Asked, never an option: a password on the command line stays in the shell's history.
    password: str = click.prompt(label, hide_input=True, confirmation_prompt=True)
    return password
