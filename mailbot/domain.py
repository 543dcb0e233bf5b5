"""The statuses and states the whole house shares, each with what it means.

They are StrEnums: a member is the very string stored in the database and
printed by ``check --json``, so code compares and stores members while the
records stay as they always were.

A mail's status is its verdict's (mailbot.judge.verdict.Status has the same
four values); a submission's status starts as its latest version's and a
person may set one of the two decided statuses over it at the desk. A reply
goes (mailbot.replies.sender)::

    pending -> sending -> handed -> sent
                                 -> uncertain   (handed over, never confirmed)

A failed attempt from sending or handed puts it back to pending with a
backoff, until it is failed; a reply that left (sent, uncertain) may come
back bounced. A reply queued to an unusable address is failed at once, one
over the hourly limit suppressed: both are kept, never sent.
"""

from __future__ import annotations

from enum import StrEnum


class MailStatus(StrEnum):
    """What the daemon decided about one mail; the folder it is filed in follows it."""

    ACCEPTED = "accepted"
    """Complete and on time: the submission is recorded and the applicant told so."""
    NEEDS_CORRECTION = "needs_correction"
    """Something is missing or wrong: the applicant is told what to send again."""
    LATE = "late"
    """Received after the deadline: recorded, and the applicant told it is late."""
    IGNORED = "ignored"
    """Not an application (a bounce, an automatic reply, a duplicate): never answered."""


class SubmissionStatus(StrEnum):
    """Where a submission stands: its latest version's verdict, or a person's decision."""

    ACCEPTED = "accepted"
    """Its latest version was accepted."""
    NEEDS_CORRECTION = "needs_correction"
    """Its latest version needs a correction from the applicant."""
    LATE = "late"
    """It arrived after the deadline."""
    ACCEPTED_BY_DECISION = "accepted_by_decision"
    """A person accepted it at the desk over the daemon's verdict."""
    WITHDRAWN = "withdrawn"
    """A person withdrew it at the desk (the applicant asked, or it was sent in error)."""


# The statuses only a person sets; the daemon never changes a submission out of them.
DECIDED = frozenset({SubmissionStatus.ACCEPTED_BY_DECISION, SubmissionStatus.WITHDRAWN})


class ReplyState(StrEnum):
    """Where a reply in the outbox stands (mailbot.replies.sender keeps each step's promise)."""

    PENDING = "pending"
    """Queued and due at its next attempt time; nothing of it has reached a server."""
    SENDING = "sending"
    """Taken by a sender; no server can have delivered it yet (a kill makes it pending again)."""
    HANDED = "handed"
    """The final dot is about to leave: from here on the server may have delivered it."""
    SENT = "sent"
    """The server took it (SMTP 250, or the file is in the outbox folder)."""
    UNCERTAIN = "uncertain"
    """Handed over and never confirmed: it has almost surely arrived and is never resent."""
    FAILED = "failed"
    """Given up: too many failed attempts, an unusable address, or a fault of ours."""
    BOUNCED = "bounced"
    """It left, and a bounce came back (mailbot.replies.bounced): reach the applicant otherwise."""
    SUPPRESSED = "suppressed"
    """Never sent: the address had its hourly limit of replies; kept so a person sees it."""
    SUPERSEDED = "superseded"
    """Never sent: held in the settling window, a later mail of the same submission came, and
    the letter to that mail says all ([intake] settle_window, mailbot.replies.outbox)."""


# A reply in these states has left: only such a reply can come back as a bounce.
LEFT = (ReplyState.SENT, ReplyState.UNCERTAIN, ReplyState.HANDED, ReplyState.BOUNCED)
