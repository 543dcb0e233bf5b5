"""A mail a person tied to a submission at the desk, judged as that submission's mail.

The desk attaches a mail the daemon could tie to no submission either as a
version (``VERSION``) or as a supporting mail (``SUPPORTING``), and records
which on ``Mail.attached_as``. A version is judged as if the mail's subject
had named the submission's institution and PI, so its files are held to
that submission's names; `mailbot reprocess` judges it the same way again,
and keeps a supporting mail where the person put it.
"""

from __future__ import annotations

import dataclasses

from mailbot.app import App
from mailbot.judge.checks import verdict_for
from mailbot.judge.verdict import Status, Verdict
from mailbot.mail.message import Message
from mailbot.mail.parsing import parse_message
from mailbot.replies.render import expected_names
from mailbot.store.models import Mail, Submission

# Mail.attached_as values.
VERSION = "version"
SUPPORTING = "supporting"


def judge_as(app: App, mail: Mail, institution: str, pi: str) -> tuple[Message, Verdict] | None:
    """The mail judged under the subject the call expects for this institution and PI.

    None when it cannot be a version even so: its raw bytes are gone, or the
    verdict is still "ignored" (a bounce, an automatic reply).
    """
    if not app.blobs.exists(mail.raw_sha256):
        return None
    message = parse_message(app.blobs.get(mail.raw_sha256), app.call.documents)
    subject = expected_names(app.call, institution, pi)["expected_subject"]
    message = dataclasses.replace(message, subject=subject)
    verdict = verdict_for(message, app.call, mail.received_at, app.policy)
    if verdict.status is Status.IGNORED or not (verdict.institution and verdict.pi):
        return None
    return message, verdict


def judge_as_submission(
    app: App, mail: Mail, submission: Submission
) -> tuple[Message, Verdict] | None:
    return judge_as(app, mail, submission.institution, submission.pi)
