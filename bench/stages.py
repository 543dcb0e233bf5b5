"""Where a mail's time goes: mailbot's stages one by one, CPU milliseconds per mail.

Each stage is mailbot's own function run in this process on a sample of the
corpus, timed with the process clock (what other load on the machine does
not inflate). Set beside the ceiling's time per mail, it shows what stands
between the end-to-end rate and the rate at which the server hands out mail.
A stage whose function this checkout lacks is left out.
"""

from __future__ import annotations

import email
import email.policy
import hashlib
import os
import pickle
import tempfile
import time
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Any

from bench.corpus import MailBuilder, plan
from mailbot.calls import load_call
from mailbot.documents.pdf import inspect_pdf
from mailbot.documents.word import read_docx
from mailbot.judge.checks import verdict_for
from mailbot.mail.parsing import parse_message
from mailbot.store.blobs import BlobStore

ROOT = Path(__file__).resolve().parent.parent


def _cpu(work: Callable[[], Any], repeat: int = 1) -> float:
    began = time.process_time()
    for _ in range(repeat):
        work()
    return (time.process_time() - began) / repeat


def _sha256_hex(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _round_trip(value: object) -> object:
    """*value* pickled and read back, as a result crosses from a judging process."""
    return pickle.loads(pickle.dumps(value))


def _optional(module: str, name: str) -> Any:
    try:
        return getattr(__import__(module, fromlist=[name]), name)
    except (ImportError, AttributeError):
        return None


def _fork_cost() -> float:
    """Wall seconds to fork this process and reap a child that does nothing."""
    began = time.perf_counter()
    pid = os.fork()
    if pid == 0:
        os._exit(0)
    os.waitpid(pid, 0)
    return time.perf_counter() - began


def _store_wall(store: BlobStore, blobs: list[tuple[bytes, str]], *, sync: bool) -> float:
    """Wall seconds to write *blobs* (data, sha256) to *store* as the intake does, one batch."""
    began = time.perf_counter()
    with store.batch(sync=sync) as batch:
        for data, digest in blobs:
            batch.put(data, digest)
    return time.perf_counter() - began


def _store_wall_each(store: BlobStore, blobs: list[tuple[bytes, str]]) -> float:
    """Wall seconds to write *blobs* one at a time, each flushed with its folder on its own."""
    began = time.perf_counter()
    for data, digest in blobs:
        store.put(data, digest)
    return time.perf_counter() - began


def stages(count: int, builder: MailBuilder) -> dict[str, Any]:
    """CPU ms per mail for each stage, averaged over ``count`` accepted proposals."""
    call = load_call(ROOT / "rules" / "anso2021.toml")
    items = [i for i in plan(count * 2, seed=31, answered_only=True) if i.kind == "accepted"]
    items = [i for i in items if not i.completes][:count]
    raws = [builder.build(item) for item in items]
    parse_message(raws[0])  # imports and caches, as a running daemon has them
    verdict_for(parse_message(raws[0]), call, items[0].received_at)
    totals: dict[str, float] = {}

    def add(stage: str, seconds: float) -> None:
        totals[stage] = totals.get(stage, 0.0) + seconds

    content_sha256 = _optional("mailbot.store.content", "content_sha256")
    screen = _optional("mailbot.mail.screen", "screen")
    default_policy = _optional("mailbot.judge.policy", "DEFAULT_POLICY")
    mailparser = _optional("mailparser", "MailParser")
    read_with_python_docx = _optional("tests.docx_reference", "read_with_python_docx")
    with tempfile.TemporaryDirectory(prefix="mailbot-bench-stages-") as scratch:
        synced, unsynced = BlobStore(Path(scratch) / "a"), BlobStore(Path(scratch) / "b")
        each = BlobStore(Path(scratch) / "c")
        for item, raw in zip(items, raws, strict=True):
            add("sha256 of the raw mail", _cpu(partial(_sha256_hex, raw)))
            if content_sha256 is not None:
                add(
                    "content hash (trace headers left out)",
                    _cpu(partial(content_sha256, raw)),
                )
            if screen is not None and default_policy is not None:
                add(
                    "MIME screen before parsing (limits)",
                    _cpu(partial(screen, raw, default_policy)),
                )
            feed = _cpu(partial(email.message_from_bytes, raw, policy=email.policy.compat32))
            add("  stdlib FeedParser alone", feed)
            if mailparser is not None:
                whole = _cpu(partial(mailparser.from_bytes, raw))
                add("  mail-parser on top of it", max(whole - feed, 0.0))
            message = parse_message(raw)
            add(
                "parse_message (mail-parser, walk, decode)",
                _cpu(partial(parse_message, raw)),
            )
            verdict = verdict_for(message, call, item.received_at)
            add(
                "judge (rules, Word form, PDF)",
                _cpu(partial(verdict_for, message, call, item.received_at)),
            )
            for attachment in message.attachments:
                if attachment.extension == ".docx":
                    add(
                        "  of which the form is read from its XML (lxml)",
                        _cpu(partial(read_docx, attachment.data, call.documents)),
                    )
                    if read_with_python_docx is not None:
                        add(
                            "  python-docx reading the same form (before)",
                            _cpu(partial(read_with_python_docx, attachment.data, call.documents)),
                        )
                elif attachment.extension == ".pdf":
                    add(
                        "  of which pypdf reads the PDFs",
                        _cpu(partial(inspect_pdf, attachment.data, call.documents)),
                    )
            add(
                "pickle the result across a process (isolation)",
                _cpu(partial(_round_trip, (message, verdict))),
            )
            blobs = [(raw, hashlib.sha256(raw).hexdigest())]
            blobs += [(a.data, a.sha256) for a in message.attachments]
            add(
                "blob store: write raw + files, fsync together (wall)",
                _store_wall(synced, blobs, sync=True),
            )
            add("  one at a time, each with its folder (wall)", _store_wall_each(each, blobs))
            add("  the same without fsync (wall)", _store_wall(unsynced, blobs, sync=False))
    per_mail = {stage: round(seconds / len(raws) * 1000, 1) for stage, seconds in totals.items()}
    return {
        "mails": len(raws),
        "mean_mail_mb": round(sum(map(len, raws)) / len(raws) / 2**20, 2),
        "ms_per_mail": per_mail,
        "fork_ms": round(min(_fork_cost() for _ in range(5)) * 1000, 2),
    }
