"""What a reply template is told about one judged mail and its submission."""

from __future__ import annotations

from typing import Any

from mailbot.calls import Call
from mailbot.intake.submissions import Outcome
from mailbot.judge.verdict import Verdict
from mailbot.mail.message import Message
from mailbot.replies.render import letter_file, verdict_context


def reply_context(call: Call, message: Message, outcome: Outcome) -> dict[str, Any]:
    """The template variables (templates/README.md) for the reply to ``message``."""
    verdict = outcome.verdict
    context = verdict_context(call, verdict)
    # `files` lists what this mail brought; a completion's verdict covers more.
    # No name the sender chose is shown (mailbot.replies.render.letter_file).
    roles = {a.sha256: str(a.role) for a in verdict.attachments}
    context["files"] = [
        letter_file(call, verdict, a.filename, roles.get(a.sha256, "supporting"), a.size, a.sha256)
        for a in message.attachments
    ]
    submission, version = outcome.submission, outcome.version
    if submission is not None:  # the institute's canonical name, however the subject wrote it
        context["institution"] = submission.institution
    context.update(
        reference=submission.reference if submission is not None else None,
        version=version.number if version is not None else None,
        kind=outcome.kind,
        replaces_version=outcome.replaces,
        files_on_record=[_on_record(call, verdict, item) for item in version.files]
        if version is not None
        else [],
        # A mail that made no version (a late one): the version that stands, unchanged.
        standing_version=submission.current_version or None
        if submission is not None and version is None
        else None,
        standing_status=submission.status if submission is not None and version is None else None,
    )
    return context


def _on_record(call: Call, verdict: Verdict, item: dict[str, Any]) -> dict[str, Any]:
    """A file the submission holds (Version.files), as a letter lists it."""
    return letter_file(
        call,
        verdict,
        str(item.get("filename", "")),
        str(item.get("role", "supporting")),
        int(item.get("size", 0)),
        str(item.get("sha256", "")),
    )
