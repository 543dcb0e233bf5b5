"""A smoke run of `python -m bench outbox`: it sends one run over the outbox to the SMTP sink,
prints its table and writes JSON. It holds no figure to a target (the README has the figures)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.conftest import run_bench


@pytest.mark.slow  # a process that starts the sink and sends 2 x 6 replies: a few seconds
def test_the_outbox_benchmark_counts_the_sessions_of_each_run(tmp_path: Path) -> None:
    out = tmp_path / "outbox.json"
    options = ["--replies", "6", "--rounds", "1", "--close-after", "4", "--json", str(out)]
    result = run_bench("outbox", *options)
    one_session, closing = json.loads(out.read_text(encoding="utf-8"))["cases"]
    (run,) = one_session["runs"]
    assert (run["sent"], run["connections"], run["ehlos"], run["logins"]) == (6, 1, 1, 1)
    (run,) = closing["runs"]
    assert (run["sent"], run["connections"], run["logins"], run["delivered_twice"]) == (6, 2, 2, 0)
    assert "server closes every 4" in result.stdout
