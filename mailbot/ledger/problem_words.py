"""Short words for each problem code, Chinese then English, for the log and the export.

The applicant reads the full message of each problem (mailbot.judge.verdict.Problem);
the secretariat's log has room for a few words a column. A code not listed
here (a new check, an old record) is shown as it is rather than dropped.
"""

from __future__ import annotations

from collections.abc import Iterable

PROBLEM_WORDS: dict[str, tuple[str, str]] = {
    "subject_format": ("主题格式", "subject format"),
    "attachment_name": ("文件名不符", "file misnamed"),
    "attachment_name_suffix": ("文件名带附注", "name with remark"),
    "missing_word": ("缺 Word", "Word missing"),
    "missing_pdf": ("缺盖章 PDF", "stamped PDF missing"),
    "pdf_ambiguous": ("多个 PDF 待确认", "which PDF unclear"),
    "attachment_empty": ("空文件", "empty file"),
    "attachment_too_large": ("附件过大", "file too large"),
    "supporting_material_missing": ("缺证明材料", "no supporting material"),
    "late": ("逾期", "late"),
    "auto_reply": ("自动回复", "auto-reply"),
    "bounce": ("退信", "bounce"),
    "bulk": ("群发邮件", "bulk mail"),
    "no_sender": ("无发件人", "no sender"),
    "read_receipt": ("已读回执", "read receipt"),
    "recall": ("撤回通知", "recall notice"),
    "abuse_report": ("投诉报告", "abuse report"),
    "own_address": ("本机构地址", "own address"),
    "own_domain": ("本机构域名", "own domain"),
    "calendar_invitation": ("日历邀请", "calendar invitation"),
    "loop": ("回复循环", "mail loop"),
    "several_senders": ("多个发件人", "several senders"),
    "denied_sender": ("拒收发件人", "denied sender"),
    "auth_failed": ("认证失败", "authentication failed"),
    "duplicate": ("重复邮件", "duplicate"),
    "unparseable": ("无法识别", "unparseable"),
    "too_complex": ("过于复杂", "too complex"),
    "unjudged": ("无法判断", "not judged"),
    "thread_followup": ("往来邮件", "follow-up in thread"),
    "late_mail": ("收到逾期邮件", "late mail came"),
    "archive_attachment": ("压缩包", "archive"),
    "large_attachment_link": ("超大附件链接", "download link"),
    "received_at_unknown": ("收到时间不明", "receipt time unknown"),
    "word_unreadable": ("Word 无法读取", "Word unreadable"),
    "pdf_unreadable": ("PDF 无法读取", "PDF unreadable"),
    "budget_out_of_range": ("经费超范围", "funding out of range"),
    "duration_too_long": ("期限不符", "period out of range"),
    "partners_too_few": ("合作单位不足", "too few partners"),
    "foreign_partners_too_few": ("境外合作不足", "too few foreign partners"),
    "focus_area": ("资助领域", "focus area"),
    "legacy_doc": ("旧版 .doc", "legacy .doc"),
    "form_field_missing": ("表格缺项", "form field missing"),
    "lead_not_cas": ("牵头单位非中科院", "lead not CAS"),
    "form_mismatch": ("表格与主题不符", "form differs from subject"),
    "pi_ongoing_project": ("负责人有在研项目", "PI leads ongoing project"),
    "same_files_as": ("与其他申请文件相同", "same files as another"),
    "seal_not_found": ("未见公章", "no seal seen"),
    "scan_not_colour": ("黑白扫描", "black-and-white scan"),
    "seal_unchecked": ("公章未核对", "seal not checked"),
}


def problem_words(codes: Iterable[str]) -> str:
    """Each code once, in the order found, as "缺 Word Word missing; 逾期 late"."""
    words = []
    for code in dict.fromkeys(codes):
        zh, en = PROBLEM_WORDS.get(code, (code, ""))
        words.append(f"{zh} {en}".strip())
    return "; ".join(words)
