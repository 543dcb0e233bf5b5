"""Reply texts from Jinja2 templates: one file per reply and language, joined bilingually."""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mailbot.calls import Call, normalise_name
from mailbot.errors import MailbotError
from mailbot.mail.names import shown_identity

if TYPE_CHECKING:  # jinja2 and the verdict are loaded with the first letter, not with the App
    from jinja2 import Environment, Template

    from mailbot.judge.verdict import Problem, Severity, Verdict

# Chinese first: the call is written in Chinese and its applicants read it first.
LANGUAGES = ("zh", "en")
SEPARATOR = "-" * 72

_NAME = re.compile(r"[a-z][a-z0-9_]*")
# An extension a letter may show: a few letters and digits say no more than the file's type.
_SAFE_EXTENSION = re.compile(r"\.[a-z0-9]{1,5}")


class RenderError(MailbotError):
    """A reply template that is missing, broken, or lacks its Subject line."""


def single_line(text: str) -> str:
    """Text on a single line, fit for a header: control characters (CR, LF...) and runs of
    spaces become one space.

    A subject decoded from encoded words can carry a newline, and the email
    package refuses a header value with one in it.
    """
    cleaned = "".join(" " if unicodedata.category(ch) == "Cc" else ch for ch in text)
    return " ".join(cleaned.split())


class Renderer:
    """Renders ``reply/{name}.{lang}.txt.j2`` under a templates folder.

    Every language in ``languages`` whose template exists is rendered, in that
    order; a language without a template is left out, and a reply with no
    template at all is an error. The first line of each template is
    ``Subject: ...``; the subjects are joined with `` / `` and the bodies
    with a separator line.
    """

    def __init__(self, templates_dir: Path, languages: Sequence[str] = LANGUAGES) -> None:
        self.templates_dir = templates_dir
        self.languages = tuple(languages)
        self._cache: dict[Path, tuple[int, Template, Template]] = {}

    @cached_property
    def environment(self) -> Environment:
        """Jinja2's environment, made when the first template is read (the log needs none)."""
        from jinja2 import Environment, FileSystemLoader, StrictUndefined

        return Environment(
            # For {% include %} only; the reply templates themselves are read by _templates().
            loader=FileSystemLoader(str(self.templates_dir)),
            undefined=StrictUndefined,
            # Plain text: HTML escaping would turn "A&B" in an institution into "A&amp;B".
            autoescape=False,
            keep_trailing_newline=True,
            trim_blocks=True,
            lstrip_blocks=True,
        )

    def path(self, name: str, lang: str) -> Path:
        return self.templates_dir / "reply" / f"{name}.{lang}.txt.j2"

    def languages_for(self, name: str) -> list[str]:
        """The languages that have a template for this reply, in rendering order."""
        if not _NAME.fullmatch(name):
            raise RenderError(f"not a reply template name: {name!r}")
        return [lang for lang in self.languages if self.path(name, lang).is_file()]

    def render(self, name: str, context: Mapping[str, Any]) -> tuple[str, str]:
        """Render one reply in every language present; return (subject, body)."""
        languages = self.languages_for(name)
        if not languages:
            wanted = ", ".join(str(self.path(name, lang)) for lang in self.languages)
            raise RenderError(f"no template for the reply {name!r}: looked for {wanted}")
        parts = [self._render_one(name, lang, context) for lang in languages]
        subject = single_line(" / ".join(subject for subject, _ in parts))
        body = f"\n{SEPARATOR}\n\n".join(body for _, body in parts)
        return subject, body

    def _render_one(self, name: str, lang: str, context: Mapping[str, Any]) -> tuple[str, str]:
        from jinja2 import TemplateError

        path = self.path(name, lang)
        subject, body = self._templates(path)
        try:
            rendered_subject = subject.render(dict(context))
            rendered_body = body.render(dict(context))
        except TemplateError as exc:
            # StrictUndefined names the missing variable; the path says which template.
            raise RenderError(f"{path}: {exc}") from exc
        return single_line(rendered_subject), rendered_body.lstrip("\n").rstrip() + "\n"

    def _templates(self, path: Path) -> tuple[Template, Template]:
        """The subject line and the body, compiled apart (cached until the file changes).

        Apart, because a variable in the subject may hold a newline: rendered
        whole, its second half would slip into the body.
        """
        from jinja2 import TemplateError

        try:
            stamp = path.stat().st_mtime_ns
            cached = self._cache.get(path)
            if cached is not None and cached[0] == stamp:
                return cached[1], cached[2]
            source = path.read_text(encoding="utf-8-sig")  # a BOM from Windows Notepad
        except (OSError, UnicodeDecodeError) as exc:
            raise RenderError(f"{path}: cannot read the template: {exc}") from None
        first, _, rest = source.partition("\n")
        if not first.startswith("Subject:"):
            raise RenderError(f"{path}: the first line must be 'Subject: ...'")
        try:
            subject = self.environment.from_string(first.removeprefix("Subject:"))
            # The newline in front keeps the body's line numbers those of the file.
            body = self.environment.from_string("\n" + rest)
        except TemplateError as exc:
            raise RenderError(f"{path}: {exc}") from exc
        self._cache[path] = (stamp, subject, body)
        return subject, body


# Context helpers: the variables every template shares, built from the call and
# the verdict, so the pipeline adds only what it alone knows (reference, version).


def call_context(call: Call) -> dict[str, Any]:
    """The variables every template can use: the call's names, mailbox, deadline."""
    deadline_zh, deadline_en = call.deadline_text()
    return {
        "call_name_zh": call.call.name_zh,
        "call_name_en": call.call.name_en,
        "mailbox": call.call.mailbox,
        "deadline_zh": deadline_zh,
        "deadline_en": deadline_en,
    }


def expected_names(call: Call, institution: str | None, pi: str | None) -> dict[str, str]:
    """The subject and file names the applicant must use (placeholders when unknown)."""
    if not institution or not pi:
        institution = call.naming.institution_placeholder
        pi = call.naming.pi_placeholder
    stem = call.stem(institution, pi)
    return {
        "expected_subject": call.expected_subject(institution, pi),
        "expected_word": stem + call.attachments.word_extensions[0],
        "expected_pdf": stem + call.attachments.pdf_extensions[0],
    }


def problem_items(problems: Iterable[Problem], severity: Severity) -> list[dict[str, str]]:
    """The problems as a letter to the sender words them (Problem.to_sender: no text of theirs)."""
    return [
        {"code": p.code, "zh": p.to_sender[0], "en": p.to_sender[1]}
        for p in problems
        if p.severity is severity
    ]


def verdict_context(call: Call, verdict: Verdict) -> dict[str, Any]:
    """The applicant templates' variables that follow from the call and the verdict.

    ``accepted`` further needs reference, version, kind, replaces_version and
    files_on_record (see templates/README.md). Of what the sender wrote, only
    the institution and the PI appear, as shown_identity shows them.
    """
    from mailbot.judge.checks.eligibility import secretariat_only
    from mailbot.judge.verdict import Severity

    received_zh, received_en = call.local_text(verdict.received_at)
    hidden = secretariat_only(call)
    told = [p for p in verdict.problems if p.code not in hidden]
    institution, pi = shown_identity(verdict.institution, verdict.pi)
    return {
        **call_context(call),
        **expected_names(call, institution, pi),
        "institution": institution,
        "pi": pi,
        "received_zh": received_zh,
        "received_en": received_en,
        "problems": problem_items(told, Severity.ERROR),
        "warnings": problem_items(told, Severity.WARNING),
        "files": [
            letter_file(call, verdict, a.filename, str(a.role), a.size, a.sha256)
            for a in verdict.attachments
        ],
    }


def letter_file(
    call: Call, verdict: Verdict, filename: str, role: str, size: int, sha256: str
) -> dict[str, Any]:
    """One file as a letter to the sender lists it: never by a name the sender chose.

    The Word or PDF named exactly INSTITUTION+PI is named so (as shown_identity
    shows them); any other file only by its kind (``PDF 文件`` / ``PDF file``).
    ``filename`` is that name, or ``*.pdf`` for templates written before.
    """
    from mailbot.mail.message import split_extension

    base, extension = split_extension(filename)
    extension = extension if _SAFE_EXTENSION.fullmatch(extension) else ""
    own = _own_name(call, verdict, base, extension) if role in ("word", "pdf") else None
    kind = extension.removeprefix(".").upper()
    if own is not None:
        label_zh = label_en = own
    else:
        label_zh = f"{kind} 文件（文件名不在回复中重复）".lstrip()
        label_en = f"a {kind} file (its name is not repeated in replies)".replace("a  ", "a ")
    return {
        "filename": own or f"*{extension}",
        "label_zh": label_zh,
        "label_en": label_en,
        "role": role,
        "size": size,
        "sha256": sha256,
    }


def _own_name(call: Call, verdict: Verdict, base: str, extension: str) -> str | None:
    """INSTITUTION+PI and the extension, as a letter shows them, when that is the file's name."""
    institution, pi = shown_identity(verdict.institution, verdict.pi)
    if not (extension and institution and pi and verdict.institution and verdict.pi):
        return None
    if normalise_name(base) != normalise_name(call.stem(verdict.institution, verdict.pi)):
        return None
    return call.stem(institution, pi) + extension


def local_text(call: Call, moment: datetime | None) -> tuple[str | None, str | None]:
    """A moment in the call's time zone as (Chinese, English) text, or (None, None)."""
    if moment is None:
        return None, None
    return call.local_text(moment)
