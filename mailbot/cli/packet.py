"""`mailbot packet OUT.zip`: the accepted proposals in one zip for the review panel."""

from __future__ import annotations

import os
from pathlib import Path

import click

from mailbot.cli.common import build_app, one_line_errors
from mailbot.errors import MailbotError


@click.command()
@click.argument("out", type=click.Path(dir_okay=False, path_type=Path))
@click.pass_context
@one_line_errors
def packet(ctx: click.Context, out: Path) -> None:
    """Write OUT.zip: a folder per accepted submission with its current Word, PDF and
    supporting files, index.xlsx and SHA256SUMS; each file checked against the store."""
    import tempfile

    from mailbot.ledger.packet import write_packet

    if out.suffix.lower() != ".zip":
        raise MailbotError(f"{out}: the packet is a .zip file")
    app = build_app(ctx)
    app.db.check_schema()
    out.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(dir=out.parent, suffix=".zip")
    try:
        with os.fdopen(handle, "w+b") as target, app.db.transaction() as session:
            submissions = write_packet(session, app.call, app.blobs, target)
            size = target.tell()
        os.replace(temporary, out)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
    click.echo(f"{out}: {submissions} accepted submissions, {size} bytes")
