"""The desk's words, Chinese first and English beside it, as in the replies."""

from __future__ import annotations

STATUSES: dict[str, tuple[str, str]] = {
    "accepted": ("已受理", "Accepted"),
    "accepted_by_decision": ("决定受理", "Accepted by decision"),
    "needs_correction": ("需要更正", "Needs correction"),
    "late": ("逾期", "Late"),
    "withdrawn": ("已撤回", "Withdrawn"),
    "ignored": ("不予答复", "Ignored"),
}

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
    "handed": ("已交给邮件服务器", "handed over"),
    "bounced": ("被退回", "bounced"),
}

ACTIONS: dict[str, tuple[str, str]] = {
    "accept_by_decision": ("决定受理", "Accepted by decision"),
    "withdraw": ("撤回", "Withdrawn"),
    "note": ("备注", "Note"),
    "resend": ("重发回复", "Reply resent"),
    "write": ("致函申请人", "Wrote to the applicant"),
    "attach_version": ("关联为新版本", "Attached as a version"),
    "attach_supporting": ("关联为补充邮件", "Attached as a supporting mail"),
    "mail_handled": ("标记为已处理", "Marked handled"),
    "mail_reopened": ("重新打开", "Reopened"),
    "answer_mail": ("回复发件人", "Answered the sender"),
    "outbox_resend": ("重发信件", "Letter sent again"),
    "letter_dealt_with": ("信件问题已处理", "Letter dealt with"),
}

# The outbox page's filters (mailbot.web.outbox_desk.STATE_GROUPS).
OUTBOX_GROUPS: dict[str, tuple[str, str]] = {
    "waiting": ("待发送", "Waiting"),
    "sent": ("已发送", "Sent"),
    "failed": ("发送失败", "Failed"),
    "uncertain": ("发送中断，未知", "Uncertain"),
    "bounced": ("被退回", "Bounced"),
    "suppressed": ("未发送（超出限额）", "Suppressed"),
}

MAIL_KINDS: dict[str, tuple[str, str]] = {
    "flagged": ("需留意（退信、认证失败）", "Flagged (bounces, failed authentication)"),
    "unparseable": ("无法识别", "Unparseable"),
    "ignored": ("不予答复", "Ignored"),
}

# Letters answering other mail (templates/web/other/reply/NAME.*).
ANSWERS: dict[str, tuple[str, str]] = {
    "please_resend": ("请按要求重新发送", "Please send it again as the call asks"),
    "message": ("自由撰写", "A letter of your own"),
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
    "attached": ("邮件已关联到建议书。", "The mail is attached to the submission."),
    "handled": ("邮件已标记为已处理。", "The mail is marked handled."),
    "reopened": ("邮件已重新打开。", "The mail is open again."),
    "answered": ("回复已放入发件箱，邮件已处理。", "The answer is queued; the mail is handled."),
    "outbox_resent": ("信件已作为新信件放入发件箱。", "The letter is queued again."),
    "dealt": ("已记录：信件问题已处理。", "Recorded: the letter is dealt with."),
}


def label(table: dict[str, tuple[str, str]], key: str | None) -> tuple[str, str]:
    """(Chinese, English) for a key; a key the table lacks is shown as itself."""
    if key is None or key == "":
        return ("-", "")
    return table.get(key, (key, ""))
