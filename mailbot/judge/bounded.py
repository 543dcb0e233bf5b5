"""The limits one mail is parsed and judged under, so that no mail can hang or exhaust the daemon.

The size and MIME structure are measured first, in one pass over the bytes
(mailbot.mail.screen); a mail over [intake] max_mail_size, max_depth or
max_parts is never handed to the parsers (parse_and_judge). The time and
memory limits are kept by running the work in another process:
mailbot.judge.processes keeps long-lived judging processes for the intake, and
run_bounded runs one piece of work in a child of its own, with a memory
limit (RLIMIT_AS and RLIMIT_DATA, judge_memory beyond what the child holds
when it starts) and a time limit, killed when it overruns. A mail that
overran is read from its header block alone (headers_only, else
bare_message) and gets the verdict ``ignored`` with the code
``too_complex``, for a person to read. An error in mailbot's own code is
raised again in the daemon (JudgeError), for the caller's per-mail boundary.

A child of run_bounded is a fork of the daemon (nothing to pickle on the
way in, no module imported again). It touches nothing the daemon's other
threads may hold at the moment of the fork: no database, no socket, and no
logging (a log stream's lock held by another thread would stay held in the
child), and it ends with os._exit, running no finalizer of the daemon's.
"""

from __future__ import annotations

import dataclasses
import email.parser
import email.policy
import email.utils
import logging
import traceback
import warnings
from collections.abc import Callable
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, TypeVar

from mailbot.calls import Call
from mailbot.errors import MailbotError
from mailbot.judge.checks import verdict_for
from mailbot.judge.checks.limits import too_complex
from mailbot.judge.memory import limit_memory
from mailbot.judge.policy import IntakePolicy
from mailbot.judge.verdict import Problem, Status, Verdict
from mailbot.mail.message import Message
from mailbot.mail.parsing import parse_message
from mailbot.mail.screen import screen

if TYPE_CHECKING:
    from multiprocessing.connection import Connection

log = logging.getLogger(__name__)

T = TypeVar("T")

HEAD_LIMIT = 1024 * 1024  # the fallback reads this much of the header block at most


class JudgeError(MailbotError):
    """mailbot's own code failed on a mail in the child process (the traceback says where)."""


@dataclasses.dataclass(frozen=True)
class Overrun:
    """The child went over a limit or ended without an answer."""

    reason: str


def parse_and_judge(
    raw: bytes, call: Call, received_at: datetime | None, policy: IntakePolicy
) -> tuple[Message, Verdict]:
    """The work itself, with the size and structure limits; no time or memory limit."""
    message, verdict = parse_within_limits(raw, call, received_at, policy)
    return message, verdict or verdict_for(message, call, received_at, policy)


def parse_within_limits(
    raw: bytes, call: Call, received_at: datetime | None, policy: IntakePolicy
) -> tuple[Message, Verdict | None]:
    """The mail parsed, and its verdict if the size and structure limits already decide it.

    The first half of parse_and_judge: verdict_for does the rest, without the raw bytes.
    """
    over = screen(raw, policy)
    if over is not None:
        problem = too_complex(over)
        message = headers_only(raw, problem.en)
        return message, ignored(message, call, received_at, problem)
    message = parse_message(raw, call.documents)
    if any("MemoryError" in defect for defect in message.defects):
        # The parsers fell back for want of memory: the mail is over the limit, not unreadable.
        raise MemoryError("the parsers ran out of memory")
    return message, None


def headers_only(raw: bytes, reason: str) -> Message:
    """A Message from the header block alone (its first megabyte at most)."""
    head = raw[:HEAD_LIMIT]
    blank = min((i for i in (head.find(b"\n\r\n"), head.find(b"\n\n")) if i >= 0), default=-1)
    if blank >= 0:
        head = head[: blank + 1]
    elif len(raw) > HEAD_LIMIT:
        head = head[: head.rfind(b"\n") + 1]
    message = parse_message(head + b"\r\n")
    return dataclasses.replace(
        message,
        raw_size=len(raw),
        parsed_by="headers-only",
        defects=(*message.defects, f"not read past the headers: {reason}"),
    )


def bare_message(raw: bytes, reason: str) -> Message:
    """The last resort: the standard library's reading of the first header lines, undecoded."""
    parser = email.parser.BytesHeaderParser(policy=email.policy.compat32)
    try:
        tree = parser.parsebytes(raw[:65536], headersonly=True)
        headers = tuple((str(k).lower(), str(v)[:1000]) for k, v in tree.raw_items())
    except Exception:  # nothing at all can be read: the raw copy is kept all the same
        headers = ()
    values = dict(reversed(headers))
    name, address = email.utils.parseaddr(values.get("from", ""))
    return Message(
        raw_size=len(raw),
        sender=address or None,
        sender_name=name,
        from_addresses=(address,) if address else (),
        reply_to=None,
        message_id=values.get("message-id"),
        in_reply_to=None,
        references=(),
        subject=values.get("subject", ""),
        date=None,
        received_header_at=None,
        content_type="text/plain",
        headers=headers,
        attachments=(),
        inline_parts=(),
        text="",
        parsed_by="headers-only",
        defects=(f"not read: {reason}",),
    )


def ignored(
    message: Message, call: Call, received_at: datetime | None, problem: Problem
) -> Verdict:
    """The verdict for a mail not judged: ignored, with the reason, for a person to read."""
    when = received_at or message.receipt_guess or datetime.now(UTC)
    when = when if when.tzinfo else when.replace(tzinfo=call.tz)
    return Verdict(Status.IGNORED, call.local(when), None, None, (problem,))


def run_bounded(
    work: Callable[..., T], args: tuple[Any, ...], timeout: float, memory: int
) -> T | Overrun:
    """``work(*args)`` in a child process with a time and memory limit.

    The result travels pickled; an exception in ``work``
    other than running out of memory is raised again here as JudgeError.
    """
    import multiprocessing  # here: `mailbot check` judges in its own process

    context = multiprocessing.get_context("fork")
    receiver, sender = context.Pipe(duplex=False)
    child = context.Process(target=_child, args=(work, args, memory, sender), daemon=True)
    with warnings.catch_warnings():
        # Python 3.12 warns of any fork while threads run; the child is safe (docstring).
        warnings.filterwarnings("ignore", r".*fork\(\) may lead to deadlocks", DeprecationWarning)
        child.start()
    sender.close()
    try:
        if not receiver.poll(timeout):
            return Overrun(f"took longer than {timeout:g} s")
        try:
            kind, value = receiver.recv()
        except EOFError:
            child.join(5)
            return Overrun(f"the judging process ended without an answer ({how_it_ended(child)})")
    finally:
        receiver.close()
        if child.is_alive():
            child.kill()
        child.join()
        child.close()
    if kind == "done":
        result: T = value
        return result
    if kind == "memory":
        return Overrun(f"needed more than {memory / 2**20:.0f} MB of memory")
    raise JudgeError(f"judging failed in the child process:\n{value}")


def _child(
    work: Callable[..., Any], args: tuple[Any, ...], memory: int, answer: Connection
) -> None:
    logging.disable(logging.CRITICAL)
    try:
        limit_memory(memory)
        answer.send(("done", work(*args)))
    except MemoryError:
        answer.send(("memory", ""))
    except BaseException:  # sent to the parent, which raises it at its per-mail boundary
        answer.send(("error", traceback.format_exc()))
    finally:
        answer.close()


def how_it_ended(child: Any) -> str:
    """How a child process ended, in words for a log line: its exit code or its signal."""
    code = child.exitcode
    if code is None:
        return "still running"
    return f"killed by signal {-code}" if code < 0 else f"exit code {code}"
