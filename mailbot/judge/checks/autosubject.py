"""Subjects that machines write: auto-replies, bounces, list notices, receipts, recalls, reports.

Chinese and English as the clients and servers our applicants use write
them (Outlook, Foxmail, QQ Mail, Coremail, NetEase, Exchange, Postfix,
qmail...). A subject alone is weak evidence: the caller reads it only for
mail that brings no proposal.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterator

_SUBJECTS: tuple[tuple[str, re.Pattern[str]], ...] = (
    (
        "auto_reply",
        re.compile(
            r"自动回复|自动答复|自動回覆|自動回復|休假"
            r"|automatic\s+reply|auto[-\s]?reply|auto[-\s]?respon|out\s+of\s+(the\s+)?office",
            re.I,
        ),
    ),
    (
        "bounce",
        re.compile(
            r"系统退信|退信|投递失败|無法投遞|无法投递|未能送达"
            r"|undeliverable|undelivered|delivery\s+status\s+notification"
            r"|mail\s+delivery\s+fail|returned\s+mail|delivery\s+failure|failure\s+notice"
            r"|delivery\s+has\s+failed|delivery\s+notification|non-?deliver|mail\s+system\s+error"
            r"|could\s+not\s+send\s+(your\s+)?message|message\s+not\s+delivered",
            re.I,
        ),
    ),
    (
        "read_receipt",
        re.compile(
            r"已读回执|阅读回执|^\s*回执\s*[:：]|^\s*(已读|未读|read|not\s+read)\s*[:：]"
            r"|read\s+receipt|return\s+receipt",
            re.I,
        ),
    ),
    # A list server's notice that a mail went round in a loop (fml's "Loop Alert").
    ("bulk", re.compile(r"loop\s+alert|mail(ing)?\s+loop|looping\s+mail|邮件循环", re.I)),
    # QQ Mail: 发信方已撤回邮件; Outlook: "Recall: ..." or, in Chinese, "撤回: ...".
    ("recall", re.compile(r"已撤回邮件|^\s*(recall|撤回|召回)\s*[:：]", re.I)),
    (
        "abuse_report",
        re.compile(r"^\s*complaint\s+about\s+message\s+from|abuse\s+report", re.I),
    ),
)


def subject_signs(subject: str) -> Iterator[tuple[str, str]]:
    """(code, evidence) for each kind of machine mail the subject names."""
    text = unicodedata.normalize("NFKC", subject)
    for code, pattern in _SUBJECTS:
        if pattern.search(text):
            yield (code, f"Subject: {_short(subject)}")


def _short(value: str, limit: int = 120) -> str:
    value = " ".join(value.split())
    return value if len(value) <= limit else value[: limit - 1] + "…"
