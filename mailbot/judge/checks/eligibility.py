"""The eligibility check: the PI already leads an ongoing CAS or ANSO joint project.

The call's rules list those PIs ([eligibility] ongoing_projects); a mail whose
PI and institution (any of the institute's names, mailbot.institutes) match
an entry is a warning for the secretariat, who decides. The applicant's reply
leaves it out unless the rules say otherwise (mailbot.replies.render).
"""

from __future__ import annotations

from collections.abc import Iterator

from mailbot.calls import Call, normalise_name
from mailbot.institutes import directory
from mailbot.judge.checks.case import Case
from mailbot.judge.verdict import Problem, Severity

CODE = "pi_ongoing_project"


def check_eligibility(case: Case) -> Iterator[Problem]:
    projects = case.call.ongoing_projects
    institution, pi = case.identity
    if not projects or not institution or not pi:
        return
    names = directory(case.call)
    wanted = (normalise_name(names.canonical(institution)), normalise_name(pi))
    for project in projects:
        listed = (normalise_name(names.canonical(project.institution)), normalise_name(project.pi))
        if listed == wanted:
            what_zh = f"「{project.project}」" if project.project else ""
            what_en = f' "{project.project}"' if project.project else ""
            yield Problem(
                CODE,
                Severity.WARNING,
                f"项目负责人{pi}（{names.canonical(institution)}）正在主持在研的中国科学院国际伙伴"
                f"计划或 ANSO 联合研究项目{what_zh}，按本专项规定不得再作为项目负责人申请；"
                "秘书处将核实。",
                f"The PI {pi} ({names.canonical(institution)}) leads an ongoing CAS "
                f"international-partnership or ANSO joint project{what_en}; the call does not "
                "allow such a PI to lead a new proposal. The secretariat will check.",
            )
            return


def secretariat_only(call: Call) -> frozenset[str]:
    """Codes the applicant's reply leaves out under the call's rules."""
    return frozenset() if call.eligibility.tell_applicant else frozenset({CODE})
