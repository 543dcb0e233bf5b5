"""The mailbot command: thin wrappers that parse arguments, call the library, print."""

from __future__ import annotations

import json
import logging
import sys
from collections.abc import Callable
from datetime import datetime
from functools import wraps
from pathlib import Path
from typing import Any, TypeVar

import click

from mailbot import __version__
from mailbot.app import App, intake_policy
from mailbot.calls import Call, load_call, rules_file
from mailbot.cli.newconfig import default_data_dir, write_config
from mailbot.cli.report import describe_form, export, log_text, show
from mailbot.config import ConfigError, Settings, load_settings
from mailbot.demo import run_demo
from mailbot.documents.template import write_form
from mailbot.errors import MailbotError
from mailbot.intake.reprocess import reprocess, reprocess_summary
from mailbot.judge.bounded import parse_and_judge
from mailbot.judge.memory import release_large_blocks
from mailbot.judge.policy import IntakePolicy
from mailbot.judge.verdict import Verdict
from mailbot.ledger.counting import count
from mailbot.ledger.facts import seal_words
from mailbot.mail.names import shown
from mailbot.service.daemon import Daemon
from mailbot.service.preflight import check_start

F = TypeVar("F", bound=Callable[..., Any])

_STATUS_ZH = {
    "accepted": "已受理",
    "needs_correction": "需要更正",
    "late": "逾期",
    "ignored": "不予答复",
}


def one_line_errors(func: F) -> F:
    """Report MailbotError as one line on stderr and exit 2, never a traceback."""

    @wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return func(*args, **kwargs)
        except MailbotError as exc:
            click.echo(f"mailbot: {exc}", err=True)
            sys.exit(2)

    return wrapper  # type: ignore[return-value]


class IsoTime(click.ParamType):  # type: ignore[type-arg]
    name = "ISO-8601"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        if isinstance(value, datetime):
            return value
        try:
            return datetime.fromisoformat(str(value).replace("Z", "+00:00"))
        except ValueError:
            self.fail(f"{value!r} is not an ISO-8601 time such as 2021-07-30T23:59:59+08:00")


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


NO_CONFIG = "no config given: use --config or MAILBOT_CONFIG"


def _app(ctx: click.Context, **overrides: Any) -> App:
    if ctx.obj is None:  # never a database made wherever the command happens to run
        raise ConfigError(NO_CONFIG)
    return App.build(load_settings(ctx.obj, **overrides))


def _settings_if_given(ctx: click.Context) -> Settings | None:
    """The settings when a config is given; commands that need no database run without."""
    return None if ctx.obj is None else load_settings(ctx.obj)


@main.command()
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
    ctx.obj = config_path or ctx.obj
    if ctx.obj is not None and not Path(ctx.obj).exists():
        click.echo(write_config(Path(ctx.obj), data_dir or default_data_dir()))
        return
    if data_dir is not None:
        raise ConfigError(f"{ctx.obj} exists: --data-dir only applies to a new config")
    app = _app(ctx)
    revision = app.db.upgrade()
    click.echo(f"database ready at revision {revision}")


@main.command()
@click.option("--once", is_flag=True, help="One fetch and one send, then exit.")
@click.pass_context
@one_line_errors
def run(ctx: click.Context, once: bool) -> None:
    """Watch the mailbox, judge and record every mail, answer every applicant."""
    release_large_blocks()
    app = _app(ctx)
    check_start(app.settings)
    daemon = Daemon(app)
    if once:
        polled, sent = daemon.once()
        click.echo(f"fetched: {polled.summary()}; replies: {sent}")
    else:
        daemon.run()


@main.command("log")
@click.pass_context
@one_line_errors
def log_command(ctx: click.Context) -> None:
    """Print the intake log: one row per submission, then mail tied to none."""
    app = _app(ctx)
    app.db.check_schema()
    with app.db.transaction() as session:
        click.echo(log_text(session, app.call))


@main.command("show")
@click.argument("reference")
@click.pass_context
@one_line_errors
def show_command(ctx: click.Context, reference: str) -> None:
    """Print one submission with all its versions, mails and replies."""
    app = _app(ctx)
    app.db.check_schema()
    with app.db.transaction() as session:
        click.echo(show(session, app.call, reference))


@main.command("export")
@click.argument("file", type=click.Path(dir_okay=False, path_type=Path))
@click.pass_context
@one_line_errors
def export_command(ctx: click.Context, file: Path) -> None:
    """Write the intake log to FILE.xlsx or FILE.csv, one row per submission."""
    app = _app(ctx)
    app.db.check_schema()
    with app.db.transaction() as session:
        written = export(session, app.call, file)
    click.echo(f"{count(written, 'submission')} written to {file}")


@main.command("reprocess")
@click.option("--reply", is_flag=True, help="Queue a reply for each changed verdict not yet told.")
@click.option("--dry-run", is_flag=True, help="Print what would change and write nothing.")
@click.pass_context
@one_line_errors
def reprocess_command(ctx: click.Context, reply: bool, dry_run: bool) -> None:
    """Judge every stored mail again under the current rules (after a rules fix)."""
    app = _app(ctx)
    app.db.check_schema()
    result = reprocess(app, reply=reply, dry_run=dry_run)
    for line in reprocess_summary(result):
        click.echo(line)


RULES_HELP = (
    "A bundled call's name (anso2021) or a rules file; default: the config's rules, "
    "else the bundled call."
)


def _call(ctx: click.Context, rules: str | None) -> tuple[Call, Settings | None]:
    """The call --rules names, else the config's, else the bundled one; and the settings."""
    settings = _settings_if_given(ctx)
    if rules is not None:
        return load_call(rules_file(rules, Path.cwd())), settings
    if settings is not None:
        return load_call(settings.rules_path()), settings
    return load_call(rules_file()), None


@main.command("form-template")
@click.argument("file", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--rules", metavar="CALL|FILE", help=RULES_HELP)
@click.pass_context
@one_line_errors
def form_template_command(ctx: click.Context, file: Path, rules: str | None) -> None:
    """Write the call's blank bilingual proposal form to FILE.docx (its folder is made)."""
    call, _settings = _call(ctx, rules)
    write_form(call, file)
    click.echo(f"form written to {file}")


@main.command("demo")
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
    root = logging.getLogger()
    if not root.isEnabledFor(logging.DEBUG):  # the intake log below says it all; -v shows more
        root.setLevel(logging.WARNING)
    click.echo(run_demo(directory))


@main.command()
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
    call, settings = _call(ctx, rules)
    raw = _read(file)
    # The daemon's own judge under the config's [intake] policy (deny list, own
    # addresses, authserv_id, limits); in this process, not a judging process.
    policy = IntakePolicy() if settings is None else intake_policy(settings)
    _message, verdict = parse_and_judge(raw, call, received_at, policy)
    if as_json:
        click.echo(json.dumps(verdict.as_json(), ensure_ascii=False, indent=2))
    else:
        click.echo(describe(verdict, call))


def _read(file: Path) -> bytes:
    try:
        if str(file) == "-":
            return sys.stdin.buffer.read()
        return file.read_bytes()
    except OSError as exc:
        raise MailbotError(f"cannot read {file}: {exc.strerror or exc}") from None


def describe(verdict: Verdict, call: Call) -> str:
    """A verdict for a person to read."""
    when_zh, _ = call.local_text(verdict.received_at)
    lines = [
        f"状态 Status:        {verdict.status}（{_STATUS_ZH[str(verdict.status)]}）",
        f"牵头单位 Institution: {verdict.institution or '-'}",
        f"负责人 PI:          {verdict.pi or '-'}",
        f"收到 Received:      {when_zh}",
    ]
    if verdict.problems:
        lines.append("问题 Problems:")
        for problem in verdict.problems:
            lines.append(f"  [{problem.severity}] {problem.code}: {problem.zh}")
            lines.append(f"  {' ' * (len(str(problem.severity)) + 2)} {problem.en}")
    if verdict.form is not None:
        lines.append("建议书 Form:")
        lines.extend(f"  {line}" for line in describe_form(call, verdict.form))
    if verdict.pdf_pages is not None:
        lines.append(f"PDF 页数 PDF pages: {verdict.pdf_pages}")
    if verdict.seal is not None:
        lines.append("公章 Seal: {} {}".format(*seal_words(verdict.seal)))
    if verdict.attachments:
        lines.append("附件 Attachments:")
        for item in verdict.attachments:
            lines.append(
                f"  {item.role:<10} {shown(item.filename)}  {item.size:,} B  "
                f"sha256 {item.sha256[:16]}…"
            )
    return "\n".join(lines)


# Last: these modules' commands use the helpers above.
from mailbot.cli.doctor import register as register_doctor  # noqa: E402
from mailbot.cli.service import register as register_service  # noqa: E402
from mailbot.cli.web import register as register_web  # noqa: E402

register_web(main)
register_service(main)
register_doctor(main)
