"""Which attachment is the Word proposal and which the PDF scan, and how well each is named.

The files inside a .zip, winmail.dat or forwarded mail count like any other
(mailbot.mail.parsing lists them after their container); the containers opened
are no material of their own. Names are shown through mailbot.mail.names.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

from mailbot.calls import Call, normalise_name
from mailbot.judge.verdict import AttachmentRole, Role
from mailbot.mail.message import Attachment, Message
from mailbot.mail.names import shown_in

# A bracketed remark after the right stem: （盖章版）, (signed), 【签字】, [final].
_SUFFIX = re.compile(r"^[\s_\-—]*(?:\([^()]*\)|\[[^\[\]]*\]|【[^【】]*】|〔[^〔〕]*〕)\s*$")
_PLUS = re.compile(r"[+＋]")
# A PDF named like this is a partner's letter or an agreement, not the proposal's scan.
_SUPPORTING_NAME = re.compile(
    r"协议|承诺|证明|邀请|意向|支持函|(?<![a-z])(?:agreement|letter|commitment|support|mou|"
    r"invitation|consent|cooperation)",
    re.IGNORECASE,
)


@dataclass(frozen=True)
class Pick:
    """The attachment chosen for one role, and how well its name fits."""

    attachment: Attachment | None
    fit: str  # "exact", "suffix", "misnamed" or "missing"
    candidates: tuple[Attachment, ...]  # the attachments that could be meant
    set_aside: tuple[Attachment, ...] = ()  # of this kind, but named as supporting material


@dataclass(frozen=True)
class FileReading:
    stem: str | None  # the expected stem, when institution and PI are known
    word: Pick
    pdf: Pick
    roles: tuple[AttachmentRole, ...]  # one per attachment, in the mail's order
    material: tuple[Attachment, ...] = ()  # the supporting files (no opened container)

    @property
    def supporting(self) -> tuple[AttachmentRole, ...]:
        return tuple(r for r in self.roles if r.role is Role.SUPPORTING)

    @property
    def complete(self) -> bool:
        """A Word and a PDF file, named as the subject asks where the subject names anyone."""
        picks = (self.word, self.pdf)
        if any(pick.attachment is None for pick in picks):
            return False
        return self.stem is None or all(pick.fit != "misnamed" for pick in picks)


def label(attachment: Attachment) -> str:
    """How a file is named to a person: escaped, shortened, after its container if any."""
    return shown_in(attachment.filename, attachment.container)


def identity_from_files(attachments: Sequence[Attachment], call: Call) -> tuple[str, str] | None:
    """(institution, PI) from a Word or PDF file named INSTITUTION+PI, if any."""
    extensions = set(call.attachments.word_extensions) | set(call.attachments.pdf_extensions)
    for attachment in attachments:
        if attachment.named and attachment.extension in extensions:
            parts = _PLUS.split(attachment.stem)
            if len(parts) >= 2 and parts[0].strip() and parts[-1].strip():
                pi = _SUFFIX_TAIL.sub("", parts[-1]).strip()
                return "+".join(parts[:-1]).strip(), pi
    return None


_SUFFIX_TAIL = re.compile(r"[\s_\-—]*(?:\([^()]*\)|（[^（）]*）|\[[^\[\]]*\]|【[^【】]*】)\s*$")


def name_fit(attachment: Attachment, stem: str | None) -> str:
    if stem is None:
        return "misnamed"
    expected = normalise_name(stem)
    got = normalise_name(attachment.stem)
    if got == expected:
        return "exact"
    if got.startswith(expected) and _SUFFIX.match(got[len(expected) :]):
        return "suffix"
    return "misnamed"


def looks_supporting(attachment: Attachment) -> bool:
    """Whether a file's name says it is an agreement, a letter or other supporting material."""
    return bool(_SUPPORTING_NAME.search(attachment.stem))


def _pick(candidates: list[Attachment], stem: str | None, *, scan: bool = False) -> Pick:
    """The file meant for one role: a well-named one, else one not named as supporting material.

    For the scan (``scan``), a misnamed PDF whose name says agreement, letter, 承诺... is
    set aside: when only such PDFs came, the scan is missing, not misnamed. Several
    left over are all candidates, unless some hold the expected name.
    """
    if not candidates:
        return Pick(None, "missing", ())
    ranked = sorted(
        candidates, key=lambda a: ("exact", "suffix", "misnamed").index(name_fit(a, stem))
    )
    best = ranked[0]
    fit = name_fit(best, stem)
    if fit != "misnamed" or not scan:
        return Pick(best, fit, tuple(candidates))
    meant = [a for a in candidates if not looks_supporting(a)]
    aside = tuple(a for a in candidates if looks_supporting(a))
    if not meant:
        return Pick(None, "missing", (), aside)
    # A file whose name holds the expected name (盖章版 tacked on, say) is the one meant.
    named = [a for a in meant if stem and normalise_name(stem) in normalise_name(a.stem)]
    meant = named or meant
    return Pick(meant[0], fit, tuple(meant), aside)


def read_files(
    message: Message, call: Call, identity: tuple[str | None, str | None]
) -> FileReading:
    """The files of a mail sorted into the Word proposal, the PDF scan and supporting material."""
    institution, pi = identity
    stem = call.stem(institution, pi) if institution and pi else None
    attachments = message.attachments
    words = [a for a in attachments if a.extension in call.attachments.word_extensions]
    pdfs = [a for a in attachments if a.extension in call.attachments.pdf_extensions]
    word, pdf = _pick(words, stem), _pick(pdfs, stem, scan=True)
    opened = {(c.filename, c.sha256) for c in message.containers if c.opened}
    roles = []
    material = []
    for attachment in attachments:
        if attachment is word.attachment:
            role = Role.WORD
        elif attachment is pdf.attachment:
            role = Role.PDF
        else:
            role = Role.SUPPORTING
            if (attachment.filename, attachment.sha256) not in opened:
                material.append(attachment)
        roles.append(AttachmentRole(attachment.filename, role, attachment.size, attachment.sha256))
    return FileReading(stem, word, pdf, tuple(roles), tuple(material))
