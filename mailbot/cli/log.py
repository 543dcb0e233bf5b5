"""`mailbot log`, `show REF` and `export FILE`: the secretariat's view from a terminal."""

from __future__ import annotations

from pathlib import Path

import click

from mailbot.cli.common import build_app, one_line_errors


@click.command("log")
@click.option(
    "--search",
    "-q",
    default="",
    help="Only the submissions a search finds, as on the desk: reference, institution "
    "(any of its names), PI, sender, title.",
)
@click.pass_context
@one_line_errors
def log_command(ctx: click.Context, search: str) -> None:
    """Print the intake log: one row per submission, then mail tied to none."""
    from mailbot.cli.report import log_text

    app = build_app(ctx)
    app.db.check_schema()
    with app.db.transaction() as session:
        click.echo(log_text(session, app.call, search))


@click.command("show")
@click.argument("reference")
@click.pass_context
@one_line_errors
def show_command(ctx: click.Context, reference: str) -> None:
    """Print one submission with all its versions, mails and replies."""
    from mailbot.cli.report import show

    app = build_app(ctx)
    app.db.check_schema()
    with app.db.transaction() as session:
        click.echo(show(session, app.call, reference))


@click.command("export")
@click.argument("file", type=click.Path(dir_okay=False, path_type=Path))
@click.pass_context
@one_line_errors
def export_command(ctx: click.Context, file: Path) -> None:
    """Write the intake log to FILE.xlsx or FILE.csv, one row per submission."""
    from mailbot.cli.report import export
    from mailbot.ledger.counting import count

    app = build_app(ctx)
    app.db.check_schema()
    with app.db.transaction() as session:
        written = export(session, app.call, file)
    click.echo(f"{count(written, 'submission')} written to {file}")
