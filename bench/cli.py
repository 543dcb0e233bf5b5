"""`python -m bench cli`: how long the command line takes, each command a whole process.

Times, as an operator types them, `mailbot --help`, `mailbot check` on
tests/data/coremail-accepted.eml (a Word form and two PDFs: every reader the
judge has), and `mailbot log` and `mailbot show` on a fresh demo database
(`mailbot demo`). Each command runs once to warm the disk cache, then N times,
the commands taking turns so that other work on the machine weighs on each
alike. The wall time is from starting the process to its exit: Python's start,
the imports and the command itself. Prints min / median / max of it, and the
median CPU time (which other work on the machine weighs on less), and writes
bench/results/DATE-cli.json. It asserts nothing about times.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "results"
MAIL = "tests/data/coremail-accepted.eml"
REFERENCE = "ANSO2021-0002"
# The median wall time each command should stay under (issue 13).
TARGETS_S = {"help": 0.35, "check": 0.35, "log": 0.6, "show": 0.6}


def mailbot_command() -> list[str]:
    """The `mailbot` script beside this Python when installed, else `python -m mailbot`."""
    script = Path(sys.executable).with_name("mailbot")
    return [str(script)] if script.is_file() else [sys.executable, "-m", "mailbot"]


def commands(config: Path) -> dict[str, list[str]]:
    with_config = ["--config", str(config)]
    return {
        "help": ["--help"],
        "check": ["check", MAIL],
        "log": [*with_config, "log"],
        "show": [*with_config, "show", REFERENCE],
    }


def timed(argv: list[str], env: dict[str, str]) -> tuple[float, float]:
    """One run's wall time and CPU time (user and system) in seconds.

    On a machine shared with other work the wall time grows with the load,
    the CPU time much less: both are kept. A run that fails stops the benchmark.
    """
    cpu_before = _children_cpu()
    began = time.perf_counter()
    result = subprocess.run(argv, cwd=ROOT, env=env, capture_output=True, check=False)
    elapsed = time.perf_counter() - began
    if result.returncode != 0 or not result.stdout:
        sys.stderr.write(result.stderr.decode(errors="replace"))
        raise RuntimeError(f"{' '.join(argv)} exited {result.returncode}")
    return elapsed, _children_cpu() - cpu_before


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def figures(runs: list[tuple[float, float]], target: float) -> dict[str, Any]:
    walls = [wall for wall, _cpu in runs]
    median = statistics.median(walls)
    return {
        "min_s": round(min(walls), 3),
        "median_s": round(median, 3),
        "max_s": round(max(walls), 3),
        "cpu_median_s": round(statistics.median(cpu for _wall, cpu in runs), 3),
        "n": len(runs),
        "target_median_s": target,
        "met": median < target,
    }


def measure(runs: int, directory: Path) -> dict[str, Any]:
    env = {k: v for k, v in os.environ.items() if k != "MAILBOT_CONFIG"}
    program = mailbot_command()
    demo = subprocess.run(
        [*program, "demo", "--dir", str(directory / "demo")],
        cwd=ROOT,
        env=env,
        capture_output=True,
        check=False,
    )
    if demo.returncode != 0:
        raise RuntimeError(f"mailbot demo exited {demo.returncode}: {demo.stderr[-2000:]!r}")
    argvs = {
        name: [*program, *args]
        for name, args in commands(directory / "demo" / "mailbot.toml").items()
    }
    for argv in argvs.values():  # warm-up: the disk cache, .pyc files
        timed(argv, env)
    times: dict[str, list[tuple[float, float]]] = {name: [] for name in argvs}
    for _ in range(runs):
        for name, argv in argvs.items():
            times[name].append(timed(argv, env))
    return {name: figures(found, TARGETS_S[name]) for name, found in times.items()}


def table(results: dict[str, Any]) -> str:
    lines = [f"mailbot command-line benchmark, {results['started']}: {results['machine']}", ""]
    lines.append(f"{'command':<10}{'min s':>8}{'median s':>10}{'max s':>8}{'CPU s':>8}  target")
    for name, found in results["commands"].items():
        verdict = "met" if found["met"] else "MISSED"
        lines.append(
            f"{name:<10}{found['min_s']:>8.3f}{found['median_s']:>10.3f}{found['max_s']:>8.3f}"
            f"{found['cpu_median_s']:>8.3f}  median < {found['target_median_s']} s: {verdict}"
        )
    return "\n".join(lines)


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m bench cli", description=__doc__.split("\n\n")[0]
    )
    parser.add_argument("--runs", type=int, default=15, help="timed runs of each command")
    parser.add_argument("--json", type=Path, help="default bench/results/DATE-cli.json")
    args = parser.parse_args(argv)
    started = datetime.now(UTC)
    results: dict[str, Any] = {
        "started": started.isoformat(timespec="seconds"),
        "machine": f"{os.cpu_count()} CPUs, Python {platform.python_version()}, "
        f"load {os.getloadavg()[0]:.1f} at the start",
        "program": " ".join(Path(part).name for part in mailbot_command()),
        "runs": args.runs,
    }
    with tempfile.TemporaryDirectory(prefix="mailbot-bench-cli-") as folder:
        results["commands"] = measure(args.runs, Path(folder))
    results["load_at_end"] = round(os.getloadavg()[0], 1)
    print(table(results))
    out = args.json or RESULTS / f"{started.date().isoformat()}-cli.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(results, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    return 0
