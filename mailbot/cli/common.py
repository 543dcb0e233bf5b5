"""What the mailbot commands share: one-line errors, ISO times, the config, the App, the call.

Every command module imports its heavy parts (SQLAlchemy, the App, the desk)
inside the command that uses them, so `mailbot --help` and `mailbot check`
start without them; the helpers here do the same.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from datetime import datetime
from functools import wraps
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import click

from mailbot.errors import MailbotError

if TYPE_CHECKING:
    from mailbot.app import App
    from mailbot.calls import Call
    from mailbot.config import Settings

F = TypeVar("F", bound=Callable[..., Any])

NO_CONFIG = "no config given: use --config or MAILBOT_CONFIG"

RULES_HELP = (
    "A bundled call's name (anso2021) or a rules file; default: the config's rules, "
    "else the bundled call."
)


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


def build_app(ctx: click.Context, **overrides: Any) -> App:
    """The App of the config the command was given (--config or MAILBOT_CONFIG), closed when
    the command ends."""
    from mailbot.app import App
    from mailbot.config import ConfigError, load_settings

    if ctx.obj is None:  # never a database made wherever the command happens to run
        raise ConfigError(NO_CONFIG)
    app = App.build(load_settings(ctx.obj, **overrides))
    # The command's app ends with the command: its judging processes stop and its database
    # connections close, also when the command runs inside another program (click's runner).
    ctx.call_on_close(app.close)
    return app


def settings_if_given(ctx: click.Context) -> Settings | None:
    """The settings when a config is given; commands that need no database run without."""
    if ctx.obj is None:
        return None
    from mailbot.config import load_settings

    return load_settings(ctx.obj)


def call_and_settings(ctx: click.Context, rules: str | None) -> tuple[Call, Settings | None]:
    """The call --rules names, else the config's, else the bundled one; and the settings."""
    from mailbot.calls import load_call, rules_file

    settings = settings_if_given(ctx)
    if rules is not None:
        return load_call(rules_file(rules, Path.cwd())), settings
    if settings is not None:
        return load_call(settings.rules_path()), settings
    return load_call(rules_file()), None
