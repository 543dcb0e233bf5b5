"""The same files twice: a Word or PDF that already came as another submission's Word or PDF.

Two institution+PI pairs sending the very same proposal file (by sha256) is
something a person must look at: the mail gets the info ``same_files_as``
naming the other submission's reference, and mailbot.ledger.attention counts
it as needing a person. The applicant's reply does not mention it (info).
"""

from __future__ import annotations

import dataclasses

from sqlalchemy import select
from sqlalchemy.orm import Session

from mailbot.calls import Call
from mailbot.judge.verdict import Problem, Role, Severity, Verdict
from mailbot.mail.names import shown
from mailbot.store.models import Attachment, Mail, Submission

CODE = "same_files_as"
PROPOSAL_ROLES = (Role.WORD, Role.PDF)


def same_files_as(
    session: Session, call: Call, submission: Submission | None, verdict: Verdict
) -> Problem | None:
    """The finding when a Word or PDF of ``verdict`` came with another submission's mail.

    ``submission`` is the mail's own, None when the mail is about to make it.
    """
    files = {a.sha256: a.filename for a in verdict.attachments if a.role in PROPOSAL_ROLES}
    if not files:
        return None
    rows = session.execute(
        select(Submission.reference, Attachment.sha256)
        .join(Mail, Mail.submission_id == Submission.id)
        .join(Attachment, Attachment.mail_id == Mail.id)
        .where(
            Submission.call_id == call.id,
            *([Submission.id != submission.id] if submission is not None else []),
            Attachment.sha256.in_(sorted(files)),
            Attachment.role.in_([str(role) for role in PROPOSAL_ROLES]),
        )
        .order_by(Submission.seq)
    ).all()
    if not rows:
        return None
    references = list(dict.fromkeys(reference for reference, _ in rows))
    names = list(dict.fromkeys(shown(files[sha]) for _, sha in rows))
    shown_zh, shown_en = "、".join(references), ", ".join(references)
    files_zh, files_en = "、".join(f"「{n}」" for n in names), ", ".join(f'"{n}"' for n in names)
    return Problem(
        CODE,
        Severity.INFO,
        f"文件{files_zh}与申请 {shown_zh} 的文件完全相同（SHA-256 一致），需由工作人员核实。",
        f"The file {files_en} is identical (same SHA-256) to a file of {shown_en}; "
        "a person should check.",
    )


def note_same_files(
    session: Session, call: Call, mail: Mail, submission: Submission | None, verdict: Verdict
) -> Verdict:
    """The verdict, and the mail's stored problems, with ``same_files_as`` added where due."""
    problem = same_files_as(session, call, submission, verdict)
    if problem is None:
        return verdict
    mail.problems = [*mail.problems, problem.as_json()]
    return dataclasses.replace(verdict, problems=(*verdict.problems, problem))
