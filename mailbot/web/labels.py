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
    "superseded": ("未发送（已被后续来信取代）", "superseded"),
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
    "superseded": ("未发送（已被后续来信取代）", "Superseded"),
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

# The acts a person can take on a submission (mailbot.web.actions), as buttons name them.
ACTS: dict[str, tuple[str, str]] = {
    "accept": ("决定受理", "accept by decision"),
    "withdraw": ("撤回", "withdraw"),
    "resend": ("重发当前状态的信件", "resend the letter for the current status"),
    "write": ("致函申请人", "write to the applicant"),
    "note": ("备注", "add a note"),
}

# Why the desk refuses an act, Chinese then English; {blanks} are filled by actions.refusal.
REFUSALS: dict[str, tuple[str, str]] = {
    "refused": ("未执行。", "Not done."),
    "no_reason": ("未执行：请说明理由。", "Not done: please give a reason."),
    "reason_too_long": (
        "未执行：理由不能超过 {max_reason} 个字符。",
        "Not done: the reason is longer than {max_reason} characters.",
    ),
    "not_now": (
        "未执行：该申请当前状态为「{status_zh}」，不能{act_zh}。",
        "Not done: you cannot {act_en} while the status is \u201c{status_en}\u201d.",
    ),
    "no_letter": (
        "未执行：尚未给申请人发过与当前状态「{status_zh}」相符的信件，请先致函申请人。",
        "Not done: no letter telling the applicant the current status (\u201c{status_en}\u201d) "
        "has been sent yet; write one first.",
    ),
    "not_confirmed": (
        "未执行：请先勾选确认。",
        "Not done: please tick the confirmation first.",
    ),
    "no_template": ("未执行：没有这个信件模板。", "Not done: there is no such letter template."),
    "empty_letter": (
        "未发送：主题和正文不能为空。",
        "Not sent: the subject and the text must not be empty.",
    ),
    "letter_too_long": (
        "未发送：正文不能超过 {max_letter} 个字符。",
        "Not sent: the text is longer than {max_letter} characters.",
    ),
    "no_address": (
        "未发送：这份申请没有可回复的地址。",
        "Not sent: this submission has no address to write to.",
    ),
    "mail_taken": (
        "未执行：邮件 #{mail_id} 已属于建议书 {reference}。",
        "Not done: mail #{mail_id} already belongs to {reference}.",
    ),
    "no_submission": (
        "未执行：没有编号为 {reference} 的建议书。",
        "Not done: there is no submission {reference}.",
    ),
    "not_a_version": (
        "未执行：这封邮件不能作为一个版本（例如退信或自动邮件），请作为补充邮件关联。",
        "Not done: this mail cannot be a version (a bounce or an automatic mail, say): "
        "attach it as a supporting mail.",
    ),
    "not_judged_as": (
        "未执行：无法按 {reference} 的单位和负责人判定这封邮件。",
        "Not done: the mail could not be judged as {reference}.",
    ),
    "mail_handled": (
        "未执行：邮件 #{mail_id} 已处理。",
        "Not done: mail #{mail_id} is handled already.",
    ),
    "mail_open": (
        "未执行：邮件 #{mail_id} 尚未处理。",
        "Not done: mail #{mail_id} is open already.",
    ),
    "no_sender_address": (
        "未发送：邮件 #{mail_id} 没有发件人地址。",
        "Not sent: mail #{mail_id} has no address to write to.",
    ),
    "not_resendable": (
        "未执行：只有发送失败、中断或被退回的信件可以重发（#{reply_id}）。",
        "Not done: only a failed, uncertain or bounced letter can be sent again (#{reply_id}).",
    ),
    "nothing_to_deal_with": (
        "未执行：信件 #{reply_id} 没有问题需要处理。",
        "Not done: letter #{reply_id} is {state}, nothing to deal with.",
    ),
    "letter_dealt_with": (
        "未执行：信件 #{reply_id} 已处理。",
        "Not done: letter #{reply_id} is dealt with already.",
    ),
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
