"""A smoke run of the benchmark (`python -m bench --quick`): it runs, prints its table, writes JSON.

The benchmark's figures go to the README; this test times nothing and holds
no figure to a target. It only shows that the command a reader runs works:
the servers start, the corpus is built, every measurement runs and reports.
"""

from __future__ import annotations

import json
import os
import shutil
from dataclasses import dataclass
from typing import Any

import pytest

from tests.conftest import run_bench

# The benchmark starts its own Dovecot, PostgreSQL and SMTP server, and runs for minutes.
pytestmark = [pytest.mark.servers, pytest.mark.slow]

QUICK_MAILS = 20


@dataclass(frozen=True)
class QuickRun:
    """What `python -m bench --quick` printed and the results it wrote."""

    stdout: str
    data: dict[str, Any]


@pytest.fixture(scope="module")
def quick(tmp_path_factory: pytest.TempPathFactory) -> QuickRun:
    """One quick run of the benchmark for every test of this module (it runs for minutes)."""
    out = tmp_path_factory.mktemp("bench") / "bench.json"
    result = run_bench("--quick", "--json", str(out), timeout=900)
    return QuickRun(result.stdout, json.loads(out.read_text(encoding="utf-8")))


def test_quick_benchmark_runs_prints_its_table_and_writes_json(quick: QuickRun) -> None:
    for row in (
        "(1) ceiling",
        "(1c) disk: fdatasync after each file",
        "(2) end to end, SQLite",
        "(3) peak memory",
        "(4) idle poll",
        "(5) reply latency",
        "(6) end to end, PostgreSQL",
    ):
        assert row in quick.stdout, quick.stdout
    data = quick.data
    assert data["corpus"]["mails"] == QUICK_MAILS
    for run in ("sqlite", "postgresql"):
        # Every mail of the backlog was recorded and every answerable one answered.
        assert data[run]["check"]["recorded"] == QUICK_MAILS
        answered = QUICK_MAILS - data["corpus"]["expected_statuses"].get("ignored", 0)
        assert data[run]["replies_at_sink"] == answered
    assert {"peak_rss_mb", "run_s"} <= data["big_mail"].keys()
    assert len(data["idle"]) == 2
    assert data["latency"]["mails"] == 5
    # One round with --quick, its time the median; the disk's bound from the store's bytes.
    assert data["rounds"] == 1
    assert data["sqlite"]["rounds_run_s"] == [data["sqlite"]["run_s_median"]]
    assert data["disk"]["files"] == QUICK_MAILS
    assert data["disk"]["store_mb"] >= data["corpus"]["mb"]  # raw mails and decoded files
    assert data["disk"]["bound_mails_per_s"] > 0


def test_quick_benchmark_pulls_every_mail_with_mbsync_and_sets_mailbot_beside_it(
    quick: QuickRun,
) -> None:
    if shutil.which("mbsync") is None:
        if os.environ.get("CI"):
            pytest.fail("CI must have mbsync (.ci/run installs the Debian package isync)")
        pytest.skip("mbsync not installed here: apt-get install isync")
    assert "(1b) mbsync (pull to Maildir, fsync)" in quick.stdout, quick.stdout
    peer, corpus = quick.data["mbsync"], quick.data["corpus"]
    assert "skipped" not in peer, peer
    # Every mail, whole: the Maildir holds the corpus's bytes, its line ends as LF.
    [pulled] = peer["rounds"]
    assert pulled["mails"] == QUICK_MAILS
    assert pulled["mail_bytes"] == corpus["bytes_lf"]
    assert peer["pulled_every_mail"] is True
    for run in ("sqlite", "postgresql"):
        assert quick.data[run]["ratio_mbsync"] > 0
        assert quick.data[run]["ratio_ceiling"] > 0
    table = quick.stdout.split("(2) end to end, SQLite", 1)[1]
    assert ">= 0.50 x mbsync" in table, quick.stdout
    assert "x raw fetch" in table, quick.stdout
