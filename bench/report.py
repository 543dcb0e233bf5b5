"""The benchmark's table: each figure beside the issue's target for it."""

from __future__ import annotations

from typing import Any

BACKLOG_TARGET = 2000  # mails: the backlog the memory target is set for
END_TO_END = (  # key, row label, the ceiling measured before it
    ("sqlite", "(2) end to end, SQLite", "ceiling"),
    ("postgresql", "(6) end to end, PostgreSQL", "ceiling_before_postgresql"),
)


def seconds(run: dict[str, Any]) -> float:
    """An end-to-end run's time: the median of its rounds (a single run's own before rounds)."""
    value: float = run.get("run_s_median", run["run_s"])
    return value


def add_ratios(results: dict[str, Any]) -> None:
    """Each end-to-end run's rate as a share of mbsync's and of the raw fetch's (ratio_* keys)."""
    mails = results["corpus"]["mails"]
    peer = results.get("mbsync") or {}
    for key, _label, before in END_TO_END:
        run = results.get(key)
        if not run or "skipped" in run:
            continue
        rate = mails / seconds(run)
        run["ratio_ceiling"] = round(rate / results[before]["mails_per_s"], 3)
        if "mails_per_s" in peer:
            run["ratio_mbsync"] = round(rate / peer["mails_per_s"], 3)


def peak_memory(run: dict[str, Any]) -> float:
    """MB: all of mailbot's processes together at their peak (PSS), else the largest one's RSS."""
    value: float = run.get("peak_tree_pss_mb") or run["peak_rss_mb"]
    return value


def _memory(run: dict[str, Any]) -> str:
    if not run.get("peak_tree_pss_mb"):
        return f"{run['peak_rss_mb']:.0f} MB"
    return f"{run['peak_tree_pss_mb']:.0f} MB (largest process {run['peak_rss_mb']:.0f})"


def _verdict(ok: bool | None) -> str:
    return "" if ok is None else ("met" if ok else "MISSED")


def _rate(run: dict[str, Any], mails: int, mb: float) -> str:
    median = seconds(run)
    cpu = f", CPU {run['cpu_s'] / mails * 1000:.0f} ms/mail" if "cpu_s" in run else ""
    rounds = run.get("rounds", 1)
    timing = (
        f"median of {rounds}: {median:.1f} s, spread {run['run_s_spread']:.1f} s"
        if rounds > 1
        else f"{median:.1f} s"
    )
    return f"{mails / median:.1f} mails/s, {mb / median:.0f} MB/s ({timing}{cpu})"


def _unlike_plan(run: dict[str, Any], mails: int) -> int | None:
    """How many verdicts of the worst round were not the planned ones; None if all were."""
    checks = run.get("rounds_check") or [run["check"]]
    worst = max(checks, key=lambda check: (check["mismatches"], check["recorded"] != mails))
    if worst["mismatches"] or worst["recorded"] != mails:
        return int(worst["mismatches"])
    return None


def _end_to_end_rows(
    results: dict[str, Any], mails: int, mb: float
) -> list[tuple[str, str, str, str]]:
    """The end-to-end runs, SQLite (2) and PostgreSQL (6), each against its ceiling."""
    out: list[tuple[str, str, str, str]] = []
    for key, label, _before in END_TO_END:
        run = results.get(key)
        if not run:
            continue
        if "skipped" in run:
            out.append((label, f"skipped: {run['skipped']}", "", ""))
            continue
        out.append((label, _rate(run, mails, mb), "", ""))
        if "ratio_mbsync" in run:
            ratio = run["ratio_mbsync"]
            target, verdict = (
                (">= 0.50 x mbsync", _verdict(ratio >= 0.5)) if key == "sqlite" else ("", "")
            )
            out.append(("    x mbsync", f"{ratio:.2f} x", target, verdict))
        ratio = run["ratio_ceiling"]
        out.append(
            ("    x raw fetch", f"{ratio:.2f} x", ">= 0.50 x ceiling", _verdict(ratio >= 0.5))
        )
        unlike = _unlike_plan(run, mails)
        if unlike is not None:
            out.append(("    verdicts unlike the plan", f"{unlike} of {mails}", "", "CHECK"))
    return out


def _peer_rows(results: dict[str, Any]) -> list[tuple[str, str, str, str]]:
    """(1b) mbsync, the peer, and (1c) the bound the disk's fdatasync rate sets."""
    out: list[tuple[str, str, str, str]] = []
    peer = results.get("mbsync")
    label = "(1b) mbsync (pull to Maildir, fsync)"
    if peer and "skipped" in peer:
        out.append((label, f"skipped: {peer['skipped']}", "", ""))
    elif peer:
        rounds = len(peer["rounds"])
        timing = f"{peer['seconds_median']:.1f} s" + (
            f", median of {rounds}, spread {peer['seconds_spread']:.1f} s" if rounds > 1 else ""
        )
        out.append((
            label,
            f"{peer['mails_per_s']:.1f} mails/s, {peer['mb_per_s']:.0f} MB/s ({timing})",
            "every mail pulled",
            "" if peer["pulled_every_mail"] else "CHECK",
        ))  # fmt: skip
    disk = results.get("disk")
    if disk:
        out.append((
            "(1c) disk: fdatasync after each file",
            f"{disk['mb_per_s']:.0f} MB/s, {disk['files_per_s']:.0f} files/s "
            f"({disk['files']} files of {disk['file_mb']:.1f} MB)",
            "",
            "",
        ))  # fmt: skip
        out.append((
            "    bound: the store's bytes at that rate",
            f"{disk['bound_mails_per_s']:.1f} mails/s ({disk['store_mb']:,.0f} MB, "
            f"{disk['store_files']} files, {disk['flush_s']:.1f} s)",
            "",
            "",
        ))  # fmt: skip
    return out


def _idle_rows(idle: list[dict[str, Any]]) -> list[tuple[str, str, str, str]]:
    """The idle polls (4), each after more mails, against the first."""
    out: list[tuple[str, str, str, str]] = []
    for index, step in enumerate(idle):
        label = f"(4) idle poll, {step['mails']:,} processed"
        figure = f"{step['poll_ms_median']:.2f} ms median (p95 {step['poll_ms_p95']:.2f})"
        if index == 0:
            out.append((label, figure, "", ""))
        else:
            ratio = step["poll_ms_median"] / idle[0]["poll_ms_median"]
            out.append(
                (
                    label,
                    f"{figure} = {ratio:.2f} x",
                    "<= 1.5 x the smallest",
                    _verdict(ratio <= 1.5),
                )
            )
    return out


def rows(results: dict[str, Any]) -> list[tuple[str, str, str, str]]:
    corpus, ceiling = results["corpus"], results["ceiling"]
    mails, mb = corpus["mails"], corpus["mb"]
    out = [
        (
            f"(1) ceiling: raw fetch, batches of {ceiling['batch_size']}",
            f"{ceiling['mails_per_s']:.1f} mails/s, {ceiling['mb_per_s']:.0f} MB/s "
            f"({mails} mails, {mb:,.0f} MB)",
            "",
            "",
        )
    ]
    shipped = results.get("ceiling_imapclient_tracing")
    if shipped:
        out.append(
            (
                "    imapclient as shipped (imaplib tracing)",
                f"{shipped['mails_per_s']:.1f} mails/s, {shipped['mb_per_s']:.0f} MB/s",
                "",
                "",
            )
        )
    out += _peer_rows(results)
    out += _end_to_end_rows(results, mails, mb)
    sqlite = results.get("sqlite")
    if sqlite:
        full = mails >= BACKLOG_TARGET
        target = "< 300 MB" + (
            "" if full else f" (for {BACKLOG_TARGET:,}: --mails {BACKLOG_TARGET})"
        )
        out.append(
            (
                f"(3) peak memory, {mails:,}-mail backlog",
                _memory(sqlite),
                target,
                _verdict(peak_memory(sqlite) < 300) if full else "",
            )
        )
    if "baseline" in results:
        out.append(("(3) peak memory, empty mailbox", _memory(results["baseline"]), "", ""))
    big = results.get("big_mail")
    if big:
        times = peak_memory(big) / big["mail_mb"]
        out.append(
            (
                f"(3) peak memory, one {big['mail_mb']:.0f} MB mail",
                f"{_memory(big)} = {times:.1f} x the mail",
                "< 4 x the mail",
                _verdict(times < 4),
            )
        )
        parts = big.get("peak_tree_pss_parts_mb")
        if parts:
            shares = ", ".join(f"{role} {mb:.0f}" for role, mb in parts.items())
            out.append(("    at that peak, each process (PSS)", shares, "", ""))
    out += _idle_rows(results.get("idle") or [])
    latency = results.get("latency")
    if latency:
        out.append(
            (
                f"(5) reply latency, IDLE ({latency['mails']} mails)",
                f"p50 {latency['p50_s']:.2f} s, p95 {latency['p95_s']:.2f} s, "
                f"max {latency['max_s']:.2f} s",
                "p95 < 2 s",
                _verdict(latency["p95_s"] < 2),
            )
        )
    settled = results.get("settling")
    if settled:
        lone = settled["lone_missing_pdf_s"]
        out.append(
            (
                f"(5b) Word, then PDF 1 s later ({settled['pairs']} pairs)",
                f"{settled['letters_for_pairs']} letters; after the PDF p50 "
                f"{settled['p50_s']:.2f} s, max {settled['max_s']:.2f} s; a lone mail "
                f"missing its PDF {f'{lone:.0f} s' if lone is not None else 'not timed'} "
                f"(window {settled['window_s']:.0f} s)",
                "one letter a pair",
                _verdict(settled["letters_for_pairs"] == settled["pairs"]),
            )
        )
    return out


def stage_rows(results: dict[str, Any]) -> list[tuple[str, str, str, str]]:
    found = results.get("stages")
    if not found:
        return []
    ceiling = results["ceiling"]
    out = [
        (f"where a mail's time goes ({found['mean_mail_mb']} MB mails)", "ms per mail", "", ""),
        ("  the ceiling: fetch one mail", f"{1000 / ceiling['mails_per_s']:.1f}", "", ""),
    ]
    out += [(f"  {stage}", f"{ms:.1f}", "", "") for stage, ms in found["ms_per_mail"].items()]
    out.append(("  fork of the measuring process (wall)", f"{found['fork_ms']:.1f}", "", ""))
    return out


def table(results: dict[str, Any]) -> str:
    body = rows(results)
    head = ("measurement", "figure", "target", "")
    widths = [max(len(r[i]) for r in [head, *body]) for i in range(4)]
    line = "  ".join("-" * w for w in widths)
    machine = results["machine"]
    title = (
        f"mailbot benchmark, {results['started']}: {machine['nproc']} CPUs, "
        f"{machine['ram_gb']} GB, "
        f"Python {machine['python']}, {machine['dovecot'] or 'Dovecot ?'}"
    )
    text = [title, "", "  ".join(h.ljust(w) for h, w in zip(head, widths, strict=True)), line]
    text += ["  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip() for r in body]
    extra = stage_rows(results)
    if extra:
        width = max(len(r[0]) for r in extra)
        text += ["", *(f"{r[0].ljust(width)}  {r[1]:>11}" for r in extra)]
    load = results["machine"].get("load_average")
    if load:
        after = results.get("load_average_after")
        text += [
            "",
            f"load average before {load[0]:.2f}" + (f", after {after[0]:.2f}" if after else ""),
        ]
    return "\n".join(text)
