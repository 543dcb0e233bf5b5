"""A smoke run of the benchmark (`python -m bench --quick`): it runs, prints its table, writes JSON.

The benchmark's figures go to the README; this test times nothing and holds
no figure to a target. It only shows that the command a reader runs works:
the servers start, the corpus is built, every measurement runs and reports.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import ROOT

# The benchmark starts its own Dovecot, PostgreSQL and SMTP server, and runs for minutes.
pytestmark = [pytest.mark.servers, pytest.mark.slow]

QUICK_MAILS = 20


def test_quick_benchmark_runs_prints_its_table_and_writes_json(tmp_path: Path) -> None:
    out = tmp_path / "bench.json"
    result = subprocess.run(
        [sys.executable, "-m", "bench", "--quick", "--json", str(out)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=900,
        check=False,
    )
    assert result.returncode == 0, result.stderr[-4000:]
    for row in (
        "(1) ceiling",
        "(2) end to end, SQLite",
        "(3) peak memory",
        "(4) idle poll",
        "(5) reply latency",
        "(6) end to end, PostgreSQL",
    ):
        assert row in result.stdout, result.stdout
    data = json.loads(out.read_text(encoding="utf-8"))
    assert data["corpus"]["mails"] == QUICK_MAILS
    for run in ("sqlite", "postgresql"):
        # Every mail of the backlog was recorded and every answerable one answered.
        assert data[run]["check"]["recorded"] == QUICK_MAILS
        answered = QUICK_MAILS - data["corpus"]["expected_statuses"].get("ignored", 0)
        assert data[run]["replies_at_sink"] == answered
    assert {"peak_rss_mb", "run_s"} <= data["big_mail"].keys()
    assert len(data["idle"]) == 2
    assert data["latency"]["mails"] == 5
