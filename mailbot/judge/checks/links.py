"""large_attachment_link: a download link in the body where the Word or PDF should be attached.

QQ Mail, NetEase, Coremail, Outlook and Gmail send a file that is too large
as a link ("超大附件", "云附件", OneDrive, Google Drive). Such links expire and
mailbot never follows them. When the proposal is incomplete (the Word or the
PDF missing, or misnamed: the agreement PDF taken for the scan) and the body,
or a forwarded mail's body, shows such a link, the applicant is asked to
attach the files. Which services and what their links look like is rules
data (``[[links.services]]``).
"""

from __future__ import annotations

import re
from collections.abc import Iterator

from mailbot.calls import LinkService
from mailbot.judge.checks.case import Case
from mailbot.judge.verdict import Problem, Severity
from mailbot.mail.message import FORWARDED

# A notice of a large attachment stands near the top; a hostile body is not read whole.
MAX_BODY = 500_000


def check_links(case: Case) -> Iterator[Problem]:
    if case.files.complete:
        return
    services = link_services(case)
    if not services:
        return
    limits = case.call.attachments
    per_file, total = _mb(limits.max_file_size), _mb(limits.max_total_size)
    yield Problem(
        "large_attachment_link",
        Severity.ERROR,
        f"邮件正文中是{'、'.join(s.zh for s in services)}的下载链接，而不是附件："
        "这类链接会过期，mailbot 和秘书处不会从链接下载文件。"
        "请将建议书 Word 文件和签字盖章的 PDF 扫描件直接作为附件发送"
        f"（单个文件不超过 {per_file}，合计不超过 {total}；PDF 过大时请降低扫描分辨率）。",
        f"The mail holds {', '.join(s.en for s in services)} download links instead of "
        "attachments: such links expire, and neither mailbot nor the secretariat downloads "
        "files from them. Please attach the Word proposal and the signed PDF scan directly "
        f"to the mail (at most {per_file} per file and {total} in all; if the PDF is too "
        "large, scan it at a lower resolution).",
    )


def link_services(case: Case) -> list[LinkService]:
    """The services whose links or notices the mail's bodies show, in the rules' order."""
    message = case.message
    bodies = [message.text, message.html]
    bodies += [c.text for c in message.containers if c.kind == FORWARDED]
    body = "\n".join(b[:MAX_BODY] for b in bodies if b)
    return [
        service
        for service in case.call.links.services
        if any(re.search(pattern, body, re.IGNORECASE) for pattern in service.patterns)
    ]


def _mb(size: int) -> str:
    return f"{size / 1024 / 1024:.0f} MB"
