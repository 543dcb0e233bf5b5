"""`mailbot web` and `mailbot user add NAME`: the intake desk and its accounts."""

from __future__ import annotations

import ipaddress
import logging

import click

from mailbot.cli import _app, one_line_errors
from mailbot.config import WebSettings
from mailbot.preflight import check_templates

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
    from mailbot.web.app import create_app
    from mailbot.web.server import serve

    app = _app(ctx)
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
    elif not _loopback(settings.host) and not settings.secure_cookies:
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
