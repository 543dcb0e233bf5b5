"""The MIME screen: a mail's size, depth and part count read from its bytes, before any parser.

``measure_mime`` reads the MIME structure of raw bytes in one pass, as the
standard library would read it but without building anything, so that a mail
too big, too deep or of too many parts is refused before any library spends
its time or memory on it ([intake] max_mail_size, max_depth, max_parts).
``screen`` says why a mail is over those limits; the judge turns that into
the verdict ``too_complex``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Protocol


class MailLimits(Protocol):
    """The limits the screen reads (mailbot.judge.policy.IntakePolicy has them)."""

    @property
    def max_mail_size(self) -> int: ...

    @property
    def max_depth(self) -> int: ...

    @property
    def max_parts(self) -> int: ...


@dataclass(frozen=True)
class MimeShape:
    """How deep the MIME tree goes and how many body parts it has (as far as it was read)."""

    depth: int
    parts: int


def screen(raw: bytes, limits: MailLimits) -> str | None:
    """Why raw bytes are over the limits, before any parser sees them; None when they are not."""
    if len(raw) > limits.max_mail_size:
        return over_size(len(raw), limits.max_mail_size)
    shape = measure_mime(raw, max_depth=limits.max_depth, max_parts=limits.max_parts)
    if shape.depth > limits.max_depth:
        return f"MIME parts nested deeper than {limits.max_depth} levels"
    if shape.parts > limits.max_parts:
        return f"more than {limits.max_parts} MIME parts"
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


def over_size(size: int, limit: int) -> str:
    """A size over its limit, in words: "12.5 MB, over the limit of 10 MB"."""
    return f"{_amount(size)}, over the limit of {_amount(limit)}"


def _amount(size: int) -> str:
    if size >= 2**20:
        return f"{size / 2**20:.1f} MB".replace(".0 MB", " MB")
    return f"{size / 1024:.0f} KB"
