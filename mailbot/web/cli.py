"""`mailbot web` and `mailbot user add NAME`: the intake desk and its accounts."""

from __future__ import annotations

import ipaddress
import logging

import click

from mailbot.cli import _app, one_line_errors
from mailbot.preflight import check_templates

log = logging.getLogger(__name__)


@click.command()
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option("--port", default=8080, show_default=True, type=click.IntRange(1, 65535))
@click.option(
    "--secure-cookies",
    is_flag=True,
    help="Mark cookies Secure (__Host- prefix): set it when the desk is reached over HTTPS.",
)
@click.pass_context
@one_line_errors
def web(ctx: click.Context, host: str, port: int, secure_cookies: bool) -> None:
    """Serve the secretariat's intake desk (sign in with an account from `mailbot user add`)."""
    from mailbot.web.app import create_app
    from mailbot.web.server import serve

    app = _app(ctx)
    app.db.check_schema()
    check_templates(app.settings)
    if not _loopback(host) and not secure_cookies:
        log.warning(
            "serving on %s without --secure-cookies: passwords and sessions cross the network "
            "in clear unless an HTTPS proxy stands in front",
            host,
        )
    logging.getLogger("waitress").setLevel(logging.INFO)
    click.echo(f"intake desk on http://{host}:{port}/ (Ctrl-C stops it)")
    serve(create_app(app, secure_cookies=secure_cookies), host, port)


def _loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


@click.group()
def user() -> None:
    """Accounts of the intake desk."""


@user.command("add")
@click.argument("name")
@click.pass_context
@one_line_errors
def user_add(ctx: click.Context, name: str) -> None:
    """Create the account NAME; its password is asked twice and stored as an Argon2 hash."""
    from mailbot.web.auth import add_user

    app = _app(ctx)
    app.db.check_schema()
    password = _ask_password("Password")
    with app.db.transaction() as session:
        add_user(session, name, password)
    click.echo(f"account {name} created")


@user.command("passwd")
@click.argument("name")
@click.pass_context
@one_line_errors
def user_passwd(ctx: click.Context, name: str) -> None:
    """Set a new password for NAME; the account's open sessions end."""
    from mailbot.web.auth import set_password

    app = _app(ctx)
    app.db.check_schema()
    password = _ask_password("New password")
    with app.db.transaction() as session:
        set_password(session, name, password)
    click.echo(f"password of {name} changed")


def _ask_password(label: str) -> str:
    # Asked, never an option: a password on the command line stays in the shell's history.
    password: str = click.prompt(label, hide_input=True, confirmation_prompt=True)
    return password


def register(group: click.Group) -> None:
    """Add the desk's commands to the mailbot command."""
    group.add_command(web)
    group.add_command(user)
