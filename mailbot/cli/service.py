"""`mailbot status`, `backup DIR` and `restore DIR`: running mailbot as a service."""

from __future__ import annotations

from pathlib import Path

import click

from mailbot.cli.common import build_app, one_line_errors


@click.command()
@click.pass_context
@one_line_errors
def status(ctx: click.Context) -> None:
    """Print whether the daemon runs, its last poll, waiting mail, the outbox and the digest."""
    from mailbot.service.daemon import now
    from mailbot.service.status import current_status, format_status

    app = build_app(ctx)
    try:
        app.db.check_schema()
        digest = app.settings.digest
        with app.db.transaction() as session:
            figures = current_status(session, app.call.id, app.call.tz, digest.at, digest.to, now())
    finally:
        app.close()
    click.echo(format_status(figures, app.call.tz))


@click.command("backup")
@click.argument("directory", type=click.Path(file_okay=False, path_type=Path))
@click.pass_context
@one_line_errors
def backup_command(ctx: click.Context, directory: Path) -> None:
    """Copy the database (SQLite) and the store's new blobs into DIRECTORY, while mailbot runs."""
    from mailbot.service.backup import backup, sqlite_path

    app = build_app(ctx)
    try:
        app.db.check_schema()
        report = backup(app.db.url, app.settings.path(app.settings.store_dir), directory)
    finally:
        app.close()
    if sqlite_path(app.db.url) is None:
        click.echo(
            "PostgreSQL: the database is not in this backup; run pg_dump before it "
            "(see the README's 'Service, status, backup')",
            err=True,
        )
    click.echo(report.summary())


@click.command("restore")
@click.argument("directory", type=click.Path(file_okay=False, exists=True, path_type=Path))
@click.option(
    "--force",
    is_flag=True,
    help="Overwrite a database that has tables and add to a store that has blobs.",
)
@click.pass_context
@one_line_errors
def restore_command(ctx: click.Context, directory: Path, force: bool) -> None:
    """Put a backup made by `mailbot backup` into the config's database and store.

    Stop the daemon and the desk first.
    """
    from mailbot.service.backup import restore

    app = build_app(ctx)
    url = app.db.url
    store = app.settings.path(app.settings.store_dir)
    app.close()
    report = restore(directory, url, store, force=force)
    click.echo(report.summary())
    click.echo("run `mailbot init` if this mailbot is newer than the backup, then start it")
