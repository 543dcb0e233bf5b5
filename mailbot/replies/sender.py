"""Sending the outbox over SMTP or into a folder: each reply once, even across a kill.

A reply goes pending -> sending -> handed -> sent, each step committed on
its own:

- "sending" before the transport starts. Until the final dot of SMTP's DATA
  (for the outbox folder: the rename that shows the .eml file) nothing is
  delivered, so a process killed now leaves a reply that
  :func:`recover_interrupted` puts back to "pending" and that goes out again.
- "handed" just before that dot, from the transport's ``handover`` callback.
  A process killed from here on may have delivered the reply: at the next
  start it becomes "uncertain" and is never resent; the digest shows it.
- "sent" once the server answered 250.

A reply that left may come back as a bounce: the intake then marks it
"bounced" (mailbot.replies.bounced), and nothing here changes that state.

So no reply reaches the server twice, and every reply reaches it once
unless mailbot dies between committing "handed" and committing "sent". In
that window the dot is almost always already out (it follows the commit
by one write on the socket), so an "uncertain" reply has arrived in all
likelihood. The server's explicit refusal after the dot delivered nothing and
is retried like any other; a connection lost while waiting for its answer
makes the reply "uncertain" at once.
"""

from __future__ import annotations

import email.parser
import email.policy
import logging
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, cast

from sqlalchemy import CursorResult, func, or_, select, true, update

from mailbot.config import ReplySettings
from mailbot.domain import ReplyState
from mailbot.errors import MailbotError
from mailbot.replies.render import single_line
from mailbot.replies.transports import (
    DeliveryUncertain,
    Transport,
    TransportError,
    TransportUnavailable,
)
from mailbot.service.faults import fault_point
from mailbot.service.outages import Outage
from mailbot.store.db import Database
from mailbot.store.models import Reply

log = logging.getLogger(__name__)

MAX_ERROR = 500  # characters of last_error: one readable line, not a transcript


class ClaimLost(MailbotError):
    """The reply being sent is no longer "sending": another sender reset or took it."""


@dataclass(frozen=True)
class SendReport:
    """What one run over the outbox did.

    ``deferred`` counts replies that were due and are still pending
    afterwards, with a retry scheduled; ``uncertain`` those whose server
    took the whole message and never answered; ``suppressed`` the replies
    recorded since the last report but never to be sent, over an hourly
    limit (the daemon adds them: they never reach the outbox's run).
    """

    sent: int = 0
    failed: int = 0
    deferred: int = 0
    uncertain: int = 0
    suppressed: int = 0

    def __str__(self) -> str:
        text = f"{self.sent} sent, {self.deferred} waiting for a retry, {self.failed} failed"
        text += f", {self.uncertain} uncertain" if self.uncertain else ""
        return text + (
            f", {self.suppressed} suppressed (over the hourly limits)" if self.suppressed else ""
        )


class _Handover:
    """The ``handover`` given to the transport: commits "handed" before the point of no return.

    Only a reply still "sending" is marked, so of two senders that both got
    hold of a reply (one ran :func:`recover_interrupted` while the other was
    sending) at most one delivers it: the other's handover raises
    :class:`ClaimLost` and its transport drops the reply.
    """

    def __init__(self, db: Database, reply_id: int) -> None:
        self.db = db
        self.reply_id = reply_id
        self.called = False  # the transport reached the point of no return
        self.done = False  # and "handed" is committed: the reply may be delivered

    def __call__(self) -> None:
        fault_point("during_send")  # a test hook: the reply is out but for its final dot
        self.called = True
        with self.db.transaction() as session:
            result = cast(
                CursorResult[Any],
                session.execute(
                    update(Reply)
                    .where(Reply.id == self.reply_id, Reply.state == ReplyState.SENDING)
                    .values(state=ReplyState.HANDED)
                ),
            )
            if result.rowcount != 1:
                raise ClaimLost(f"reply {self.reply_id} is no longer ours to send")
        self.done = True


def backoff(settings: ReplySettings, attempts: int) -> float:
    """Seconds to wait after the given number of failed attempts."""
    exponent = min(max(attempts - 1, 0), 32)  # 2**32 * 30 s is past any backoff_max
    return float(min(settings.backoff_initial * 2**exponent, settings.backoff_max))


@dataclass(frozen=True)
class Attempt:
    """What became of one reply a run tried to send: the state it was left in.

    ``state`` is None when another sender took the reply first (it sends it);
    ``unreachable`` is set when the server could not be reached at all, which
    ends the run.
    """

    state: str | None
    unreachable: TransportUnavailable | None = None


@dataclass(frozen=True)
class _Run:
    """One run over the outbox: what stays the same for every reply it sends."""

    db: Database
    transport: Transport
    settings: ReplySettings
    now: Callable[[], datetime]
    call_id: str | None
    outage: Outage | None


def send_pending(
    db: Database,
    transport: Transport,
    settings: ReplySettings,
    now: Callable[[], datetime],
    *,
    call_id: str | None = None,
    outage: Outage | None = None,
) -> SendReport:
    """Send the replies that are due, oldest first, each exactly once.

    With ``call_id``, only that call's replies (and those queued before replies
    knew their call): several daemons serving several calls share a database,
    and each sends its own call's replies through its own server. With
    ``outage``, an unreachable server is told to it instead of logged at each
    batch, so that a long outage makes one log line, and its end another.

    Each reply is committed "sending" before the transport sees it and
    "handed" from the transport's ``handover``, just before the server can
    deliver it (see the module's documentation), so a process killed
    mid-send leaves it to :func:`recover_interrupted` to send again or to
    call uncertain. A failure before the handover, or the server's refusal
    after it, counts one failed attempt and backs off. An unreachable server
    ends the batch at once: the replies still due count one failed attempt
    each and back off, and one line in the log says why.
    """
    run = _Run(db, transport, settings, now, call_id, outage)
    with db.transaction() as session:
        due = list(
            session.scalars(
                select(Reply.id)
                .where(
                    Reply.state == ReplyState.PENDING,
                    Reply.next_attempt_at <= now(),
                    _of_call(call_id),
                )
                .order_by(Reply.queued_at, Reply.id)
            )
        )
    states: Counter[str | None] = Counter()
    try:
        for index, reply_id in enumerate(due):
            attempt = _send_one(run, reply_id)
            states[attempt.state] += 1
            if attempt.unreachable is not None:
                # The server is not asked again for each remaining reply: every
                # reply due in this run shares the failed attempt and its backoff.
                states.update(_unreachable(run, due[index + 1 :], attempt.unreachable))
                break
    finally:
        transport.close()
    return SendReport(
        sent=states[ReplyState.SENT],
        failed=states[ReplyState.FAILED],
        deferred=states[ReplyState.PENDING],
        uncertain=states[ReplyState.UNCERTAIN],
    )


def _send_one(run: _Run, reply_id: int) -> Attempt:
    """Claim one reply, hand it to the transport, record what became of it."""
    claimed = _claim(run.db, reply_id, run.now())
    if claimed is None:  # another sender took it meanwhile
        return Attempt(None)
    raw, to_address = claimed
    handover = _Handover(run.db, reply_id)
    try:
        run.transport.send(
            raw, envelope_sender(raw), [to_address], reply_id=reply_id, handover=handover
        )
    except ClaimLost as exc:
        # Whoever reset or took it sends it; ours was dropped undelivered.
        log.warning("%s: left to the sender that has it", exc)
        return Attempt(None)
    except DeliveryUncertain as exc:
        _finish(run.db, reply_id, ReplyState.UNCERTAIN, str(exc))
        log.warning(
            "reply %d to %s may or may not have arrived; not resent: %s",
            reply_id,
            to_address,
            single_line(str(exc)),
        )
        return Attempt(ReplyState.UNCERTAIN)
    except TransportUnavailable as exc:
        mine = ReplyState.HANDED if handover.done else ReplyState.SENDING
        state, _ = _record_failure(run, reply_id, str(exc), mine)
        return Attempt(state, unreachable=exc)
    except TransportError as exc:
        mine = ReplyState.HANDED if handover.done else ReplyState.SENDING
        state, attempts = _record_failure(run, reply_id, str(exc), mine)
        log.warning(
            "reply %d to %s not sent (attempt %d, now %s): %s",
            reply_id,
            to_address,
            attempts,
            state,
            single_line(str(exc)),
        )
        return Attempt(state)
    except Exception as exc:
        return _our_fault(run, reply_id, to_address, handover, exc)
    fault_point("after_send")  # a test hook: delivered, "sent" not yet recorded
    _finish(run.db, reply_id, ReplyState.SENT, None, sent_at=run.now())
    log.info("reply %d sent to %s", reply_id, to_address)
    if run.outage is not None:
        run.outage.recovered()
    return Attempt(ReplyState.SENT)


def _our_fault(
    run: _Run, reply_id: int, to_address: str, handover: _Handover, exc: Exception
) -> Attempt:
    """A send that failed on a fault of ours, not the server's refusal."""
    if handover.called and not handover.done:
        # Recording "handed" failed (a locked database, say), so the
        # transport dropped the reply undelivered: try again later.
        log.exception("reply %d to %s: cannot record its handover", reply_id, to_address)
        error = f"cannot record the handover: {type(exc).__name__}: {exc}"
        state, _ = _record_failure(run, reply_id, error, ReplyState.SENDING)
        return Attempt(state)
    # Retrying repeats it, and after the handover the reply may have left,
    # so a person looks at it.
    log.exception("reply %d to %s: unexpected error while sending", reply_id, to_address)
    error = f"unexpected error: {type(exc).__name__}: {exc}"
    state = ReplyState.UNCERTAIN if handover.done else ReplyState.FAILED
    _finish(run.db, reply_id, state, error)
    return Attempt(state)


def _unreachable(run: _Run, later: list[int], exc: TransportUnavailable) -> Counter[str | None]:
    """The server cannot be reached: the replies still due share the failed attempt; say so once.

    Returns the states those replies were left in.
    """
    states = Counter(
        _record_failure(run, reply_id, str(exc), ReplyState.PENDING)[0] for reply_id in later
    )
    waiting = _count_pending(run.db, run.call_id)
    if run.outage is not None:
        run.outage.failed(
            single_line(str(exc)),
            f"{waiting} replies wait in the outbox and are retried with backoff "
            f"up to {run.settings.backoff_max:.0f} s",
        )
    else:
        log.warning(
            "replies: %s; %d replies wait in the outbox and will be retried",
            single_line(str(exc)),
            waiting,
        )
    return Counter[str | None](states)


def _of_call(call_id: str | None) -> Any:
    """The replies of one call (None: of every call)."""
    if call_id is None:
        return true()
    return or_(Reply.call_id == call_id, Reply.call_id.is_(None))


def recover_interrupted(db: Database, call_id: str | None = None) -> int:
    """At start, settle the replies a killed process was sending; return how many became uncertain.

    A reply left "sending" never had its final dot sent, so the server
    discarded it: it goes back to "pending", due at once, and is sent again
    (logged here). A reply left "handed" was killed after its handover and
    before the server's 250 was recorded: the server almost surely has it,
    and a reply is never sent twice, so it becomes "uncertain", is not
    resent, and the digest shows it to the secretariat; the caller logs
    that count. Should another sender still be at work, its handover finds
    the reply no longer "sending" and drops it, so nothing goes out twice.
    With ``call_id``, only that call's replies are looked at.
    """
    with db.transaction() as session:
        requeued = cast(
            CursorResult[Any],
            session.execute(
                update(Reply)
                .where(Reply.state == ReplyState.SENDING, _of_call(call_id))
                # Due again at once: it was due when it was taken.
                .values(
                    state=ReplyState.PENDING,
                    next_attempt_at=func.coalesce(Reply.next_attempt_at, Reply.queued_at),
                )
            ),
        ).rowcount
        uncertain = cast(
            CursorResult[Any],
            session.execute(
                update(Reply)
                .where(Reply.state == ReplyState.HANDED, _of_call(call_id))
                .values(
                    state=ReplyState.UNCERTAIN,
                    next_attempt_at=None,
                    last_error=(
                        "mailbot stopped after handing this reply to the server and before "
                        "its answer: it has almost surely arrived, and is not sent again"
                    ),
                )
            ),
        ).rowcount
    if requeued:
        log.info(
            "%d replies were being sent when mailbot stopped, before the server could "
            "deliver them: queued again",
            requeued,
        )
    return uncertain


def envelope_sender(raw: bytes) -> str:
    """The address in the reply's From header, which is also its envelope sender."""
    head = raw.split(b"\r\n\r\n", 1)[0].split(b"\n\n", 1)[0]
    headers = email.parser.HeaderParser(policy=email.policy.default).parsestr(
        head.decode("utf-8", "replace"), headersonly=True
    )
    addresses = getattr(headers["From"], "addresses", ())
    if not addresses:
        raise TransportError("the stored reply has no From address")
    return str(addresses[0].addr_spec)


def _claim(db: Database, reply_id: int, moment: datetime) -> tuple[bytes, str] | None:
    with db.transaction() as session:
        # One UPDATE, so two senders cannot both take the same reply.
        result = cast(
            CursorResult[Any],
            session.execute(
                update(Reply)
                .where(
                    Reply.id == reply_id,
                    Reply.state == ReplyState.PENDING,
                    Reply.next_attempt_at <= moment,
                )
                .values(state=ReplyState.SENDING)
            ),
        )
        if result.rowcount != 1:
            return None
        row = session.execute(select(Reply.raw, Reply.to_address).where(Reply.id == reply_id)).one()
        return row.raw, row.to_address


def _record_failure(run: _Run, reply_id: int, error: str, expected: str) -> tuple[str, int]:
    """Count a failed attempt; return the reply's new state and attempts.

    ``expected`` is the state the reply must still be in: a reply another
    sender has meanwhile taken or rescheduled is left alone.
    """
    settings, moment = run.settings, run.now()
    with run.db.transaction() as session:
        reply = session.get_one(Reply, reply_id)
        not_due = reply.next_attempt_at is None or reply.next_attempt_at > moment
        if reply.state != expected or (expected == ReplyState.PENDING and not_due):
            return reply.state, reply.attempts
        reply.attempts += 1
        reply.last_error = single_line(error)[:MAX_ERROR]
        if reply.attempts >= settings.max_attempts:
            reply.state = ReplyState.FAILED
            reply.next_attempt_at = None
        else:
            reply.state = ReplyState.PENDING
            reply.next_attempt_at = moment + timedelta(seconds=backoff(settings, reply.attempts))
        return reply.state, reply.attempts


def _finish(
    db: Database, reply_id: int, state: str, error: str | None, *, sent_at: datetime | None = None
) -> None:
    with db.transaction() as session:
        reply = session.get_one(Reply, reply_id)
        if reply.state == ReplyState.BOUNCED:
            # Its bounce came back before the server's answer was recorded: it left.
            reply.attempts += 1
            reply.sent_at = reply.sent_at or sent_at
            return
        reply.state = state
        reply.attempts += 1
        reply.next_attempt_at = None
        reply.sent_at = sent_at
        if error is not None:
            reply.last_error = single_line(error)[:MAX_ERROR]


def _count_pending(db: Database, call_id: str | None = None) -> int:
    with db.transaction() as session:
        return (
            session.scalar(
                select(func.count(Reply.id)).where(
                    Reply.state == ReplyState.PENDING, _of_call(call_id)
                )
            )
            or 0
        )
