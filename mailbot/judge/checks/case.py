"""Case: one mail under judgement, with the readings every check shares."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from functools import cached_property
from typing import TYPE_CHECKING

from mailbot.calls import Call
from mailbot.mail.parsing import Message

if TYPE_CHECKING:
    from mailbot.judge.checks.attachments import FileReading
    from mailbot.judge.checks.form import DocumentReading
    from mailbot.judge.checks.subject import SubjectReading


@dataclass
class Case:
    """A mail, the call it was sent to, and when the mailbox received it."""

    message: Message
    call: Call
    received_at: datetime

    @cached_property
    def subject(self) -> SubjectReading:
        from mailbot.judge.checks.subject import read_subject

        return read_subject(self.message.subject, self.call)

    @cached_property
    def identity(self) -> tuple[str | None, str | None]:
        """(institution, PI): from a well-formed subject, else the files' names,
        else whatever the subject gives when read leniently."""
        from mailbot.judge.checks.attachments import identity_from_files

        reading = self.subject
        if reading.well_formed:
            return reading.institution, reading.pi
        from_files = identity_from_files(self.message.attachments, self.call)
        if from_files is not None:
            return from_files
        return reading.institution, reading.pi

    @cached_property
    def files(self) -> FileReading:
        from mailbot.judge.checks.attachments import read_files

        return read_files(self)

    @cached_property
    def documents(self) -> DocumentReading:
        """What the chosen Word and PDF files say, read once for every check."""
        from mailbot.judge.checks.form import read_documents

        return read_documents(self)
