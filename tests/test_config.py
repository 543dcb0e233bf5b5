"""Settings: config.example.toml documents every key, and bad settings say what is wrong."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from pydantic import BaseModel

from mailbot.config import ConfigError, Settings, load_settings, parse_duration
from tests.conftest import ROOT

EXAMPLE = ROOT / "config.example.toml"


def _keys(model: type[BaseModel], prefix: str = "") -> set[str]:
    keys = set()
    for name, field in model.model_fields.items():
        if name == "base_dir":
            continue
        kind = field.annotation
        if isinstance(kind, type) and issubclass(kind, BaseModel):
            keys |= _keys(kind, f"{prefix}{name}.")
        else:
            keys.add(f"{prefix}{name}")
    return keys


def _flatten(settings: Settings) -> dict[str, Any]:
    def walk(value: Any, prefix: str) -> dict[str, Any]:
        if isinstance(value, BaseModel):
            out: dict[str, Any] = {}
            for name in type(value).model_fields:
                if name != "base_dir":
                    out |= walk(getattr(value, name), f"{prefix}{name}.")
            return out
        return {prefix.rstrip("."): value}

    return walk(settings, "")


def test_the_example_documents_every_key_with_its_default() -> None:
    text = EXAMPLE.read_text(encoding="utf-8")
    example = load_settings(EXAMPLE)
    assert _flatten(example) == _flatten(Settings())
    for key in _keys(Settings):
        assert f"{key.rpartition('.')[2]} =" in text, key


def test_paths_are_read_against_the_config_folder(tmp_path: Path) -> None:
    config = tmp_path / "etc" / "mailbot.toml"
    config.parent.mkdir()
    config.write_text('store_dir = "data/store"\ndatabase_url = "sqlite:///data/m.sqlite3"\n')
    settings = load_settings(config)
    assert settings.path(settings.store_dir) == config.parent / "data" / "store"
    assert settings.database() == f"sqlite:///{config.parent / 'data' / 'm.sqlite3'}"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ('[source]\nkind = "pop3"\n', "source.kind"),
        ('[replies]\nsend_interval = "soon"\n', "replies.send_interval"),
        ('[source.imap]\npassword = "hunter2"\n', "source.imap.password"),
        ("[source\n", "mailbot.toml"),
    ],
)
def test_bad_settings_are_one_clear_line(tmp_path: Path, text: str, expected: str) -> None:
    config = tmp_path / "mailbot.toml"
    config.write_text(text)
    with pytest.raises(ConfigError) as info:
        load_settings(config)
    assert expected in str(info.value)
    assert "hunter2" not in str(info.value)


def test_durations() -> None:
    assert parse_duration("25m") == 1500
    assert parse_duration("500ms") == 0.5
    assert parse_duration(3) == 3.0
    with pytest.raises(ValueError):
        parse_duration("later")
