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
    text = raw.replace(b"\r\n", b"\n").replace(b"\r", b"\n")
    head, separator, body = text.partition(b"\n\n")
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
    digest = hashlib.sha256(b"\n".join(kept))
    digest.update(separator)
    digest.update(body.rstrip(b"\n"))
    return digest.hexdigest()
