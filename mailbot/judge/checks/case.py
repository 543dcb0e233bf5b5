"""Case: one mail under judgement, with the readings every check shares."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from functools import cached_property

from mailbot.calls import Call
from mailbot.judge.policy import DEFAULT_POLICY, IntakePolicy
from mailbot.judge.readings.documents import DocumentReading, read_documents
from mailbot.judge.readings.files import FileReading, identity_from_files, read_files
from mailbot.judge.readings.subject import SubjectReading, read_subject
from mailbot.mail.message import Message
from mailbot.mail.names import shown_identity


@dataclass
class Case:
    """A mail, the call it was sent to, when the mailbox received it, and the operator's policy."""

    message: Message
    call: Call
    received_at: datetime
    policy: IntakePolicy = field(default=DEFAULT_POLICY)

    @cached_property
    def subject(self) -> SubjectReading:
        return read_subject(self.message.subject, self.call)

    @cached_property
    def identity(self) -> tuple[str | None, str | None]:
        """(institution, PI): from a well-formed subject, else the files' names,
        else whatever the subject gives when read leniently."""
        reading = self.subject
        if reading.well_formed:
            return reading.institution, reading.pi
        from_files = identity_from_files(self.message.attachments, self.call)
        if from_files is not None:
            return from_files
        return reading.institution, reading.pi

    @cached_property
    def letter_stem(self) -> str:
        """INSTITUTION+PI as a letter to the sender shows it (mailbot.mail.names.shown_identity);
        the placeholders' where the mail names no one."""
        institution, pi = shown_identity(*self.identity)
        if institution and pi:
            return self.call.stem(institution, pi)
        naming = self.call.naming
        return self.call.stem(naming.institution_placeholder, naming.pi_placeholder)

    @cached_property
    def files(self) -> FileReading:
        return read_files(self.message, self.call, self.identity)

    @cached_property
    def documents(self) -> DocumentReading:
        """What the chosen Word and PDF files say, read once for every check."""
        return read_documents(self.files, self.call, self.policy.seal)
