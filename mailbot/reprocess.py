"""Judge every stored mail again under the current rules, and rebuild the versions."""

from __future__ import annotations

from dataclasses import dataclass, field

from sqlalchemy import delete, select

from mailbot.app import App
from mailbot.checks import judge
from mailbot.intake import queue_answer
from mailbot.parsing import parse_message
from mailbot.store.models import Mail, Submission, Version
from mailbot.submissions import problems_json, record


@dataclass
class ReprocessReport:
    total: int = 0
    changed: list[str] = field(default_factory=list)
    replies: int = 0


def reprocess(app: App, *, reply: bool = False) -> ReprocessReport:
    """Replay every mail of the call in receipt order under the current rules.

    Submissions keep their reference numbers; their versions are rebuilt.
    Replies are queued only when asked, and only for mails whose verdict changed.
    """
    report = ReprocessReport()
    with app.db.transaction() as session:
        submissions = session.scalars(
            select(Submission).where(Submission.call_id == app.call.id)
        ).all()
        ids = [s.id for s in submissions]
        session.execute(delete(Version).where(Version.submission_id.in_(ids)))
        # A duplicate stays what it is: another copy of a mail judged here anyway.
        mails = session.scalars(
            select(Mail)
            .where(Mail.call_id == app.call.id, Mail.duplicate_of_id.is_(None))
            .order_by(Mail.received_at, Mail.id)
        ).all()
        for mail in mails:
            mail.submission_id = None
        for submission in submissions:
            submission.current_version = 0
            submission.status = "void"  # stays so if no mail comes back to it
        session.flush()
        session.expire_all()
        for mail in mails:
            message = parse_message(app.blobs.get(mail.raw_sha256), app.call.documents)
            verdict = judge(message, app.call, mail.received_at)
            before = (mail.status, [p["code"] for p in mail.problems])
            mail.status = str(verdict.status)
            mail.problems = problems_json(verdict)
            mail.institution, mail.pi = verdict.institution, verdict.pi
            mail.form, mail.pdf_pages = verdict.form, verdict.pdf_pages
            for stored, role in zip(mail.attachments, verdict.attachments, strict=False):
                stored.role = str(role.role)
            outcome = record(session, app.call, app.blobs, mail, message, verdict)
            report.total += 1
            if before != (mail.status, verdict.codes()):
                report.changed.append(
                    f"mail {mail.id} {mail.sender} {mail.subject[:50]!r}: "
                    f"{before[0]} -> {mail.status}"
                )
                if reply:
                    queued = len(mail.replies)
                    queue_answer(app, session, mail, message, outcome)
                    session.flush()
                    session.refresh(mail)
                    report.replies += len(mail.replies) - queued
    return report
