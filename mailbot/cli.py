"""The mailbot command: thin wrappers that parse arguments, call the library, print."""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from datetime import datetime
from functools import wraps
from pathlib import Path
from typing import Any, TypeVar

import click

from mailbot import __version__
from mailbot.calls import DEFAULT_RULES, Call, load_call
from mailbot.checks import judge
from mailbot.errors import MailbotError
from mailbot.parsing import parse_message
from mailbot.verdict import Verdict

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
def main() -> None:
    """mailbot: email intake for calls for proposals."""


@main.command()
@click.argument("file", type=click.Path(dir_okay=False, allow_dash=True, path_type=Path))
@click.option("--json", "as_json", is_flag=True, help="Print the verdict as one JSON object.")
@click.option(
    "--received-at",
    type=IsoTime(),
    help="When the mailbox received the mail (default: its topmost Received header, "
    "else its Date). A time without offset is read in the call's time zone.",
)
@click.option(
    "--rules",
    type=click.Path(dir_okay=False, path_type=Path),
    default=DEFAULT_RULES,
    show_default=True,
    help="The call's rules file.",
)
@one_line_errors
def check(file: Path, as_json: bool, received_at: datetime | None, rules: Path) -> None:
    """Judge one mail (an .eml file, or - for standard input); store and send nothing."""
    call = load_call(rules)
    raw = _read(file)
    verdict = judge(parse_message(raw), call, received_at)
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
    if verdict.attachments:
        lines.append("附件 Attachments:")
        for item in verdict.attachments:
            lines.append(
                f"  {item.role:<10} {item.filename}  {item.size:,} B  sha256 {item.sha256[:16]}…"
            )
    return "\n".join(lines)
