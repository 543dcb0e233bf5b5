"""`mailbot init`, `form-template` and `demo`: a new config and database, the blank form, a try."""

from __future__ import annotations

import logging
from pathlib import Path

import click

from mailbot.cli.common import RULES_HELP, build_app, call_and_settings, one_line_errors


@click.command()
@click.option(
    "--config",
    "config_path",
    type=click.Path(dir_okay=False, path_type=Path),
    help="The settings file: written when missing, else its database is created or upgraded.",
)
@click.option(
    "--data-dir",
    type=click.Path(file_okay=False, path_type=Path),
    help="Where a new config keeps the database, store, outbox and Maildir "
    "(default: /var/lib/mailbot for root, else ~/.local/share/mailbot).",
)
@click.pass_context
@one_line_errors
def init(ctx: click.Context, config_path: Path | None, data_dir: Path | None) -> None:
    """Write a new config (a missing file), or create or upgrade its database."""
    from mailbot.cli.newconfig import default_data_dir, write_config
    from mailbot.config import ConfigError

    ctx.obj = config_path or ctx.obj
    if ctx.obj is not None and not Path(ctx.obj).exists():
        click.echo(write_config(Path(ctx.obj), data_dir or default_data_dir()))
        return
    if data_dir is not None:
        raise ConfigError(f"{ctx.obj} exists: --data-dir only applies to a new config")
    app = build_app(ctx)
    revision = app.db.upgrade()
    click.echo(f"database ready at revision {revision}")


@click.command("form-template")
@click.argument("file", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--rules", metavar="CALL|FILE", help=RULES_HELP)
@click.pass_context
@one_line_errors
def form_template_command(ctx: click.Context, file: Path, rules: str | None) -> None:
    """Write the call's blank bilingual proposal form to FILE.docx (its folder is made)."""
    from mailbot.documents.template import write_form

    call, _settings = call_and_settings(ctx, rules)
    write_form(call, file)
    click.echo(f"form written to {file}")


@click.command("demo")
@click.option(
    "--dir",
    "directory",
    type=click.Path(file_okay=False, path_type=Path),
    default=Path("demo"),
    show_default=True,
    help="Where the demo writes its Maildir, database, store and outbox.",
)
@one_line_errors
def demo_command(directory: Path) -> None:
    """Run the whole pipeline on a sample Maildir of applicant mails; no server needed."""
    from mailbot.demo import run_demo

    root = logging.getLogger()
    if not root.isEnabledFor(logging.DEBUG):  # the intake log below says it all; -v shows more
        root.setLevel(logging.WARNING)
    click.echo(run_demo(directory))
