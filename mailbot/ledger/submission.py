"""One submission in full: each of its mails with the version it made, its problems and files."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from mailbot.calls import Call
from mailbot.store.models import Mail, Submission, Version


@dataclass(frozen=True)
class MailRecord:
    """A mail of a submission as the secretariat reads it."""

    mail: Mail
    version: Version | None  # None for a mail that made no version (late, say)
    problems: list[Any]
    files: list[dict[str, Any]]  # [{filename, role, size, sha256}]

    @property
    def form(self) -> dict[str, Any] | None:
        return self.version.form if self.version is not None else self.mail.form

    @property
    def pdf_pages(self) -> int | None:
        return self.version.pdf_pages if self.version is not None else self.mail.pdf_pages

    @property
    def seal(self) -> dict[str, Any] | None:
        return self.version.seal if self.version is not None else self.mail.seal


def find_submission(session: Session, call: Call, reference: str) -> Submission | None:
    return session.scalar(
        select(Submission).where(
            Submission.call_id == call.id, Submission.reference == reference.strip().upper()
        )
    )


def mail_records(submission: Submission) -> list[MailRecord]:
    """The submission's mails, oldest first, each with what it made."""
    versions = {v.mail_id: v for v in submission.versions}
    records = []
    for mail in submission.mails:
        version = versions.get(mail.id)
        files = (
            version.files
            if version is not None
            else [
                {"filename": a.filename, "role": a.role, "size": a.size, "sha256": a.sha256}
                for a in mail.attachments
            ]
        )
        problems = version.problems if version is not None else mail.problems
        records.append(MailRecord(mail, version, problems, files))
    return records
