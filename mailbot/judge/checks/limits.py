"""Mail nobody can read: unparseable bytes, and mail over the intake's limits.

``measure_mime`` reads the MIME structure of raw bytes in one pass, without
the parsers, so that a mail too big, too deep or of too many parts is
refused before any library spends its time on it; ``LimitCheck`` says the
same of a Message already parsed. Both give ``too_complex``; bytes with no
mail header give ``unparseable``. Either way nobody is answered and a person
reads the mail.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass

from mailbot.judge.checks.case import Case
from mailbot.judge.policy import IntakePolicy
from mailbot.judge.verdict import Problem, Severity

# A mail has at least one of these; bytes that show none are no mail at all.
_MAIL_HEADERS = frozenset(
    {
        "from",
        "sender",
        "reply-to",
        "to",
        "cc",
        "bcc",
        "subject",
        "date",
        "message-id",
        "received",
        "return-path",
        "mime-version",
        "content-type",
    }
)
_DEPTH_DEFECT = "nesting deeper than"  # what mailbot.mail.parsing notes when it stops walking


def check_readable(case: Case) -> Iterator[Problem]:
    """``unparseable``: no mail header at all, or the libraries could read only the headers."""
    message = case.message
    if message.parsed_by == "headers-only":
        failures = "; ".join(d for d in message.defects if d.startswith(("mail-parser", "email")))
        yield unparseable(f"only the headers could be read: {_short(failures)}")
    elif not any(name in _MAIL_HEADERS for name, _value in message.headers):
        yield unparseable(f"no mail header in {message.raw_size} bytes")


@dataclass(frozen=True)
class LimitCheck:
    """``too_complex``: a parsed mail over the size, part or nesting limits."""

    policy: IntakePolicy

    def __call__(self, case: Case) -> Iterator[Problem]:
        message = case.message
        reasons = []
        if message.raw_size > self.policy.max_mail_size:
            reasons.append(_over_size(message.raw_size, self.policy.max_mail_size))
        parts = len(message.attachments) + len(message.inline_parts)
        if parts > self.policy.max_parts:
            reasons.append(f"{parts} parts, over the limit of {self.policy.max_parts}")
        reasons += [d for d in message.defects if d.startswith(_DEPTH_DEFECT)]
        if reasons:
            yield too_complex("; ".join(reasons))


@dataclass(frozen=True)
class MimeShape:
    """How deep the MIME tree goes and how many body parts it has (as far as it was read)."""

    depth: int
    parts: int


def screen(raw: bytes, policy: IntakePolicy) -> Problem | None:
    """``too_complex`` for raw bytes over the policy's limits, before any parser sees them."""
    if len(raw) > policy.max_mail_size:
        return too_complex(_over_size(len(raw), policy.max_mail_size))
    shape = measure_mime(raw, max_depth=policy.max_depth, max_parts=policy.max_parts)
    if shape.depth > policy.max_depth:
        return too_complex(f"MIME parts nested deeper than {policy.max_depth} levels")
    if shape.parts > policy.max_parts:
        return too_complex(f"more than {policy.max_parts} MIME parts")
    return None


def measure_mime(raw: bytes, *, max_depth: int, max_parts: int) -> MimeShape:
    """Depth and part count of the MIME tree, read as the standard library reads it.

    Stops as soon as either limit is passed, so the time is one pass over
    the bytes at most. A forwarded mail (message/rfc822) counts as a level.
    """
    stack: list[bytes | None] = []  # a boundary per open multipart, None per forwarded mail
    depth = parts = pos = 0
    in_headers = True
    while pos <= len(raw):
        if in_headers:
            end = _header_end(raw, pos)
            kind, boundary = _content_type(raw[pos:end])
            pos = end
            if kind in ("message/rfc822", "message/global"):
                stack.append(None)  # its body is another mail: a header block again
            else:
                in_headers = False
                if kind.startswith("multipart/") and boundary:
                    stack.append(boundary)
            depth = max(depth, len(stack))
            if depth > max_depth:
                break
            continue
        pattern = _delimiters(stack)
        match = _search(pattern, raw, pos) if pattern is not None else None
        if match is None:
            break
        pos = match.end() + 1
        level = max(i for i, b in enumerate(stack) if b == match.group(1))
        if match.group(2):  # the closing delimiter: that multipart is done
            del stack[level:]
            continue
        del stack[level + 1 :]
        parts += 1
        if parts > max_parts:
            break
        in_headers = True
    return MimeShape(depth, parts)


def _header_end(raw: bytes, pos: int) -> int:
    """Where the body after the header block at ``pos`` begins."""
    if raw.startswith(b"\r\n", pos):
        return pos + 2
    if raw.startswith(b"\n", pos):
        return pos + 1
    blank = _BLANK_LINE.search(raw, pos)
    return blank.end() if blank is not None else len(raw) + 1


_BLANK_LINE = re.compile(rb"\n\r?\n")
_CONTENT_TYPE = re.compile(rb"(?im)^content-type[ \t]*:[ \t]*([^;\r\n]*)((?:[^\r\n]|\r?\n[ \t])*)")
_BOUNDARY = re.compile(rb'(?i)\bboundary[ \t]*=[ \t]*(?:"([^"\r\n]*)"|([^;\s]+))')


def _content_type(block: bytes) -> tuple[str, bytes | None]:
    match = _CONTENT_TYPE.search(block)
    if match is None:
        return "text/plain", None
    kind = match.group(1).strip().lower().decode("ascii", "replace")
    found = _BOUNDARY.search(match.group(2))
    if found is None:
        return kind, None
    boundary = found.group(1) if found.group(1) is not None else found.group(2)
    return kind, boundary or None


_LINE_DASHES = re.compile(rb"\n--")
_WINDOW = 1 << 16


def _search(pattern: re.Pattern[bytes], raw: bytes, pos: int) -> re.Match[bytes] | None:
    """``pattern.search(raw, pos)``, trying only the lines that begin with "--".

    A delimiter line begins with "--", and base64 has no "-": ``find``
    passes over a body at memory speed where the pattern would be tried at
    every byte. Where there are dashes, the lines that begin with them are
    sought a window at a time.
    """
    if pos == 0 or raw[pos - 1 : pos] == b"\n":
        match = pattern.match(raw, pos)
        if match is not None:
            return match
    at = pos
    while True:
        dash = raw.find(b"-", at)
        if dash < 0:
            return None
        # A line beginning with that dash has its "\n" just before it; later ones, in the window.
        line = _LINE_DASHES.search(raw, max(dash - 1, pos), dash + _WINDOW)
        if line is None:
            at = dash + _WINDOW - 2  # a "\n--" across the window's end is found from there
            continue
        match = pattern.match(raw, line.start() + 1)
        if match is not None:
            return match
        at = line.start() + 2


_PATTERNS: dict[tuple[bytes, ...], re.Pattern[bytes]] = {}


def _delimiters(stack: list[bytes | None]) -> re.Pattern[bytes] | None:
    names = tuple(sorted({b for b in stack if b is not None}, key=len, reverse=True))
    if not names:
        return None
    pattern = _PATTERNS.get(names)
    if pattern is None:
        if len(_PATTERNS) > 256:
            _PATTERNS.clear()
        alternatives = b"|".join(re.escape(n) for n in names)
        pattern = re.compile(rb"(?m)^--(" + alternatives + rb")(--)?[ \t]*\r?$")
        _PATTERNS[names] = pattern
    return pattern


def _over_size(size: int, limit: int) -> str:
    return f"{_amount(size)}, over the limit of {_amount(limit)}"


def _amount(size: int) -> str:
    if size >= 2**20:
        return f"{size / 2**20:.1f} MB".replace(".0 MB", " MB")
    return f"{size / 1024:.0f} KB"


def _short(value: str, limit: int = 200) -> str:
    value = " ".join(value.split())
    return value if len(value) <= limit else value[: limit - 1] + "…"


def unparseable(evidence: str) -> Problem:
    return Problem(
        "unparseable",
        Severity.INFO,
        f"无法读取这封邮件，不予答复，由工作人员阅读（{evidence}）。",
        f"The mail cannot be read; it gets no answer and a person reads it ({evidence}).",
    )


def too_complex(evidence: str) -> Problem:
    return Problem(
        "too_complex",
        Severity.INFO,
        f"邮件超出系统处理限度，不予答复，由工作人员阅读（{evidence}）。",
        f"The mail is beyond what mailbot reads; it gets no answer and a person reads it "
        f"({evidence}).",
    )
