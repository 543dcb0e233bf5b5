"""Settings: one documented schema, defaults in code, TOML on disk.

Every key is documented in config.example.toml. Relative paths are read
against the folder of the config file (or the working directory when no
file is given). The call's rules and the templates ship with mailbot:
`rules = "anso2021"` names a bundled call, and an empty `templates_dir`
means the bundled templates. Secrets never live here: the config names the environment
variable that holds each password.
"""

from __future__ import annotations

import os
import re
import tomllib
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, ValidationError, field_validator

from mailbot import bundled
from mailbot.calls import parse_size, rules_file
from mailbot.errors import MailbotError

_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h|d)?\s*$")
_SECONDS = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400}


class ConfigError(MailbotError):
    """A settings file that cannot be read or holds a wrong value."""


def parse_duration(value: Any) -> float:
    """Read a duration such as "10m", "30s" or 5 (seconds) into seconds."""
    if isinstance(value, bool):
        raise ValueError("expected a duration such as 30s or 10m")
    if isinstance(value, int | float):
        return float(value)
    match = _DURATION.match(str(value))
    if not match:
        raise ValueError(f"expected a duration such as 30s or 10m, got {value!r}")
    return float(match.group(1)) * _SECONDS[match.group(2) or "s"]


Duration = Annotated[float, BeforeValidator(parse_duration)]
Size = Annotated[int, BeforeValidator(parse_size)]


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Outcomes(_Section):
    """Where processed mail goes in the mailbox, one folder per status."""

    accepted: str = "mailbot/accepted"
    needs_correction: str = "mailbot/needs-correction"
    late: str = "mailbot/late"
    ignored: str = "mailbot/ignored"

    def folder(self, status: str) -> str:
        return str(getattr(self, status))


class OAuth2Settings(_Section):
    """Where an OAuth2 access token comes from: a refresh token and the provider's token URL."""

    token_url: str = ""
    client_id: str = ""
    client_secret_env: str = ""  # empty: a public client, no secret
    refresh_token_env: str = ""
    scope: str = ""


class TlsSettings(_Section):
    """Certificate checks for one server: always verified, a private CA may be added."""

    ca_file: str = ""  # PEM file of CAs trusted beside the system's
    insecure: bool = False  # skip verification: logged as a warning at every start


class ImapSettings(TlsSettings):
    host: str = "127.0.0.1"
    port: int = 993
    security: Literal["ssl", "starttls", "plain"] = "ssl"
    username: str = ""
    auth: Literal["password", "xoauth2", "oauthbearer"] = "password"
    password_env: str = "MAILBOT_IMAP_PASSWORD"
    oauth2: OAuth2Settings = OAuth2Settings(refresh_token_env="MAILBOT_IMAP_REFRESH_TOKEN")
    # RFC 2971 ID after login: "auto" when the server offers it, "always", "never".
    send_id: Literal["auto", "always", "never"] = "auto"
    folders: list[str] = ["INBOX"]
    batch_size: int = Field(default=25, ge=1)
    idle: bool = True
    idle_renew: Duration = 25 * 60.0
    timeout: Duration = 60.0


class MaildirSettings(_Section):
    path: str = "var/Maildir"


class SourceSettings(_Section):
    kind: Literal["maildir", "imap"] = "maildir"
    poll_interval: Duration = 30.0
    after: Literal["move", "flag"] = "move"
    flag: str = "$MailbotDone"
    folders: Outcomes = Outcomes()
    imap: ImapSettings = ImapSettings()
    maildir: MaildirSettings = MaildirSettings()


class SmtpSettings(TlsSettings):
    host: str = "127.0.0.1"
    port: int = 587
    security: Literal["ssl", "starttls", "plain"] = "starttls"
    username: str = ""
    auth: Literal["password", "xoauth2", "oauthbearer"] = "password"
    password_env: str = "MAILBOT_SMTP_PASSWORD"
    oauth2: OAuth2Settings = OAuth2Settings(refresh_token_env="MAILBOT_SMTP_REFRESH_TOKEN")
    timeout: Duration = 30.0


class ReplySettings(_Section):
    transport: Literal["smtp", "outbox_dir"] = "outbox_dir"
    outbox_dir: str = "var/outbox"
    from_name: str = "ANSO Secretariat"
    from_address: str = ""  # empty: the call's mailbox
    per_sender_hourly_limit: int = Field(default=5, ge=0)
    per_domain_hourly_limit: int = Field(default=50, ge=0)
    send_interval: Duration = 5.0
    max_attempts: int = Field(default=20, ge=1)
    backoff_initial: Duration = 30.0
    backoff_max: Duration = 3600.0
    smtp: SmtpSettings = SmtpSettings()


class DigestSettings(_Section):
    to: list[str] = []
    at: str = "08:00"


class ReminderSettings(_Section):
    """When applicants whose submission still needs correction are reminded."""

    hours_before: list[int] = [72, 24]  # before the deadline; empty: no reminders

    @field_validator("hours_before")
    @classmethod
    def _positive(cls, value: list[int]) -> list[int]:
        if any(hours <= 0 for hours in value):
            raise ValueError("reminders are sent a whole number of hours > 0 before the deadline")
        return sorted(set(value), reverse=True)


class SealSettings(_Section):
    """The check for the official seal on the PDF scan: its resolution and its limits."""

    check: bool = True
    dpi: float = Field(default=50.0, ge=20, le=150)
    max_page_pixels: int = Field(default=2_000_000, ge=100_000)
    max_image_pixels: int = Field(default=60_000_000, ge=1_000_000)
    timeout: Duration = Field(default=2.0, gt=0)


class IntakeSettings(_Section):
    """Who is never answered, and the limits parsing and judging run under."""

    own_addresses: list[str] = []
    own_domains: list[str] = []  # empty: the domain of the call's mailbox
    deny: list[str] = []
    authserv_id: str = ""
    max_mail_size: Size = 150 * 1024 * 1024
    max_depth: int = Field(default=20, ge=1)
    max_parts: int = Field(default=500, ge=1)
    isolate: bool = True
    judge_timeout: Duration = Field(default=30.0, gt=0)
    judge_memory: Size = 512 * 1024 * 1024
    judge_processes: int = Field(default=0, ge=0)
    # How long a "please correct" letter for a mail missing its Word or PDF waits for the
    # other file in a second mail, so both are judged together (0: not at all).
    settle_window: Duration = Field(default=90.0, ge=0)
    seal: SealSettings = SealSettings()


class WebSettings(_Section):
    """The intake desk (mailbot web): where it listens and what it trusts in front of it."""

    host: str = "127.0.0.1"
    port: int = Field(default=8080, ge=1, le=65535)
    # HTTPS proxies in front of the desk whose X-Forwarded-* headers are believed (0: none).
    trusted_proxies: int = Field(default=0, ge=0)
    # Host names the desk answers to (empty: any; set it behind a proxy).
    allowed_hosts: list[str] = []
    secure_cookies: bool = False


class Settings(_Section):
    rules: str = bundled.DEFAULT_CALL  # a bundled call's name, or a path to a rules file
    database_url: str = "sqlite:///var/mailbot.sqlite3"
    store_dir: str = "var/store"
    templates_dir: str = ""  # empty: the templates shipped with mailbot
    source: SourceSettings = SourceSettings()
    replies: ReplySettings = ReplySettings()
    digest: DigestSettings = DigestSettings()
    reminders: ReminderSettings = ReminderSettings()
    intake: IntakeSettings = IntakeSettings()
    web: WebSettings = WebSettings()
    base_dir: str = "."

    def path(self, value: str) -> Path:
        """A path from the settings, read against the config file's folder."""
        path = Path(value).expanduser()
        return path if path.is_absolute() else Path(self.base_dir) / path

    def rules_path(self) -> Path:
        """The call's rules file: a bundled call, or a file read against the config's folder."""
        return rules_file(self.rules, Path(self.base_dir))

    def templates_path(self) -> Path:
        """The templates folder: the bundled one unless templates_dir names another."""
        return self.path(self.templates_dir) if self.templates_dir else bundled.templates_dir()

    def database(self) -> str:
        """The database URL, with a relative SQLite path read like any other path."""
        prefix = "sqlite:///"
        url = self.database_url
        if url.startswith(prefix) and not url.startswith(prefix + "/") and url != "sqlite://":
            rest = url[len(prefix) :]
            if rest and rest != ":memory:":
                return prefix + str(self.path(rest))
        return url


def secret(env_name: str) -> str:
    """A password from the environment variable the config names."""
    value = os.environ.get(env_name)
    if not value:
        raise ConfigError(f"the environment variable {env_name} (a password) is not set")
    return value


def load_settings(path: str | Path | None = None, **overrides: Any) -> Settings:
    """Read settings from a TOML file (None: all defaults, paths from here)."""
    data: dict[str, Any] = {}
    base = Path.cwd()
    if path is not None:
        path = Path(path)
        try:
            data = tomllib.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise ConfigError(f"{path}: no such config file") from None
        except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
            raise ConfigError(f"{path}: {exc}") from None
        base = path.resolve().parent
    data.setdefault("base_dir", str(base))
    data.update(overrides)
    try:
        return Settings.model_validate(data)
    except ValidationError as exc:
        where = path or "settings"
        problems = "; ".join(
            f"{'.'.join(str(p) for p in e['loc'])}: {e['msg'].removeprefix('Value error, ')}"
            for e in exc.errors()
        )
        raise ConfigError(f"{where}: {problems}") from None
