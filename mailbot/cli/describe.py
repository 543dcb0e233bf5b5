"""A verdict and a Word form for a person to read: what `mailbot check` and `show` print."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from mailbot.mail.names import shown

if TYPE_CHECKING:
    from mailbot.calls import Call
    from mailbot.judge.verdict import Verdict

STATUS_ZH = {
    "accepted": "已受理",
    "needs_correction": "需要更正",
    "late": "逾期",
    "ignored": "不予答复",
}


def describe(verdict: Verdict, call: Call) -> str:
    """A verdict for a person to read."""
    when_zh, _ = call.local_text(verdict.received_at)
    lines = [
        f"状态 Status:        {verdict.status}（{STATUS_ZH[str(verdict.status)]}）",
        f"牵头单位 Institution: {verdict.institution or '-'}",
        f"负责人 PI:          {verdict.pi or '-'}",
        f"收到 Received:      {when_zh}",
    ]
    if verdict.problems:
        lines.append("问题 Problems:")
        for problem in verdict.problems:
            lines.append(f"  [{problem.severity}] {problem.code}: {problem.zh}")
            lines.append(f"  {' ' * (len(str(problem.severity)) + 2)} {problem.en}")
    if verdict.form is not None:
        lines.append("建议书 Form:")
        lines.extend(f"  {line}" for line in describe_form(call, verdict.form))
    if verdict.pdf_pages is not None:
        lines.append(f"PDF 页数 PDF pages: {verdict.pdf_pages}")
    if verdict.seal is not None:
        from mailbot.ledger.facts import seal_words

        lines.append("公章 Seal: {} {}".format(*seal_words(verdict.seal)))
    if verdict.attachments:
        lines.append("附件 Attachments:")
        for item in verdict.attachments:
            lines.append(
                f"  {item.role:<10} {shown(item.filename)}  {item.size:,} B  "
                f"sha256 {item.sha256[:16]}…"
            )
    return "\n".join(lines)


def focus_name(call: Call, code: str | None) -> str:
    """A focus area's code as its names, Chinese and English; an unknown code as it is."""
    areas = {a.code: f"{a.zh} {a.en}" for a in call.form.focus_areas} if call.form else {}
    return areas.get(code or "", code or "")


def describe_form(call: Call, form: dict[str, Any]) -> list[str]:
    """What the Word form says, for a person."""
    period = form.get("period") or {}
    partners = form.get("partners") or []
    budget = form.get("budget_wan")
    lines = [
        f"项目名称 Title:      {form.get('title') or '-'}",
        f"资助领域 Focus area: {focus_name(call, form.get('focus_area')) or '-'}",
        f"申请经费 Funding:    {f'{budget:g} 万元 (10k CNY)' if budget is not None else '-'}",
        f"执行期限 Period:     {period.get('start', '-')} – {period.get('end', '-')}",
        f"合作单位 Partners:   {len(partners)}, "
        f"境外 abroad {sum(1 for p in partners if p['foreign'])}, "
        f"ANSO {sum(1 for p in partners if p['anso_member'])}",
    ]
    lines += [
        f"  - {p['name']} ({p['country'] or '?'}){' ANSO' if p['anso_member'] else ''}"
        for p in partners
    ]
    return lines
