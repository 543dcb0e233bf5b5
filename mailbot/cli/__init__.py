"""The mailbot command: the group and its options; each command lives in a module by concern.

Commands: setup (init, form-template, demo), check, log (log, show, export),
run (run, reprocess), service (status, backup, restore), web (web, user ...)
and doctor. Their shared helpers are in common; what they print, in describe
and report. A command imports what it needs when it runs, so the group and
its help load none of the database, the desk or the documents' readers.
"""

from __future__ import annotations

import logging
import sys
from pathlib import Path

import click

from mailbot import __version__
from mailbot.cli.check import check
from mailbot.cli.doctor import doctor
from mailbot.cli.log import export_command, log_command, show_command
from mailbot.cli.packet import packet
from mailbot.cli.run import reprocess_command, run
from mailbot.cli.service import backup_command, restore_command, status
from mailbot.cli.setup import demo_command, form_template_command, init
from mailbot.cli.web import user, web


@click.group()
@click.version_option(__version__, prog_name="mailbot")
@click.option(
    "--config",
    "config_path",
    type=click.Path(dir_okay=False, path_type=Path),
    envvar="MAILBOT_CONFIG",
    help="Settings file (`mailbot init --config PATH` writes one). Also read from "
    "$MAILBOT_CONFIG. Needed by every command that reads or writes the database.",
)
@click.option("-v", "--verbose", is_flag=True, help="Log debugging detail.")
@click.pass_context
def main(ctx: click.Context, config_path: Path | None, verbose: bool) -> None:
    """mailbot: email intake for calls for proposals."""
    ctx.obj = config_path
    logging.basicConfig(
        level=logging.DEBUG if verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    # mail-parser logs every odd part it meets; its findings reach us as defects.
    logging.getLogger("mailparser").setLevel(logging.ERROR)
    for noisy in ("apscheduler", "alembic", "imapclient"):
        logging.getLogger(noisy).setLevel(logging.WARNING)


for command in (
    init,
    run,
    log_command,
    show_command,
    export_command,
    packet,
    reprocess_command,
    form_template_command,
    demo_command,
    check,
    web,
    user,
    status,
    backup_command,
    restore_command,
    doctor,
):
    main.add_command(command)
