"""Submissions and their versions: a new proposal, a resubmission, or a completion.

A submission is keyed by (call, institution, PI), compared as file names
are. Its reference number never changes. A later on-time mail with the same
key becomes the new version and supersedes the older one; a mail that lacks
the Word or the PDF but completes what the current version holds (the stamped
PDF sent separately, say) is judged together with that version's files.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from mailbot.calls import Call, normalise_name
from mailbot.judge.checks import verdict_for
from mailbot.judge.verdict import Role, Status, Verdict
from mailbot.mail.message import Attachment as MailAttachment
from mailbot.mail.message import Message
from mailbot.store.blobs import BlobStore
from mailbot.store.models import Mail, Submission, Version, utcnow

MISSING = {"missing_word", "missing_pdf"}


@dataclass(frozen=True)
class Outcome:
    """What a mail did: the verdict that counts, and the submission it touched."""

    verdict: Verdict  # for a completion: the verdict on the files taken together
    submission: Submission | None
    version: Version | None
    kind: str | None  # new, resubmission, completion; None when no version was made
    replaces: int | None = None  # the version number this one supersedes


def files_json(verdict: Verdict) -> list[dict[str, Any]]:
    return [
        {"filename": a.filename, "role": str(a.role), "size": a.size, "sha256": a.sha256}
        for a in verdict.attachments
    ]


def problems_json(verdict: Verdict) -> list[dict[str, str]]:
    return [p.as_json() for p in verdict.problems]


def judge_again(mail: Mail, verdict: Verdict) -> None:
    """Write a new verdict onto a stored mail: its status, problems, names, form and roles."""
    mail.status = str(verdict.status)
    mail.problems = problems_json(verdict)
    mail.institution, mail.pi = verdict.institution, verdict.pi
    mail.form, mail.pdf_pages, mail.seal = verdict.form, verdict.pdf_pages, verdict.seal
    for stored, role in zip(mail.attachments, verdict.attachments, strict=False):
        stored.role = str(role.role)


def find(session: Session, call: Call, institution: str, pi: str) -> Submission | None:
    return session.scalar(
        select(Submission).where(
            Submission.call_id == call.id,
            Submission.institution_key == normalise_name(institution),
            Submission.pi_key == normalise_name(pi),
        )
    )


def _create(session: Session, call: Call, institution: str, pi: str, status: str) -> Submission:
    seq = (
        session.scalar(select(func.max(Submission.seq)).where(Submission.call_id == call.id)) or 0
    ) + 1
    submission = Submission(
        call_id=call.id,
        seq=seq,
        reference=f"{call.call.reference_prefix}-{seq:04d}",
        institution=institution,
        pi=pi,
        institution_key=normalise_name(institution),
        pi_key=normalise_name(pi),
        status=status,
        current_version=0,
    )
    session.add(submission)
    session.flush()
    return submission


def record(
    session: Session,
    call: Call,
    blobs: BlobStore,
    mail: Mail,
    message: Message,
    verdict: Verdict,
) -> Outcome:
    """Tie a judged mail to its submission, making a version where it counts."""
    if verdict.status is Status.IGNORED or not (verdict.institution and verdict.pi):
        return Outcome(verdict, None, None, None)
    submission = find(session, call, verdict.institution, verdict.pi)
    if verdict.status is Status.LATE:
        # Recorded for the secretariat, but a late mail never replaces a version.
        if submission is None:
            submission = _create(session, call, verdict.institution, verdict.pi, str(Status.LATE))
        mail.submission = submission
        return Outcome(verdict, submission, None, None)

    kind = "new"
    current: Version | None = None
    effective = verdict
    if submission is None:
        submission = _create(session, call, verdict.institution, verdict.pi, str(verdict.status))
    else:
        current = next((v for v in reversed(submission.versions) if not v.superseded), None)
        # A submission known only from a late mail (or rebuilt by a reprocess) has no
        # version yet: this one is its first.
        kind = "resubmission" if current is not None else "new"
        if current is not None and MISSING & set(verdict.codes()):
            together = _judge_together(call, blobs, current, message, verdict)
            if together is not None:
                effective, kind = together, "completion"
    number = submission.current_version + 1
    version = Version(
        submission=submission,
        number=number,
        mail_id=mail.id,
        kind=kind,
        status=str(effective.status),
        problems=problems_json(effective),
        files=files_json(effective),
        received_at=mail.received_at,
        form=effective.form,
        pdf_pages=effective.pdf_pages,
        seal=effective.seal,
    )
    session.add(version)
    if current is not None:
        current.superseded = True
    submission.current_version = number
    submission.status = str(effective.status)
    submission.updated_at = utcnow()
    mail.submission = submission
    session.flush()
    return Outcome(effective, submission, version, kind, current.number if current else None)


def _judge_together(
    call: Call, blobs: BlobStore, current: Version, message: Message, verdict: Verdict
) -> Verdict | None:
    """The verdict on the current version's files plus this mail's, if that fills a gap."""
    earlier = []
    for item in current.files:
        if not blobs.exists(item["sha256"]):
            return None
        data = blobs.get(item["sha256"])
        earlier.append(
            MailAttachment(
                filename=item["filename"],
                content_type="application/octet-stream",
                data=data,
                sha256=item["sha256"],
            )
        )
    # A judging process left this mail's large files in the store: read them back.
    own = [
        dataclasses.replace(a, data=blobs.get(a.sha256), stored_size=None) if a.in_store else a
        for a in message.attachments
    ]
    combined = dataclasses.replace(message, attachments=(*earlier, *own))
    together = verdict_for(combined, call, verdict.received_at)
    if MISSING & set(together.codes()):
        return None
    roles = {a.role for a in together.attachments}
    if Role.WORD not in roles or Role.PDF not in roles:
        return None
    return together
