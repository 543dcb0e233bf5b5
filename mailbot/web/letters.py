"""The letters the desk writes and names: templates with human titles, and which tells a status.

A letter template's title and the submission status it tells the applicant
live beside the templates, in ``reply/letters.toml`` (templates/web/README.md):

    [decision_accepted]
    zh = "受理决定通知"
    en = "Decision: accepted"
    tells = "accepted_by_decision"

The daemon's own replies are named after the status they tell (``accepted``,
``needs_correction``, ``late``); their titles are in templates/reply/letters.toml.
"Resend" picks the latest letter that tells the submission's current status,
so after a decision it can never send an older verdict's letter.
"""

from __future__ import annotations

import email.parser
import email.policy
import tomllib
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

from mailbot.app import App
from mailbot.errors import MailbotError
from mailbot.replies.render import Renderer, call_context, expected_names
from mailbot.store.models import Mail, Reply, Submission

LETTER_PREFIX = "desk/"  # Reply.template of a letter written at the desk
TITLES_FILE = "letters.toml"
# The daemon's replies tell the status they are named after.
DAEMON_TELLS = frozenset({"accepted", "needs_correction", "late"})


class LetterError(MailbotError):
    """A letters.toml that cannot be read."""


@dataclass(frozen=True)
class Title:
    zh: str
    en: str
    tells: str | None = None  # the submission status this letter tells the applicant


def _read_titles(path: Path) -> dict[str, Title]:
    """The titles in a letters.toml, read again only when the file changes."""
    try:
        stamp = path.stat().st_mtime_ns
    except OSError:
        return {}
    return _parse_titles(path, stamp)


@lru_cache(maxsize=8)
def _parse_titles(path: Path, stamp: int) -> dict[str, Title]:
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8-sig"))
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise LetterError(f"{path}: cannot read the letter titles: {exc}") from None
    titles = {}
    for name, entry in data.items():
        if not isinstance(entry, dict) or not entry.get("zh") or not entry.get("en"):
            raise LetterError(f'{path}: [{name}] needs zh = "..." and en = "..."')
        tells = entry.get("tells")
        titles[name] = Title(str(entry["zh"]), str(entry["en"]), str(tells) if tells else None)
    return titles


class Letters:
    """The desk's letter templates (templates/web/reply) and the daemon's (templates/reply)."""

    def __init__(self, renderer: Renderer) -> None:
        self.renderer = renderer
        self.desk_folder = renderer.templates_dir / "reply"
        self.daemon_folder = renderer.templates_dir.parent / "reply"

    def names(self) -> list[str]:
        """The letter templates there are: reply/NAME.zh.txt.j2 and .en, in title order."""
        names = {path.name.split(".", 1)[0] for path in self.desk_folder.glob("*.txt.j2")}
        titles = self.desk_titles()
        usable = [name for name in names if self.renderer.languages_for(name)]
        return sorted(usable, key=lambda name: (name not in titles, name))

    def desk_titles(self) -> dict[str, Title]:
        return _read_titles(self.desk_folder / TITLES_FILE)

    def title(self, template: str) -> tuple[str, str]:
        """(Chinese, English) for a Reply.template or a letter name; unknown ones as themselves."""
        if template.startswith(LETTER_PREFIX):
            found = self.desk_titles().get(template.removeprefix(LETTER_PREFIX))
        else:
            found = _read_titles(self.daemon_folder / TITLES_FILE).get(template)
            found = found or self.desk_titles().get(template)
        return (found.zh, found.en) if found else (template, "")

    def tells(self, template: str) -> str | None:
        """The status a reply's template tells the applicant, if it tells one."""
        if template.startswith(LETTER_PREFIX):
            found = self.desk_titles().get(template.removeprefix(LETTER_PREFIX))
            return found.tells if found else None
        return template if template in DAEMON_TELLS else None

    def for_status(self, status: str) -> str | None:
        """The desk letter that tells this status (the one to write after a decision)."""
        return next((n for n, t in self.desk_titles().items() if t.tells == status), None)


def status_letter(letters: Letters, replies: list[Reply], status: str) -> Reply | None:
    """The latest reply that tells this status: what "resend" sends again."""
    return next((r for r in reversed(replies) if letters.tells(r.template) == status), None)


def latest_mail(submission: Submission) -> Mail | None:
    return next((m for m in reversed(submission.mails) if m.reply_to or m.sender), None)


def recipient(submission: Submission) -> str | None:
    """Where a letter about a submission goes: the latest mail's Reply-To, else its sender."""
    mail = latest_mail(submission)
    return (mail.reply_to or mail.sender) if mail else None


def thread(app: App, submission: Submission) -> tuple[str | None, list[str]]:
    """(In-Reply-To, References) that put a letter in the applicant's latest thread."""
    mail = latest_mail(submission)
    if mail is None or not mail.message_id:
        return None, []
    references: list[str] = []
    if app.blobs.exists(mail.raw_sha256):
        parser = email.parser.BytesHeaderParser(policy=email.policy.compat32)
        headers = parser.parsebytes(app.blobs.get(mail.raw_sha256))
        references = str(headers.get("References") or "").split()
    return mail.message_id, references


def letter_context(app: App, submission: Submission) -> dict[str, Any]:
    """The letter templates' variables (listed in templates/web/README.md)."""
    current = next((v for v in reversed(submission.versions) if not v.superseded), None)
    problems = current.problems if current else []
    mail = latest_mail(submission)
    received_zh, received_en = app.call.local_text(mail.received_at) if mail else (None, None)
    return {
        **call_context(app.call),
        **expected_names(app.call, submission.institution, submission.pi),
        "reference": submission.reference,
        "institution": submission.institution,
        "pi": submission.pi,
        "status": submission.status,
        "version": submission.current_version,
        "received_zh": received_zh,
        "received_en": received_en,
        "problems": [
            {
                "code": p.get("code", ""),
                # A letter's words never quote the sender (stored since letter_zh was).
                "zh": p.get("letter_zh") or p.get("message_zh", ""),
                "en": p.get("letter_en") or p.get("message_en", ""),
            }
            for p in problems
            if p.get("severity") == "error"
        ],
    }
