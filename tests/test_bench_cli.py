"""A smoke run of `python -m bench cli`: it makes a demo database, runs each command, prints its
table and writes JSON. It holds no figure to a target (the README has the figures)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.conftest import run_bench


@pytest.mark.slow  # a demo and ten processes: about ten seconds
def test_the_command_line_benchmark_times_each_command(tmp_path: Path) -> None:
    out = tmp_path / "cli.json"
    result = run_bench("cli", "--runs", "1", "--json", str(out))
    data = json.loads(out.read_text(encoding="utf-8"))
    assert list(data["commands"]) == ["help", "check", "log", "show"]
    for name, found in data["commands"].items():
        assert found["n"] == 1
        assert found["min_s"] == found["median_s"] == found["max_s"]
        assert found["cpu_median_s"] > 0
        assert f"\n{name:<10}" in result.stdout
