"""Problem and Verdict: what the checks say about one mail, as plain data."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any


class Severity(StrEnum):
    ERROR = "error"  # the applicant must correct it
    WARNING = "warning"  # accepted, but the secretariat should look
    INFO = "info"  # recorded only


class Status(StrEnum):
    ACCEPTED = "accepted"
    NEEDS_CORRECTION = "needs_correction"
    LATE = "late"
    IGNORED = "ignored"


class Role(StrEnum):
    WORD = "word"
    PDF = "pdf"
    SUPPORTING = "supporting"


@dataclass(frozen=True)
class Problem:
    """One finding, in words for the applicant: Chinese first, then English.

    ``zh`` and ``en`` may quote what the sender wrote (the subject, a file's
    name, the form's text): the secretariat reads them in the log, on the
    desk and in ``check --json``. Where they do, ``letter`` holds the same
    finding in our own words alone (institution and PI at most, as
    mailbot.mail.names.shown_identity shows them): a letter to the sender
    says only that, so nobody can have mailbot mail their text to a third
    party. Without ``letter``, ``zh`` and ``en`` quote nothing of the sender's.
    """

    code: str
    severity: Severity
    zh: str
    en: str
    letter: tuple[str, str] | None = None

    @property
    def message(self) -> str:
        return f"{self.zh} {self.en}"

    @property
    def to_sender(self) -> tuple[str, str]:
        """The words a letter to the sender may use: (Chinese, English)."""
        return self.letter or (self.zh, self.en)

    def as_json(self) -> dict[str, str]:
        return {
            "code": self.code,
            "severity": str(self.severity),
            "message": self.message,
            "message_zh": self.zh,
            "message_en": self.en,
        }


@dataclass(frozen=True)
class AttachmentRole:
    filename: str
    role: Role
    size: int
    sha256: str


@dataclass(frozen=True)
class Verdict:
    status: Status
    received_at: datetime
    institution: str | None
    pi: str | None
    problems: tuple[Problem, ...] = ()
    attachments: tuple[AttachmentRole, ...] = field(default=())
    form: dict[str, Any] | None = None  # what the Word form says (`mailbot check --json`)
    pdf_pages: int | None = None
    seal: dict[str, Any] | None = None  # the seal on the PDF scan (`check --json`'s "seal")

    @property
    def errors(self) -> tuple[Problem, ...]:
        return tuple(p for p in self.problems if p.severity is Severity.ERROR)

    def codes(self) -> list[str]:
        return [p.code for p in self.problems]

    def as_json(self) -> dict[str, Any]:
        return {
            "status": str(self.status),
            "institution": self.institution,
            "pi": self.pi,
            "received_at": self.received_at.isoformat(),
            "problems": [p.as_json() for p in self.problems],
            "attachments": [
                {"filename": a.filename, "role": str(a.role), "size": a.size, "sha256": a.sha256}
                for a in self.attachments
            ],
            "form": self.form,
            "pdf_pages": self.pdf_pages,
            "seal": self.seal,
        }
