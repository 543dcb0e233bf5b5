"""The form checks: the Word proposal read against what the call funds, and the PDF scan."""

from __future__ import annotations

from collections.abc import Iterator

from mailbot.calls import FormLimits, FormSection, normalise_name
from mailbot.documents.form import FormFacts, months_between, squash
from mailbot.institutes import directory
from mailbot.judge.checks.case import Case
from mailbot.judge.readings.files import label
from mailbot.judge.verdict import Problem, Severity

FIELD_NAMES = {
    "title": ("项目名称", "Project Title"),
    "institution": ("牵头单位", "Lead Institution"),
    "pi": ("项目负责人", "Principal Investigator"),
    "budget": ("申请经费（万元）", "Requested Funding (10k CNY)"),
    "period": ("执行期限", "Project Period"),
    "focus_area": ("资助领域", "Focus Area"),
}


def check_documents(case: Case) -> Iterator[Problem]:
    reading = case.documents
    if reading.word_problem is not None:
        name = label(case.files.word.attachment) if case.files.word.attachment else ""
        yield Problem(
            "word_unreadable",
            Severity.ERROR,
            f"建议书 Word 文件「{name}」无法读取：{reading.word_problem.zh}",
            f'The Word proposal "{name}" cannot be read: {reading.word_problem.en}',
            letter=(
                f"建议书 Word 文件无法读取：{reading.word_problem.zh}",
                f"The Word proposal cannot be read: {reading.word_problem.en}",
            ),
        )
    if reading.legacy_doc:
        yield Problem(
            "legacy_doc",
            Severity.WARNING,
            "建议书为旧版 .doc 格式，内容未能自动核对；下次请使用 .docx 格式。",
            "The proposal is in the old .doc format, so its content was not checked; "
            "please use .docx next time.",
        )
    if reading.pdf_problem is not None:
        name = label(case.files.pdf.attachment) if case.files.pdf.attachment else ""
        yield Problem(
            "pdf_unreadable",
            Severity.ERROR,
            f"PDF 文件「{name}」无法读取：{reading.pdf_problem.zh}",
            f'The PDF "{name}" cannot be read: {reading.pdf_problem.en}',
            letter=(
                f"PDF 扫描件无法读取：{reading.pdf_problem.zh}",
                f"The PDF scan cannot be read: {reading.pdf_problem.en}",
            ),
        )
    if reading.form is not None and case.call.form is not None:
        yield from _form_problems(case, reading.form)


def _form_problems(case: Case, form: FormFacts) -> Iterator[Problem]:
    rules = case.call.form
    assert rules is not None
    yield from _missing_fields(form)
    yield from _budget_and_period(form, rules.limits)
    yield from _focus_and_partners(form, rules)
    yield from _lead_and_names(case, form)


def _missing_fields(form: FormFacts) -> Iterator[Problem]:
    """A field of the form left empty, or written so that it cannot be read."""
    for key in ("title", "institution", "pi", "budget", "period"):
        value = {
            "title": form.title,
            "institution": form.institution,
            "pi": form.pi,
            "budget": form.budget_wan,
            "period": form.period,
        }[key]
        if value is None:
            zh, en = FIELD_NAMES[key]
            written = form.raw.get(key)
            why_zh = f"无法识别：「{written}」" if written else "未填写或未找到"
            why_en = f"cannot be read: {written!r}" if written else "is empty or missing"
            yield Problem(
                "form_field_missing",
                Severity.WARNING,
                f"建议书中的「{zh}」{why_zh}。",
                f'The form\'s "{en}" {why_en}.',
                letter=(
                    f"建议书中的「{zh}」{'无法识别' if written else why_zh}。",
                    f'The form\'s "{en}" {"cannot be read" if written else why_en}.',
                ),
            )


def _budget_and_period(form: FormFacts, limits: FormLimits) -> Iterator[Problem]:
    """The funding asked for and the project's period, against what the call funds."""
    if form.budget_wan is not None and not (
        limits.budget_min_wan <= form.budget_wan <= limits.budget_max_wan
    ):
        yield Problem(
            "budget_out_of_range",
            Severity.ERROR,
            f"申请经费为 {form.budget_wan:g} 万元，本专项资助额度为每项 "
            f"{limits.budget_min_wan:g}–{limits.budget_max_wan:g} 万元。",
            f"The requested funding is {form.budget_wan:g} (10k CNY); the call funds "
            f"{limits.budget_min_wan:g}–{limits.budget_max_wan:g} (10k CNY) per project.",
        )
    if form.period is not None:
        start, end = form.period
        months = months_between(form.period)
        if months > limits.max_months or start < limits.period_start or end > limits.period_end:
            yield Problem(
                "duration_too_long",
                Severity.ERROR,
                f"执行期限为 {start} 至 {end}（{months} 个月）；"
                f"项目执行期不超过 {limits.max_months} 个月，"
                f"且须在 {limits.period_start} 至 {limits.period_end} 之间。",
                f"The project period is {start} to {end} ({months} months); it may last at most "
                f"{limits.max_months} months, within {limits.period_start} to {limits.period_end}.",
            )


def _focus_and_partners(form: FormFacts, rules: FormSection) -> Iterator[Problem]:
    """One focus area ticked, and enough partners, enough of them abroad."""
    limits = rules.limits
    if form.focus_area is None:
        areas_zh = "、".join(a.zh for a in rules.focus_areas)
        areas_en = ", ".join(a.en for a in rules.focus_areas)
        several = form.focus_ticked > 1
        yield Problem(
            "focus_area",
            Severity.ERROR,
            f"{'资助领域选择了多个' if several else '未选择资助领域'}；请在{areas_zh}中选择一个。",
            f"{'Several focus areas are chosen' if several else 'No focus area is chosen'}; "
            f"please choose one of: {areas_en}.",
        )
    total = len(form.partners)
    foreign = sum(1 for p in form.partners if p.foreign)
    if total < limits.min_partners:
        where = "" if form.partner_table else "（未找到合作单位表）"
        where_en = "" if form.partner_table else " (no partner table was found)"
        yield Problem(
            "partners_too_few",
            Severity.ERROR,
            f"合作单位 {total} 家{where}；本专项要求至少 {limits.min_partners} 家合作单位。",
            f"{total} partner institutions are listed{where_en}; the call requires at least "
            f"{limits.min_partners}.",
        )
    if foreign < limits.min_foreign_partners:
        yield Problem(
            "foreign_partners_too_few",
            Severity.ERROR,
            f"境外合作单位 {foreign} 家；"
            f"本专项要求至少 {limits.min_foreign_partners} 家境外合作单位。",
            f"{foreign} partners are abroad; the call requires at least "
            f"{limits.min_foreign_partners} partners outside China.",
        )


def _lead_and_names(case: Case, form: FormFacts) -> Iterator[Problem]:
    if form.institution is not None and not is_cas_institute(form.institution, case):
        yield Problem(
            "lead_not_cas",
            Severity.WARNING,
            f"牵头单位「{form.institution}」未被识别为中国科学院院属研究机构。",
            f'The lead institution "{form.institution}" is not recognised as an institute of '
            "the Chinese Academy of Sciences.",
            letter=(
                "建议书中填写的牵头单位未被识别为中国科学院院属研究机构。",
                "The lead institution the form names is not recognised as an institute of the "
                "Chinese Academy of Sciences.",
            ),
        )
    institution, pi = case.identity
    pairs = (("institution", form.institution, institution), ("pi", form.pi, pi))
    for key, in_form, in_subject in pairs:
        if in_form and in_subject and normalise_name(in_form) != normalise_name(in_subject):
            zh, en = FIELD_NAMES[key]
            yield Problem(
                "form_mismatch",
                Severity.WARNING,
                f"建议书中的「{zh}」为「{in_form}」，与邮件主题中的「{in_subject}」不一致。",
                f'The form\'s "{en}" reads "{in_form}", the subject "{in_subject}".',
                letter=(
                    f"建议书中的「{zh}」与邮件主题中的不一致。",
                    f"The form's \"{en}\" differs from the subject's.",
                ),
            )


def is_cas_institute(name: str, case: Case) -> bool:
    if directory(case.call).find(name) is not None:  # any of its names (植物所, former names)
        return True
    key = squash(name).replace("中科院", "中国科学院")
    if "chineseacademyofsciences" in key:
        return True
    for entry in case.call.institution_lists.cas_institutes:
        known = squash(entry)
        short = known.removeprefix("中国科学院")
        if key in (known, short, "中国科学院" + short) or (
            len(short) >= 4 and key.endswith(short) and "中国科学院" in key
        ):
            return True
    return False
