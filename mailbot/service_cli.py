"""`mailbot status`: running mailbot as a service."""

from __future__ import annotations

import click

from mailbot.cli import _app, one_line_errors
from mailbot.daemon import now
from mailbot.status import current_status, format_status


@click.command()
@click.pass_context
@one_line_errors
def status(ctx: click.Context) -> None:
    """Print whether the daemon runs, its last poll, waiting mail, the outbox and the digest."""
    app = _app(ctx)
    app.db.check_schema()
    digest = app.settings.digest
    with app.db.transaction() as session:
        figures = current_status(session, app.call.id, app.call.tz, digest.at, digest.to, now())
    click.echo(format_status(figures, app.call.tz))


def register(main: click.Group) -> None:
    for command in (status,):
        main.add_command(command)
