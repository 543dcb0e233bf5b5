"""A smoke run of `python -m bench desk` on a small count: it fills both databases, times the
desk's pages, prints its table and writes JSON. It times nothing itself and holds no figure to
a target (the README has the figures for 20,000 submissions)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.conftest import run_bench

# The benchmark starts its own PostgreSQL and fills both databases.
pytestmark = [pytest.mark.servers, pytest.mark.slow]


def test_the_desk_benchmark_runs_on_sqlite_and_postgresql(tmp_path: Path) -> None:
    out = tmp_path / "desk.json"
    counts = ["--submissions", "60", "--mails", "100", "--repeats", "3"]
    result = run_bench("desk", *counts, "--json", str(out))
    data = json.loads(out.read_text(encoding="utf-8"))
    assert set(data["databases"]) == {"sqlite", "postgresql"}
    for kind, found in data["databases"].items():
        assert found["written"]["submissions"] == 60
        assert found["written"]["mails"] == 100
        for page in ("log", "search", "submission"):
            assert found[page]["n"] == 3
            assert found[page]["p95_ms"] > 0
            assert f"{kind:<12}{page:<12}" in result.stdout
