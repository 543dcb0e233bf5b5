"""`mailbot init` on a missing file: a commented config with absolute paths under a data folder.

The text is config.example.toml's, every key with its comment, with the
paths of the state (database, store, outbox, Maildir) made absolute under
the data folder the operator names, so the file works wherever it is put.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from mailbot import bundled
from mailbot.config import ConfigError

HEADER = """\
# Written by `mailbot init`. The state (database, store, outbox, Maildir) is
# kept under {data_dir}: those paths are absolute; every
# other key below has its default. The call's rules and the templates are
# the ones shipped with mailbot ({templates}).

"""

NEXT_STEPS = """\
wrote {config}: state under {data_dir}
Edit it next (every key is explained in the file):
  [source]   kind = "imap", and [source.imap] host, username (password from ${imap_env});
             or keep "maildir" and set [source.maildir] path to the Maildir mail is delivered to
  [replies]  transport = "smtp", and [replies.smtp] host, username (password from ${smtp_env})
  [digest]   to = the secretariat's addresses
  rules      "{call}" is the call shipped with mailbot; a path names your own rules file
Then create the database and start:
  mailbot --config {config} init
  mailbot --config {config} run"""


def default_data_dir() -> Path:
    """/var/lib/mailbot for root, else the user's data folder (XDG)."""
    if os.geteuid() == 0:
        return Path("/var/lib/mailbot")
    xdg = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(xdg) / "mailbot"


def config_text(data_dir: Path) -> str:
    """config.example.toml with the state's paths made absolute under data_dir."""
    data_dir = data_dir.expanduser().absolute()
    values = {
        ("", "database_url"): f"sqlite:///{data_dir / 'mailbot.sqlite3'}",
        ("", "store_dir"): str(data_dir / "store"),
        ("source.maildir", "path"): str(data_dir / "Maildir"),
        ("replies", "outbox_dir"): str(data_dir / "outbox"),
    }
    section = ""
    lines = []
    for line in bundled.example_config().splitlines():
        stripped = line.strip()
        if stripped.startswith("[") and stripped.endswith("]"):
            section = stripped.strip("[]")
        key = stripped.split("=", 1)[0].strip() if "=" in stripped else ""
        if not stripped.startswith("#") and (section, key) in values:
            line = f"{key} = {json.dumps(values.pop((section, key)), ensure_ascii=False)}"
        lines.append(line)
    if values:  # config.example.toml lost a key this function fills in
        raise ConfigError(f"config.example.toml has no {', '.join(k for _, k in values)}")
    header = HEADER.format(data_dir=data_dir, templates=bundled.templates_dir())
    return header + "\n".join(lines) + "\n"


def write_config(path: Path, data_dir: Path) -> str:
    """Write a new config at path (never over an existing file); return what to do next."""
    text = config_text(data_dir)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with path.open("x", encoding="utf-8") as out:
            out.write(text)
    except OSError as exc:
        raise ConfigError(f"cannot write {path}: {exc.strerror or exc}") from None
    return NEXT_STEPS.format(
        config=path.absolute(),
        data_dir=data_dir.expanduser().absolute(),
        imap_env="MAILBOT_IMAP_PASSWORD",
        smtp_env="MAILBOT_SMTP_PASSWORD",
        call=bundled.DEFAULT_CALL,
    )
