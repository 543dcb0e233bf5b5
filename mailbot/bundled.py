"""Where the data shipped inside mailbot lives: the calls' rules, the templates, the migrations.

In the checkout they are the top-level rules/, templates/ and migrations/
folders; pyproject.toml maps them into the package as mailbot.rules,
mailbot.templates and mailbot.migrations, so an editable install and a
wheel find them the same way, through importlib.resources. pip installs a
wheel as plain files, so each is a folder on disk.
"""

from __future__ import annotations

from importlib.resources import files
from pathlib import Path

DEFAULT_CALL = "anso2021"


def _folder(package: str) -> Path:
    return Path(str(files(package)))


def rules_dir() -> Path:
    """The bundled calls: NAME.toml and the lists they name."""
    return _folder("mailbot.rules")


def templates_dir() -> Path:
    """The bundled templates: reply/ for the applicants' letters, web/ for the desk."""
    return _folder("mailbot.templates")


def migrations_dir() -> Path:
    """The Alembic migrations of the database schema."""
    return _folder("mailbot.migrations")


def example_config() -> str:
    """The text of config.example.toml: every key, its default and what it does."""
    return files("mailbot").joinpath("config.example.toml").read_text(encoding="utf-8")


def bundled_calls() -> list[str]:
    """The names a config's `rules` may give for a call shipped with mailbot."""
    return sorted(path.stem for path in rules_dir().glob("*.toml"))
