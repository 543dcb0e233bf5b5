"""Mail that must never be answered: auto-replies, bounces, bulk mail, no sender."""

from __future__ import annotations

import re
from collections.abc import Iterator

from mailbot.checks.case import Case
from mailbot.verdict import Problem, Severity

_DAEMONS = re.compile(r"^(mailer-daemon|postmaster)$", re.IGNORECASE)


def check_autoreply(case: Case) -> Iterator[Problem]:
    """One problem per reason, each naming every header that shows it."""
    evidence: dict[str, list[str]] = {}
    for code, why in _signs(case):
        evidence.setdefault(code, []).append(why)
    for code, whys in evidence.items():
        yield _info(code, "; ".join(whys))


def _signs(case: Case) -> Iterator[tuple[str, str]]:
    message = case.message
    auto_submitted = (message.header("auto-submitted") or "").split(";")[0].strip().lower()
    if auto_submitted and auto_submitted != "no":
        yield ("auto_reply", f"Auto-Submitted: {auto_submitted}")
    for name in ("x-autoreply", "x-autorespond"):
        if message.header(name) is not None:
            yield ("auto_reply", f"{name}: {message.header(name)}")

    report_type = _report_type(case)
    if report_type == "delivery-status":
        yield ("bounce", "multipart/report; report-type=delivery-status")
    elif report_type is not None:
        yield ("auto_reply", f"multipart/report; report-type={report_type}")
    if message.sender and _DAEMONS.match(message.sender.rpartition("@")[0]):
        yield ("bounce", f"From: {message.sender}")
    return_path = message.header("return-path")
    if return_path is not None and re.fullmatch(r"<\s*>", return_path.strip()):
        yield ("bounce", "Return-Path: <>")

    precedence = (message.header("precedence") or "").strip().lower()
    if precedence in ("bulk", "junk", "list"):
        yield ("bulk", f"Precedence: {precedence}")
    if message.header("list-id") is not None:
        yield ("bulk", f"List-Id: {message.header('list-id')}")

    if message.sender is None:
        yield ("no_sender", f"From: {message.header('from') or '(none)'}")


def _report_type(case: Case) -> str | None:
    if case.message.content_type != "multipart/report":
        return None
    content_type = case.message.header("content-type") or ""
    match = re.search(r"report-type\s*=\s*\"?([\w.-]+)", content_type, re.IGNORECASE)
    return match.group(1).lower() if match else "unknown"


_WHY = {
    "auto_reply": ("这是一封自动回复，不予答复", "This is an automatic reply and gets no answer"),
    "bounce": (
        "这是一封退信或投递报告，不予答复",
        "This is a bounce or delivery report and gets no answer",
    ),
    "bulk": (
        "这是群发或邮件列表邮件，不予答复",
        "This is bulk or mailing-list mail and gets no answer",
    ),
    "no_sender": (
        "邮件没有可用的发件人地址，无法答复",
        "The mail has no usable sender address to answer",
    ),
}


def _info(code: str, evidence: str) -> Problem:
    zh, en = _WHY[code]
    return Problem(code, Severity.INFO, f"{zh}（{evidence}）。", f"{en} ({evidence}).")
