"""The content hash: one sha256 for every copy the mailbox got of one sent mail.

Mail sent once can reach the mailbox twice: delivered again after a
timeout, or addressed to the mailbox and to an alias or cc address that
forwards to it. The copies are the same bytes except for what each hop of
the delivery wrote on top: trace headers (RFC 5321 4.4, RFC 5322 3.6.7) and
the delivery agent's notes. The content hash leaves those out, and line
endings, and the newlines at the very end, so the copies hash alike, while
anything the sender wrote (Message-ID, Date, From, Subject, the body)
still tells two mails apart. The raw hash (``Mail.raw_sha256``) stays the
name of the exact bytes in the blob store.
"""

from __future__ import annotations

import hashlib
import re
from typing import Protocol

# Written by the servers on the way, never by the sender: they differ between copies.
TRACE_HEADERS = frozenset(
    {
        "received",
        "return-path",
        "delivered-to",
        "x-original-to",
        "x-delivered-to",
        "envelope-to",
        "x-envelope-to",
        "x-envelope-from",
        "x-received",
        "received-spf",
        "authentication-results",
        "arc-seal",
        "arc-message-signature",
        "arc-authentication-results",
    }
)
# Whole families a receiving server stamps on each copy: spam and virus scores.
TRACE_PREFIXES = ("x-spam-", "x-virus-")

_FIELD_NAME = re.compile(rb"^([!-9;-~]+)[ \t]*:")


def is_trace(name: str) -> bool:
    name = name.lower()
    return name in TRACE_HEADERS or name.startswith(TRACE_PREFIXES)


def content_sha256(raw: bytes) -> str:
    """The sha256 of the mail as its sender wrote it (see the module's documentation)."""
    return _content_sha256(raw, _CHUNK)


class _Digest(Protocol):
    """What the body is fed to: a hashlib object."""

    def update(self, data: bytes | memoryview, /) -> None: ...


_CHUNK = 2**20  # the body is normalised and hashed this many bytes at a time
# The first blank line: two line breaks in a row, each read as the normalisation
# (CRLF, then CR, to LF) reads it. Atomic, so that one CRLF never counts as two.
_BLANK_LINE = re.compile(rb"(?>\r\n|\r|\n)(?>\r\n|\r|\n)")
_LONE_CR = re.compile(rb"\r(?!\n)")


def _content_sha256(raw: bytes, chunk: int) -> str:
    """``content_sha256`` without copying the mail: the body goes ``chunk`` bytes at a time.

    The digest is that of the whole mail with CRLF and then CR made LF, cut
    at the first blank line: the headers kept, the blank line, and the body
    without the newlines at its end. Only the header block is normalised as
    a whole; a piece of the body never ends between the CR and LF of a CRLF.
    """
    blank = _BLANK_LINE.search(raw)
    head = _normalised(raw if blank is None else raw[: blank.start()])
    digest = hashlib.sha256(_without_trace(head))
    if blank is None:
        return digest.hexdigest()
    digest.update(b"\n\n")
    _hash_body(digest, raw, blank.end(), chunk)
    return digest.hexdigest()


def _without_trace(head: bytes) -> bytes:
    """A normalised header block without its trace fields and an mbox separator."""
    kept: list[bytes] = []
    dropping = False
    for number, line in enumerate(head.split(b"\n")):
        if line[:1] in (b" ", b"\t"):  # a folded line belongs to the field above it
            if not dropping:
                kept.append(line)
            continue
        match = _FIELD_NAME.match(line)
        if number == 0 and match is None and line.startswith(b"From "):
            dropping = True  # an mbox separator, written by whoever stored the copy
            continue
        dropping = match is not None and is_trace(match.group(1).decode("ascii"))
        if not dropping:
            kept.append(line)
    return b"\n".join(kept)


def _hash_body(digest: _Digest, raw: bytes, position: int, chunk: int) -> None:
    """Hash ``raw`` from ``position`` on, normalised, without the newlines at its end."""
    view = memoryview(raw)
    held = 0  # newlines that ended the body so far: hashed only once more text follows
    while position < len(raw):
        end = min(position + chunk, len(raw))
        if raw[end - 1 : end + 1] == b"\r\n":
            end += 1
        text = _body_piece(raw, view, position, end)
        kept_length = len(text)
        if text[-1] == 0x0A:
            kept_length = len(bytes(text).rstrip(b"\n"))
        if kept_length:
            while held:
                step = min(held, chunk)
                digest.update(b"\n" * step)
                held -= step
            digest.update(text[:kept_length])
        held += len(text) - kept_length
        position = end


def _body_piece(raw: bytes, view: memoryview, start: int, end: int) -> bytes | memoryview:
    """``raw[start:end]`` normalised; hashed where it lies when it holds no CR."""
    if raw.find(b"\r", start, end) < 0:
        return view[start:end]
    piece = raw[start:end]
    # Where every CR is a CRLF's, deleting them is the normalisation (and much faster).
    return _normalised(piece) if _LONE_CR.search(piece) else piece.replace(b"\r", b"")


def _normalised(data: bytes) -> bytes:
    """Every line ending made LF: CRLF first, then a CR alone."""
    return data.replace(b"\r\n", b"\n").replace(b"\r", b"\n")
