"""What a subject says: PREFIX：INSTITUTION+PI, with the slack real clients need.

Read once per mail (``Case.subject``); the subject check and the identity of
the sender both rest on it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from mailbot.calls import Call

_COLON = "[:：]"
_PLUS = "[+＋]"


@dataclass(frozen=True)
class SubjectReading:
    institution: str | None
    pi: str | None
    well_formed: bool
    core: str  # the subject without reply and forward prefixes


def strip_reply_prefixes(subject: str, call: Call) -> str:
    """Remove Re:, 回复：, Fwd[2]: ... from the front, however many there are."""
    names = "|".join(
        re.escape(p) for p in sorted(call.subject.reply_prefixes, key=len, reverse=True)
    )
    if not names:
        return subject.strip()
    pattern = re.compile(rf"^\s*(?:{names})\s*(?:\[\d+\]|\(\d+\))?\s*{_COLON}\s*", re.IGNORECASE)
    previous = None
    while previous != subject:
        previous, subject = subject, pattern.sub("", subject, count=1)
    return subject.strip()


def read_subject(subject: str, call: Call) -> SubjectReading:
    core = strip_reply_prefixes(subject, call)
    prefix = re.escape(call.subject.prefix)
    strict = re.fullmatch(
        rf"{prefix}\s*{_COLON}\s*(?P<inst>.*\S)\s*{_PLUS}\s*(?P<pi>[^+＋]*[^+＋\s])", core
    )
    if strict:
        return SubjectReading(strict.group("inst").strip(), strict.group("pi").strip(), True, core)
    # Not well formed: still try to see who wrote, so that the reply can spell
    # out the exact subject expected of them.
    rest = re.sub(rf"^.*?{prefix}", "", core, count=1) if call.subject.prefix in core else core
    rest = re.sub(r"^[\s\W_]+", "", rest)
    loose = re.fullmatch(rf"(?P<inst>.*?\S)\s*{_PLUS}\s*(?P<pi>[^+＋]*[^+＋\s\W])\W*", rest)
    if loose:
        return SubjectReading(loose.group("inst").strip(), loose.group("pi").strip(), False, core)
    return SubjectReading(None, None, False, core)
