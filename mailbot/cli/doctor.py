"""The `mailbot doctor` command: run the checks, print one line each, exit 1 on a failure."""

from __future__ import annotations

import sys

import click


@click.command("doctor")
@click.option(
    "--send-test",
    metavar="ADDR",
    help="Also send a test message to ADDR through the SMTP server.",
)
@click.option("--json", "as_json", is_flag=True, help="Print the findings as one JSON object.")
@click.pass_context
def doctor(ctx: click.Context, send_test: str | None, as_json: bool) -> None:
    """Check config, rules, database, store, mailbox and SMTP server before going live.

    Exits 0 when nothing failed (warnings allowed), 1 when a check failed.
    """
    from mailbot.doctor import diagnose
    from mailbot.doctor.findings import failed, report, report_json

    findings = diagnose(ctx.obj, send_test)
    click.echo(report_json(findings) if as_json else report(findings))
    sys.exit(1 if failed(findings) else 0)
