"""What a reply template is told about one judged mail and its submission."""

from __future__ import annotations

from typing import Any

from mailbot.calls import Call
from mailbot.intake.submissions import Outcome
from mailbot.mail.message import Message
from mailbot.mail.names import shown, shown_in
from mailbot.replies.render import verdict_context


def reply_context(call: Call, message: Message, outcome: Outcome) -> dict[str, Any]:
    """The template variables (templates/README.md) for the reply to ``message``."""
    context = verdict_context(call, outcome.verdict)
    # `files` lists what this mail brought; a completion's verdict covers more.
    # A name is shown escaped and shortened: it is the sender's data (mailbot.mail.names).
    roles = {a.sha256: str(a.role) for a in outcome.verdict.attachments}
    context["files"] = [
        {
            "filename": shown_in(a.filename, a.container),
            "role": roles.get(a.sha256, "supporting"),
            "size": a.size,
            "sha256": a.sha256,
        }
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
        files_on_record=[
            {**item, "filename": shown(str(item.get("filename", "")))} for item in version.files
        ]
        if version is not None
        else [],
        # A mail that made no version (a late one): the version that stands, unchanged.
        standing_version=submission.current_version or None
        if submission is not None and version is None
        else None,
        standing_status=submission.status if submission is not None and version is None else None,
    )
    return context
