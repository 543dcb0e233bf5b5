"""archive_attachment: the proposal sent in an archive, or an archive mailbot cannot open.

A .zip is opened when the mail is parsed and its files are judged like any
attachment: a warning says so, and an error lists what the archive held
when the mail still has no Word or no PDF file. An archive that cannot be
opened (.rar, .7z, damaged, password-protected, over the limits) is an error
when the proposal is not complete without it (a file missing or misnamed:
the right one may be inside), a warning otherwise.
"""

from __future__ import annotations

from collections.abc import Iterator

from mailbot.judge.checks.case import Case
from mailbot.judge.readings.files import Pick
from mailbot.judge.verdict import Problem, Severity
from mailbot.mail.containers import TNEF
from mailbot.mail.containers.entries import ENCRYPTED, FORMAT, LIMITS
from mailbot.mail.message import FORWARDED, Container
from mailbot.mail.names import shown, shown_in

SHOWN_ENTRIES = 10  # names listed in a message; the rest are counted


def check_archives(case: Case) -> Iterator[Problem]:
    files = case.files
    kinds = (
        ("建议书 Word 文件", "Word proposal", files.word),
        ("PDF 扫描件", "PDF scan", files.pdf),
    )
    missing = [(zh, en) for zh, en, pick in kinds if pick.attachment is None]
    # Missing or misnamed: an archive not opened may hold the right file.
    wanting = [] if files.complete else [(zh, en) for zh, en, pick in kinds if _wanting(pick)]
    for container in case.message.containers:
        if container.kind in (TNEF, FORWARDED):
            continue  # an envelope the applicant never chose: its files simply count
        if container.opened:
            yield _opened(container, missing)
        else:
            yield _unopened(case, container, wanting)


def _opened(container: Container, missing: list[tuple[str, str]]) -> Problem:
    """An archive unpacked: its files were judged; an error if the proposal is still not there."""
    name = shown_in(container.filename, container.container)
    held_zh, held_en = _listing(container)
    held = len(container.listing)
    if missing:
        missing_zh = "和".join(zh for zh, _en in missing)
        missing_en = " and no ".join(en for _zh, en in missing)
        return Problem(
            "archive_attachment",
            Severity.ERROR,
            f"压缩包「{name}」中没有{missing_zh}；其中有：{held_zh}。"
            "请将建议书 Word 文件和签字盖章的 PDF 扫描件直接作为附件发送，不要压缩。",
            f'The archive "{name}" holds no {missing_en}; it holds: '
            f"{held_en}. Please attach the Word proposal and the signed PDF scan "
            "directly to the mail, not in an archive.",
            letter=(
                f"附件中的 .{container.kind} 压缩包（{held} 个文件）中没有{missing_zh}。"
                "请将建议书 Word 文件和签字盖章的 PDF 扫描件直接作为附件发送，不要压缩。",
                f"The .{container.kind} archive attached ({held} files) holds no {missing_en}. "
                "Please attach the Word proposal and the signed PDF scan directly to the "
                "mail, not in an archive.",
            ),
        )
    return Problem(
        "archive_attachment",
        Severity.WARNING,
        f"压缩包「{name}」已解压，其中的文件已按附件审核：{held_zh}。"
        "下次请直接附上 Word 和 PDF 文件，不要压缩。",
        f'The archive "{name}" was unpacked and its files judged as attachments: '
        f"{held_en}. Next time please attach the Word and PDF files directly.",
        letter=(
            f"附件中的 .{container.kind} 压缩包已解压，其中的 {held} 个文件已按附件审核。"
            "下次请直接附上 Word 和 PDF 文件，不要压缩。",
            f"The .{container.kind} archive attached was unpacked and its {held} files judged "
            "as attachments. Next time please attach the Word and PDF files directly.",
        ),
    )


def _unopened(case: Case, container: Container, wanting: list[tuple[str, str]]) -> Problem:
    """An archive not opened: an error when the proposal may be in it, else a warning."""
    name = shown_in(container.filename, container.container)
    why_zh, why_en = _refusal(case, container)
    # The letter names neither the archive nor what it holds: the sender chose those names.
    kind = f".{container.kind} "
    seen_zh, seen_en = "", ""
    if container.listing:
        held_zh, held_en = _listing(container)
        seen_zh, seen_en = f"（其中有：{held_zh}）", f" (it holds: {held_en})"
    if wanting:
        wanting_zh = "和".join(zh for zh, _en in wanting)
        wanting_en = " or ".join(en for _zh, en in wanting)
        return Problem(
            "archive_attachment",
            Severity.ERROR,
            f"附件「{name}」是压缩包，{why_zh}{seen_zh}，其中的文件无法审核；"
            f"邮件中没有找到命名正确的{wanting_zh}。"
            "请将建议书 Word 文件和签字盖章的 PDF 扫描件直接作为附件发送，不要压缩。",
            f'The attachment "{name}" is an archive: {why_en}{seen_en}, so its files '
            f"cannot be judged, and no correctly named {wanting_en} "
            "was found in the mail. "
            "Please attach the Word proposal and the signed PDF scan directly to the "
            "mail, not in an archive.",
            letter=(
                f"附件中有一个{kind}压缩包，{why_zh}，其中的文件无法审核；"
                f"邮件中没有找到命名正确的{wanting_zh}。"
                "请将建议书 Word 文件和签字盖章的 PDF 扫描件直接作为附件发送，不要压缩。",
                f"An attachment is a {kind}archive: {why_en}, so its files cannot be judged, "
                f"and no correctly named {wanting_en} was found in the mail. Please attach "
                "the Word proposal and the signed PDF scan directly to the mail, not in an "
                "archive.",
            ),
        )
    return Problem(
        "archive_attachment",
        Severity.WARNING,
        f"附件「{name}」是压缩包，{why_zh}{seen_zh}，其中的材料未经审核。"
        "下次请直接附上文件，不要压缩。",
        f'The attachment "{name}" is an archive: {why_en}{seen_en}, so the material '
        "in it was not checked. Next time please attach the files directly.",
        letter=(
            f"附件中有一个{kind}压缩包，{why_zh}，其中的材料未经审核。下次请直接附上文件，不要压缩。",
            f"An attachment is a {kind}archive: {why_en}, so the material in it was not "
            "checked. Next time please attach the files directly.",
        ),
    )


def _wanting(pick: Pick) -> bool:
    return pick.attachment is None or pick.fit == "misnamed"


def _refusal(case: Case, container: Container) -> tuple[str, str]:
    """Why the archive was not opened: (Chinese, English)."""
    limits = case.call.documents
    if container.refused == FORMAT:
        return (
            f"mailbot 只能打开 .zip 压缩包，无法打开 .{container.kind} 格式",
            f"mailbot opens .zip archives only, not .{container.kind}",
        )
    if container.refused == ENCRYPTED:
        return "压缩包设有密码，无法打开", "it is protected by a password"
    if container.refused == LIMITS:
        size = f"{limits.max_archive_uncompressed / 2**20:.0f} MB"
        return (
            f"其中文件过多或解压后过大（上限为 {limits.max_archive_entries} 个文件、{size}）",
            f"it holds too many files or unpacks to too much "
            f"(the limits are {limits.max_archive_entries} files, {size})",
        )
    return "压缩包已损坏，无法打开", "it is damaged and cannot be opened"  # DAMAGED


def _listing(container: Container) -> tuple[str, str]:
    """The names found in an archive, shown safely; the first few, then how many more."""
    if not container.listing:
        return "（空）", "nothing"
    names = [shown(name, 80) for name in container.listing[:SHOWN_ENTRIES]]
    more = len(container.listing) - len(names)
    zh = (
        "「" + "」「".join(names) + "」" + (f"等共 {len(container.listing)} 个文件" if more else "")
    )
    en = '"' + '", "'.join(names) + '"' + (f" and {more} more" if more else "")
    return zh, en
