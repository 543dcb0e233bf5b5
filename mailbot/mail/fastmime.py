"""Large base64 bodies kept away from the standard library's line-by-line parser.

The FeedParser reads a mail line by line in Python, testing every line of a
base64 attachment against the boundaries it is inside: most of the time and
memory parsing takes. ``cut`` finds each run of ``MIN_LINES`` or more base64
lines that starts a body, decodes it with one ``binascii.a2b_base64`` call
and puts a one-line token in its place; the parser then reads the short
rest. ``Cut.settle`` gives the decoded bytes to the part the token landed
in, and ``Cut.flatten`` writes the runs back where a part is written out.

The result is the tree the parser makes of the whole mail, payload for
payload, which is why a run is cut only when that is certain:

- a run is decoded only if every byte in it is a base64 character except
  the line endings it was measured with, and the padding at its very end:
  then each of its lines is, to the parser, a line like the token (no
  colon, no leading blank, no "--", not empty), and the standard library,
  decoding the part, comes to exactly these bytes and reports no defect;
- a token that lands anywhere else than alone in the body of a part whose
  Content-Transfer-Encoding is base64 (with blank lines around at most) is
  replaced by the lines it stands for, as the parser would have kept them;
- a token that cannot be found at all makes the caller parse the whole mail.
"""

from __future__ import annotations

import binascii
import email.message
import re
from dataclasses import dataclass, field
from typing import Any, TypeGuard

MIN_LINES = 512  # a run shorter than this is left to the parser (read at each call)

_MAX_WIDTH = 1000  # RFC 5322's 998 octets and the line ending: longer is no MIME line
_MAX_TAIL = 3  # short lines after the full-width ones: the last line, and stray ones
_BASE64_LINE = re.compile(rb"[A-Za-z0-9+/]+={0,2}")
_STARTS: dict[int, re.Pattern[bytes]] = {}


class Unsettled(Exception):
    """A token is not where the parser must have put it: parse the whole mail instead."""


class CutPart(email.message.Message):
    """A MIME part; ``decoded`` is set on one whose base64 body was cut out.

    Its class is called "Message" at run time, as the standard library's is,
    so that whatever names the class of a part (an error's text) says the
    same as for a mail parsed whole.
    """

    decoded: bytes | None = None

    def get_payload(self, i: Any = None, decode: bool = False) -> Any:
        if decode and i is None and self.decoded is not None:
            return self.decoded
        return super().get_payload(i, decode)  # type: ignore[call-overload]


CutPart.__name__ = CutPart.__qualname__ = "Message"


@dataclass(frozen=True)
class Run:
    """Base64 lines cut out of the mail: ``raw[start:end]``, the last line's ending included."""

    start: int
    end: int
    ending: bytes  # b"\r\n" or b"\n", the ending of the token line that stands for it
    data: bytes = field(repr=False)  # the lines decoded


@dataclass
class Cut:
    """A mail with its large base64 runs replaced by token lines."""

    raw: bytes
    data: bytes  # what the parser reads
    prefix: str  # every token starts with it, and nothing else in ``data`` holds it
    runs: dict[str, Run]  # token -> the run it stands for
    decoded: dict[str, Run] = field(default_factory=dict)  # the runs given to a part as bytes

    def settle(self, tree: email.message.Message) -> email.message.Message:
        """Give each run's bytes to the part its token is the body of; put back the others.

        Raises ``Unsettled`` when a token is not found exactly once, or on any fault.
        """
        try:
            return self._settle(tree)
        except Unsettled:
            raise
        except Exception as exc:  # whatever it is, the whole mail parsed is the answer
            raise Unsettled(f"{type(exc).__name__}: {exc}") from exc

    def _settle(self, tree: email.message.Message) -> email.message.Message:
        seen = dict.fromkeys(self.runs, 0)
        stack = [tree]
        while stack:
            part = stack.pop()
            payload = getattr(part, "_payload", None)
            if isinstance(payload, list):
                stack.extend(p for p in payload if isinstance(p, email.message.Message))
            elif isinstance(payload, str) and self.prefix in payload:
                token = payload.strip("\r\n")
                if token in self.runs and _decodes(part):
                    part.decoded = self.runs[token].data
                    self.decoded[token] = self.runs[token]
                    seen[token] += 1
                else:
                    part.set_payload(self._put_back(payload, seen))
            if part.preamble is not None and self.prefix in part.preamble:
                part.preamble = self._put_back(part.preamble, seen)
            if part.epilogue is not None and self.prefix in part.epilogue:
                part.epilogue = self._put_back(part.epilogue, seen)
        if any(count != 1 for count in seen.values()):
            raise Unsettled(f"{sum(seen.values())} tokens found for {len(seen)} runs")
        self.runs = dict(self.decoded)  # the bytes of the runs put back are not needed
        return tree

    def flatten(self, part: email.message.Message) -> bytes:
        """``part.as_bytes()``, with the lines of the runs in it as the generator writes them."""
        data = part.as_bytes()
        if not self.decoded or self.prefix.encode() not in data:
            return data
        for token, run in self.decoded.items():
            marker = token.encode()
            if marker in data:
                # The generator ends every line with "\n"; a run has no other "\r".
                data = data.replace(marker, self._lines(run).replace(b"\r\n", b"\n"))
        return data

    def _lines(self, run: Run) -> bytes:
        """The run as the parser keeps it: without the last line's ending."""
        return self.raw[run.start : run.end - len(run.ending)]

    def _put_back(self, text: str, seen: dict[str, int]) -> str:
        for token, run in self.runs.items():
            count = text.count(token)
            if count:
                seen[token] += count
                text = text.replace(token, self._lines(run).decode("ascii"))
        return text


def _decodes(part: email.message.Message) -> TypeGuard[CutPart]:
    """Whether ``part`` can hold decoded bytes: a leaf the standard library decodes as base64."""
    if not isinstance(part, CutPart) or part.get_content_maintype() in ("multipart", "message"):
        return False
    return str(part.get("content-transfer-encoding", "")).lower() == "base64"


def cut(raw: bytes, min_lines: int | None = None) -> Cut | None:
    """The mail with every base64 run of ``min_lines`` lines or more cut out; None if none is."""
    if not isinstance(raw, bytes):
        return None
    runs = find_runs(raw, MIN_LINES if min_lines is None else min_lines)
    if not runs:
        return None
    view = memoryview(raw)
    attempt = 0
    while True:
        # "#" is no base64 character: no run holds a token, only the rest of the mail might.
        prefix = f"#mailbot-base64-{attempt}-"
        tokens = [f"{prefix}{number:06d}#" for number in range(len(runs))]
        pieces: list[bytes | memoryview] = []
        position = 0
        for token, run in zip(tokens, runs, strict=True):
            pieces += [view[position : run.start], token.encode() + run.ending]
            position = run.end
        pieces.append(view[position:])
        data = b"".join(pieces)
        if data.count(prefix.encode()) == len(runs):
            return Cut(raw, data, prefix, dict(zip(tokens, runs, strict=True)))
        attempt += 1


def find_runs(raw: bytes, min_lines: int) -> list[Run]:
    """Each run of ``min_lines`` or more base64 lines that begins right after a blank line.

    A run is lines of one width (the base64 of a body), then up to
    ``_MAX_TAIL`` shorter ones (its end). Only runs that decode cleanly in
    full are returned (see the module's documentation).
    """
    min_lines = max(min_lines, 1)
    runs: list[Run] = []
    if min_lines > len(raw) // 2:  # a line is two bytes at least
        return runs
    starts = _starts(min_lines)
    position = 0
    while True:
        blank = starts.search(raw, position)
        if blank is None:
            return runs
        run = _run_at(raw, blank.end(), min_lines)
        if run is not None:
            runs.append(run)
        # The last "\n" may begin the next blank line.
        position = (run.end if run is not None else blank.end()) - 1


def _starts(min_lines: int) -> re.Pattern[bytes]:
    """A blank line and then ``min_lines`` lines of base64 characters, the lines unread.

    Only where this matches can a run begin: the regular expression passes
    over everything else (text, short bodies, runs of blank lines) without
    a step in Python, and never reads a line twice, since what it reads
    ends at a blank line at the latest.
    """
    pattern = _STARTS.get(min_lines)
    if pattern is None:
        if len(_STARTS) > 16:
            _STARTS.clear()
        lines = rb"(?=(?:[A-Za-z0-9+/=]+\r?\n){%d})" % min_lines
        pattern = _STARTS[min_lines] = re.compile(rb"\n\r?\n" + lines)
    return pattern


def _run_at(raw: bytes, start: int, min_lines: int) -> Run | None:
    newline = raw.find(b"\n", start, start + _MAX_WIDTH)
    if newline < 0:
        return None
    width = newline + 1 - start
    ending = b"\r\n" if raw[newline - 1 : newline] == b"\r" else b"\n"
    if not _BASE64_LINE.fullmatch(raw, start, newline + 1 - len(ending)):
        return None
    full = _full_lines(raw, start, width, len(ending) == 2, min_lines - _MAX_TAIL)
    # A stride may also land on the line end of what follows the run: back off to base64.
    while full and not _BASE64_LINE.fullmatch(
        raw, start + (full - 1) * width, start + full * width - len(ending)
    ):
        full -= 1
    end = start + full * width
    contents = full * (width - len(ending))
    last = raw[end - width : end - len(ending)] if full else b""
    lines = full
    for _ in range(_MAX_TAIL):
        newline = raw.find(b"\n", end, end + width)
        if newline < 0:
            break
        line_end = newline - 1 if raw[newline - 1 : newline] == b"\r" else newline
        if not _BASE64_LINE.fullmatch(raw, end, line_end):
            break
        last = raw[end:line_end]
        contents += line_end - end
        lines += 1
        end = newline + 1
    if lines < min_lines:
        return None
    data = _decode(memoryview(raw)[start:end], contents, len(last) - len(last.rstrip(b"=")))
    if data is None:
        return None
    return Run(start, end, b"\r\n" if raw.endswith(b"\r\n", 0, end) else b"\n", data)


def _full_lines(raw: bytes, start: int, width: int, crlf: bool, least: int) -> int:
    """How many lines of exactly ``width`` bytes follow one another from ``start``.

    Only the line endings are looked at, one byte in ``width`` (the rest is
    checked by decoding); 0 when there are fewer than ``least``.
    """
    limit = (len(raw) - start) // width
    count, step = 0, max(least, 64)
    while count < limit:
        stop = min(count + step, limit)
        first, last = start + (count + 1) * width - 1, start + stop * width
        ends = raw[first:last:width]
        good = len(ends) - len(ends.lstrip(b"\n"))
        if crlf:
            returns = raw[first - 1 : last - 1 : width]
            good = min(good, len(returns) - len(returns.lstrip(b"\r")))
        count += good
        if good < len(ends) or count < least:
            break
        step *= 2
    return count if count >= least else 0


def _decode(lines: memoryview, contents: int, padding: int) -> bytes | None:
    """The bytes of base64 ``lines``, or None unless they are exactly what they seem.

    ``contents`` is the number of bytes that are not line endings, the last
    ``padding`` of them "=". ``a2b_base64`` skips whatever is no base64
    character and stops at padding: any such byte among the others gives
    fewer bytes than ``contents`` promise (or an error), so a length that
    matches proves every one of them a base64 character, as strict
    decoding of the joined lines would.
    """
    if contents % 4 or padding > 2:
        return None
    try:
        data = binascii.a2b_base64(lines)
    except binascii.Error:
        return None
    return data if len(data) == (contents - padding) * 3 // 4 else None
