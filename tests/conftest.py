"""Shared fixtures: the call's rules, and running `mailbot check` as a user does.

The resources (servers, apps, databases, Chromium) are fixtures in tests/fixtures.py, loaded here
as a plugin; it also marks each test `servers` or `browser` by the fixtures it uses."""

from __future__ import annotations

import atexit
import gc
import json
import subprocess
import sys
from collections.abc import Callable, Mapping
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result

from mailbot.calls import Call, load_call
from mailbot.cli import main

ROOT = Path(__file__).resolve().parent.parent
RULES = ROOT / "rules" / "anso2021.toml"
SHARED = ROOT.parent / "shared"

pytest_plugins = ["tests.fixtures", "pytester"]


def pytest_configure(config: pytest.Config) -> None:
    # Runs after pytest's own last garbage collection (which reports what a test left
    # unclosed): the interpreter's collections while it shuts down then skip the half a
    # million objects the imports made, which took seconds after the summary for nothing.
    atexit.register(gc.freeze)


def run_bench(*args: str, timeout: float = 600) -> subprocess.CompletedProcess[str]:
    """`python -m bench ARGS` from the checkout, as a user runs it; the test fails on an error."""
    result = subprocess.run(
        [sys.executable, "-m", "bench", *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    assert result.returncode == 0, result.stderr[-4000:]
    return result


def write_rules(folder: Path, text: str, name: str = "rules.toml") -> Path:
    """A rules file beside copies of the lists it names, as a new call's folder holds them."""
    for listed in RULES.parent.glob("*.txt"):
        (folder / listed.name).write_text(listed.read_text(encoding="utf-8"), encoding="utf-8")
    path = folder / name
    path.write_text(text, encoding="utf-8")
    return path


@pytest.fixture(scope="session")
def call() -> Call:
    return load_call(RULES)


def mailbot_in_process(*args: str, env: Mapping[str, str | None] | None = None) -> Result:
    """`mailbot ARGS` as the command line runs it, in this process: where the process itself
    is not what a test asserts (each command closes the app it builds). An env value of None
    takes that variable out of the environment while the command runs."""
    return CliRunner().invoke(main, list(args), env=env, catch_exceptions=False)


CheckRunner = Callable[..., dict[str, Any]]


@pytest.fixture
def check(tmp_path: Path) -> CheckRunner:
    """Run `mailbot check FILE --json` on raw bytes; return the parsed JSON object."""

    def run(raw: bytes, received_at: datetime | str | None = None) -> dict[str, Any]:
        path = tmp_path / "mail.eml"
        path.write_bytes(raw)
        args = ["check", str(path), "--json", "--rules", str(RULES)]
        if received_at is not None:
            stamp = received_at if isinstance(received_at, str) else received_at.isoformat()
            args += ["--received-at", stamp]
        result = CliRunner().invoke(main, args, catch_exceptions=False)
        assert result.exit_code == 0, result.output
        data: dict[str, Any] = json.loads(result.stdout)
        return data

    return run


def codes(verdict: dict[str, Any]) -> list[str]:
    return [p["code"] for p in verdict["problems"]]


def roles(verdict: dict[str, Any]) -> dict[str, str]:
    return {a["filename"]: a["role"] for a in verdict["attachments"]}
