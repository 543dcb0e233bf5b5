"""`mailbot run` and `reprocess`: the intake itself, and judging stored mail again."""

from __future__ import annotations

import click

from mailbot.cli.common import build_app, one_line_errors


@click.command()
@click.option("--once", is_flag=True, help="One fetch and one send, then exit.")
@click.pass_context
@one_line_errors
def run(ctx: click.Context, once: bool) -> None:
    """Watch the mailbox, judge and record every mail, answer every applicant."""
    from mailbot.judge.memory import release_large_blocks
    from mailbot.service.daemon import Daemon
    from mailbot.service.preflight import check_start

    release_large_blocks()
    app = build_app(ctx)
    check_start(app.settings)
    daemon = Daemon(app)
    if once:
        polled, sent = daemon.once()
        click.echo(f"fetched: {polled.summary()}; replies: {sent}")
    else:
        daemon.run()


@click.command("reprocess")
@click.option("--reply", is_flag=True, help="Queue a reply for each changed verdict not yet told.")
@click.option("--dry-run", is_flag=True, help="Print what would change and write nothing.")
@click.pass_context
@one_line_errors
def reprocess_command(ctx: click.Context, reply: bool, dry_run: bool) -> None:
    """Judge every stored mail again under the current rules (after a rules fix)."""
    from mailbot.intake.reprocess import reprocess, reprocess_summary

    app = build_app(ctx)
    app.db.check_schema()
    result = reprocess(app, reply=reply, dry_run=dry_run)
    for line in reprocess_summary(result):
        click.echo(line)
