"""Submissions and their versions: a new proposal, a resubmission, or a completion.

A submission is keyed by (call, institution, PI), compared as file names
are, the institution by its canonical name (mailbot.institutes: 植物所 and
Institute of Botany, CAS are 中国科学院植物研究所). Its reference number never
changes. A later on-time mail with the same
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
from mailbot.institutes import directory
from mailbot.intake.samefiles import note_same_files
from mailbot.judge.checks import verdict_for
from mailbot.judge.verdict import Role, Status, Verdict
from mailbot.mail.message import Attachment as MailAttachment
from mailbot.mail.message import Message
from mailbot.store.blobs import BlobStore
from mailbot.store.models import Mail, Submission, Version, utcnow

MISSING = {"missing_word", "missing_pdf"}
FOLLOWUP = "thread_followup"  # mailbot.intake.thread: a mail without files in a settled thread


@dataclass(frozen=True)
class Outcome:
    """What a mail did: the verdict that counts, and the submission it touched."""

    verdict: Verdict  # for a completion: the verdict on the files taken together
    submission: Submission | None
    version: Version | None
    kind: str | None  # new, resubmission, completion; None when no version was made
    replaces: int | None = None  # the version number this one supersedes
    created: bool = False  # the submission was made by this mail


def files_json(verdict: Verdict) -> list[dict[str, Any]]:
    return [
        {"filename": a.filename, "role": str(a.role), "size": a.size, "sha256": a.sha256}
        for a in verdict.attachments
    ]


def problems_json(verdict: Verdict) -> list[dict[str, str]]:
    """The problems as stored: check --json's object, and the words a letter may use."""
    return [
        {**p.as_json(), "letter_zh": p.to_sender[0], "letter_en": p.to_sender[1]}
        for p in verdict.problems
    ]


def judge_again(mail: Mail, verdict: Verdict) -> None:
    """Write a new verdict onto a stored mail: its status, problems, names, form and roles."""
    mail.status = str(verdict.status)
    mail.problems = problems_json(verdict)
    mail.institution, mail.pi = verdict.institution, verdict.pi
    mail.form, mail.pdf_pages, mail.seal = verdict.form, verdict.pdf_pages, verdict.seal
    for stored, role in zip(mail.attachments, verdict.attachments, strict=False):
        stored.role = str(role.role)


def find(session: Session, call: Call, institution: str, pi: str) -> Submission | None:
    """The submission of this institution (by any of its names) and PI, the oldest if several.

    A database written before institutions had canonical names keys a
    submission by the name its first mail wrote: any name of the institute finds it.
    """
    return session.scalars(
        select(Submission)
        .where(
            Submission.call_id == call.id,
            Submission.institution_key.in_(directory(call).keys(institution)),
            Submission.pi_key == normalise_name(pi),
        )
        .order_by(Submission.seq)
        .limit(1)
    ).first()


# Where a transaction keeps the next reference number of each call once it has read it.
_NEXT_SEQ = "mailbot.next_seq"


def _next_seq(session: Session, call: Call) -> int:
    """The next reference number of the call: read once a transaction, then counted on.

    A transaction that fails is done again in a new session, which reads it anew.
    """
    seqs: dict[str, int] = session.info.setdefault(_NEXT_SEQ, {})
    if call.id not in seqs:
        latest = session.scalar(
            select(func.max(Submission.seq)).where(Submission.call_id == call.id)
        )
        seqs[call.id] = latest or 0
    seqs[call.id] += 1
    return seqs[call.id]


def _create(
    session: Session, call: Call, institution: str, pi: str, status: str, *, flush: bool = True
) -> Submission:
    """A new submission with the call's next reference; unflushed when its version follows."""
    seq = _next_seq(session, call)
    institution = directory(call).canonical(institution)
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
    if flush:
        session.flush()
    return submission


def record(
    session: Session,
    call: Call,
    blobs: BlobStore,
    mail: Mail,
    message: Message,
    verdict: Verdict,
    *,
    thread: Submission | None = None,
) -> Outcome:
    """Tie a judged mail to its submission (``thread``'s when it answers our letter: before
    any institution+PI match; mailbot.intake.thread), making a version where it counts."""
    if verdict.status is Status.IGNORED or not (verdict.institution and verdict.pi):
        if thread is not None and FOLLOWUP in verdict.codes():
            mail.submission = thread
        return Outcome(verdict, None, None, None)
    submission = thread or find(session, call, verdict.institution, verdict.pi)
    if verdict.status is Status.LATE:
        # Recorded for the secretariat, but a late mail never replaces a version.
        if submission is None:
            submission = _create(session, call, verdict.institution, verdict.pi, str(Status.LATE))
        mail.submission = submission
        return Outcome(verdict, submission, None, None)

    kind = "new"
    current: Version | None = None
    effective = verdict
    created = submission is None
    if submission is not None:
        current = next((v for v in reversed(submission.versions) if not v.superseded), None)
        # A submission known only from a late mail (or rebuilt by a reprocess) has no
        # version yet: this one is its first.
        kind = "resubmission" if current is not None else "new"
        if current is not None and MISSING & set(verdict.codes()):
            together = _judge_together(call, blobs, current, message, verdict)
            if together is not None:
                effective, kind = together, "completion"
    effective = note_same_files(session, call, mail, submission, effective)
    if submission is None:
        # Written once, with its first version: one INSERT, no UPDATE after it.
        status = str(verdict.status)
        submission = _create(session, call, verdict.institution, verdict.pi, status, flush=False)
    if current is not None:
        current.superseded = True
    version = _add_version(session, submission, mail, effective, kind)
    replaces = current.number if current else None
    return Outcome(effective, submission, version, kind, replaces, created)


def _add_version(
    session: Session, submission: Submission, mail: Mail, verdict: Verdict, kind: str
) -> Version:
    """The submission's next version, made by this mail: it becomes the current one."""
    number = submission.current_version + 1
    version = Version(
        submission=submission,
        number=number,
        mail_id=mail.id,
        kind=kind,
        status=str(verdict.status),
        problems=problems_json(verdict),
        files=files_json(verdict),
        received_at=mail.received_at,
        form=verdict.form,
        pdf_pages=verdict.pdf_pages,
        seal=verdict.seal,
    )
    session.add(version)
    submission.current_version = number
    submission.status = str(verdict.status)
    submission.updated_at = utcnow()
    mail.submission = submission
    session.flush()
    return version


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
