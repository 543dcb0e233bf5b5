"""`mailbot check FILE`: the daemon's judge on one mail, printed; nothing stored or sent."""

from __future__ import annotations

import json
import sys
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING

import click

from mailbot.cli.common import RULES_HELP, IsoTime, call_and_settings, one_line_errors
from mailbot.cli.describe import describe
from mailbot.errors import MailbotError
from mailbot.judge.policy import IntakePolicy

if TYPE_CHECKING:
    from mailbot.config import Settings


@click.command()
@click.argument("file", type=click.Path(dir_okay=False, allow_dash=True, path_type=Path))
@click.option("--json", "as_json", is_flag=True, help="Print the verdict as one JSON object.")
@click.option(
    "--received-at",
    type=IsoTime(),
    help="When the mailbox received the mail (default: its topmost Received header, "
    "else its Date). A time without offset is read in the call's time zone.",
)
@click.option("--rules", metavar="CALL|FILE", help=RULES_HELP)
@click.pass_context
@one_line_errors
def check(
    ctx: click.Context, file: Path, as_json: bool, received_at: datetime | None, rules: str | None
) -> None:
    """Judge one mail (an .eml file, or - for standard input); store and send nothing."""
    from mailbot.judge.bounded import parse_and_judge

    call, settings = call_and_settings(ctx, rules)
    raw = read_mail(file)
    # The daemon's own judge under the config's [intake] policy (deny list, own
    # addresses, authserv_id, limits); in this process, not a judging process.
    _message, verdict = parse_and_judge(raw, call, received_at, policy_of(settings))
    if as_json:
        click.echo(json.dumps(verdict.as_json(), ensure_ascii=False, indent=2))
    else:
        click.echo(describe(verdict, call))


def policy_of(settings: Settings | None) -> IntakePolicy:
    """The config's [intake] policy, or the defaults when no config is given."""
    if settings is None:
        return IntakePolicy()
    from mailbot.app import intake_policy

    return intake_policy(settings)


def read_mail(file: Path) -> bytes:
    """The mail's bytes from FILE, or from standard input for -."""
    try:
        if str(file) == "-":
            return sys.stdin.buffer.read()
        return file.read_bytes()
    except OSError as exc:
        raise MailbotError(f"cannot read {file}: {exc.strerror or exc}") from None
