"""The desk's words, Chinese first and English beside it, as in the replies."""

from __future__ import annotations

from mailbot.ledger import labels as ledger_labels
from mailbot.ledger.attention import NEEDS_A_PERSON, TROUBLED_LETTERS

STATUSES = ledger_labels.STATUSES  # one table for the desk, the CLI and the digest
# Why a mail or a letter needs a person (the ledger's one definition).
ATTENTION = NEEDS_A_PERSON
LETTER_TROUBLES = TROUBLED_LETTERS

ROLES: dict[str, tuple[str, str]] = {
    "word": ("建议书 Word 文件", "Word proposal"),
    "pdf": ("签字盖章 PDF", "Signed PDF"),
    "supporting": ("证明材料", "Supporting material"),
}

KINDS: dict[str, tuple[str, str]] = {
    "new": ("首次提交", "new"),
    "resubmission": ("重新提交", "resubmission"),
    "completion": ("补交", "completion"),
}

REPLY_STATES: dict[str, tuple[str, str]] = {
    "pending": ("待发送", "pending"),
    "sending": ("发送中", "sending"),
    "sent": ("已发送", "sent"),
    "uncertain": ("发送中断，未知", "uncertain"),
    "suppressed": ("未发送（超出限额）", "suppressed"),
    "failed": ("发送失败", "failed"),
}

ACTIONS: dict[str, tuple[str, str]] = {
    "accept_by_decision": ("决定受理", "Accepted by decision"),
    "withdraw": ("撤回", "Withdrawn"),
    "note": ("备注", "Note"),
    "resend": ("重发回复", "Reply resent"),
    "write": ("致函申请人", "Wrote to the applicant"),
}

MAIL_KINDS: dict[str, tuple[str, str]] = {
    "flagged": ("需留意（退信、认证失败）", "Flagged (bounces, failed authentication)"),
    "unparseable": ("无法识别", "Unparseable"),
    "ignored": ("不予答复", "Ignored"),
}

SEVERITIES: dict[str, tuple[str, str]] = {
    "error": ("错误", "error"),
    "warning": ("提醒", "warning"),
    "info": ("说明", "info"),
}

NOTICES: dict[str, tuple[str, str]] = {
    "accepted": ("已记录：决定受理。", "Recorded: accepted by decision."),
    "withdrawn": ("已记录：撤回。", "Recorded: withdrawn."),
    "noted": ("备注已保存。", "Note saved."),
    "resent": ("回复已重新放入发件箱。", "The reply is queued again."),
    "written": ("信件已放入发件箱。", "The letter is queued."),
}


def label(table: dict[str, tuple[str, str]], key: str | None) -> tuple[str, str]:
    """(Chinese, English) for a key; a key the table lacks is shown as itself."""
    if key is None or key == "":
        return ("-", "")
    return table.get(key, (key, ""))
