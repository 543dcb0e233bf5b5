"""A name a sender chose (a file name, an archive entry), made safe to show to a person.

A name is data, never a path: mailbot stores files under their SHA-256 and
names nothing on disk after a sender. Shown in a reply, a log line or the
intake log, a name must still not deceive or break the line it stands in:
control characters, bidirectional controls (U+202E turns ``gpj.exe`` into
``exe.jpg`` on screen) and invisible characters are written as ``\\u202e``
escapes, path separators as look-alikes that are no separators, and a very
long name is shortened in the middle, its extension kept.
"""

from __future__ import annotations

import re
import unicodedata

# Path separators stay visible but can no longer separate anything.
_SEPARATORS = {"/": "\u2215", "\\": "\u29f5"}  # DIVISION SLASH, REVERSE SOLIDUS OPERATOR
# Unicode categories never shown as themselves: controls (NUL, ESC, CR, LF,
# TAB...), format characters (the bidi controls U+200E/F, U+202A-E, U+2066-9,
# zero-width characters, BOM), surrogates, line and paragraph separators, and
# code points not assigned yet.
_HIDDEN = frozenset({"Cc", "Cf", "Cs", "Zl", "Zp", "Cn"})
_EXTENSION = re.compile(r"\.[A-Za-z0-9]{1,8}$")
ELLIPSIS = "…"


def _token(char: str) -> str:
    if char in _SEPARATORS:
        return _SEPARATORS[char]
    if unicodedata.category(char) in _HIDDEN:
        code = ord(char)
        return f"\\u{code:04x}" if code <= 0xFFFF else f"\\U{code:08x}"
    return char


def shown(name: str, limit: int = 120) -> str:
    """``name`` as it may be shown: hidden characters escaped, at most ``limit`` characters.

    A longer name loses its middle to an ellipsis; its start and its
    extension (``.pdf``) stay, since those are what a reader checks.
    """
    tokens = [_token(char) for char in name]
    if sum(len(t) for t in tokens) <= limit:
        return "".join(tokens)
    match = _EXTENSION.search(name)
    tail_tokens = tokens[len(name) - len(match.group(0)) :] if match else []
    body = tokens[: len(tokens) - len(tail_tokens)]
    room = max(limit - len(ELLIPSIS) - sum(len(t) for t in tail_tokens), 2)
    head, rest = _take(body, (room * 2 + 2) // 3), room - (room * 2 + 2) // 3
    end = _take(list(reversed(body[len(head) :])), rest)
    return "".join(head) + ELLIPSIS + "".join(reversed(end)) + "".join(tail_tokens)


def _take(tokens: list[str], room: int) -> list[str]:
    """The first tokens that fit in ``room`` characters: an escape is never cut."""
    taken: list[str] = []
    used = 0
    for token in tokens:
        if used + len(token) > room:
            break
        taken.append(token)
        used += len(token)
    return taken


def shown_in(name: str, container: str | None, limit: int = 120) -> str:
    """A file's name, after the container it was taken from (``材料.zip › 建议书.docx``)."""
    if container is None:
        return shown(name, limit)
    return f"{shown(container, limit // 2)} › {shown(name, limit)}"


# The controls that reorder text on screen (Trojan Source): LRM/RLM, ALM, the
# embeddings and overrides U+202A-E and the isolates U+2066-9.
_BIDI = {code: f"\\u{code:04x}" for code in (0x061C, 0x200E, 0x200F, *range(0x202A, 0x202F))}
_BIDI.update({code: f"\\u{code:04x}" for code in range(0x2066, 0x206A)})


def without_bidi(text: str) -> str:
    """Any text with its bidirectional controls written as ``\\u202e`` escapes, all else kept.

    For text that is not a name (a subject, a mail's body): line breaks and
    length stay, only what could make it read otherwise on screen goes.
    """
    return text.translate(_BIDI)


# What a letter shows of the institution and PI a sender wrote: enough for the
# longest real names (an institute's full English name runs to about 80
# characters), too little for a message of one's own.
INSTITUTION_LIMIT = 80
PI_LIMIT = 40


def plain(text: str, limit: int) -> str:
    """Text a sender wrote, for a letter: hidden characters dropped, spaces collapsed, cut.

    Controls, bidirectional and invisible characters go (a letter has no use
    for their escapes), then :func:`shown` cuts what is longer than ``limit``.
    """
    kept = "".join(char for char in text if unicodedata.category(char) not in _HIDDEN)
    return shown(" ".join(kept.split()), limit)


def shown_identity(institution: str | None, pi: str | None) -> tuple[str | None, str | None]:
    """The institution and PI as a letter to the sender shows them (None stays None, as does
    a name with nothing left to show)."""
    return (
        plain(institution, INSTITUTION_LIMIT) or None if institution is not None else None,
        plain(pi, PI_LIMIT) or None if pi is not None else None,
    )
