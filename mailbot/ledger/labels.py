"""Status names in Chinese and English: the desk, the CLI and the digest say the same words."""

from __future__ import annotations

# A submission's status and a mail's verdict share these names.
STATUSES: dict[str, tuple[str, str]] = {
    "accepted": ("已受理", "Accepted"),
    "accepted_by_decision": ("决定受理", "Accepted by decision"),
    "needs_correction": ("需要更正", "Needs correction"),
    "late": ("逾期", "Late"),
    "withdrawn": ("已撤回", "Withdrawn"),
    "ignored": ("不予答复", "Ignored"),
}


def status_label(status: str) -> tuple[str, str]:
    """(Chinese, English) for a status; one the table lacks is shown as itself."""
    return STATUSES.get(status, (status, status))
