"""A test hook: kill the process at a named point of the pipeline, to prove nothing is lost.

Only the fault tests use it (tests/test_faults.py). With the environment
variable ``MAILBOT_FAULT=POINT:N``, the Nth time this process reaches POINT
it sends itself SIGKILL, as a power cut or the OOM killer would end it:
no finalizer, no rollback, no log line. Without the variable the hook does
nothing. The points, in the order a mail passes them:

``after_fetch``   a mail is judged (a judging process may have stored its files);
                  nothing of its batch is recorded (intake.batch)
``after_store``   its raw bytes and attachments are in the blob store; the
                  transaction that records its batch has not committed
``after_verdict`` the mail, its verdict and its reply are committed with its
                  batch; the mail is not yet filed in the mailbox
``during_send``   the whole reply went over SMTP but not the final dot
                  (the sender's handover, before "handed" is committed)
``after_send``    the server answered 250; "sent" is not yet committed
"""

from __future__ import annotations

import os
import signal
from collections import Counter

POINTS = ("after_fetch", "after_store", "after_verdict", "during_send", "after_send")

_reached: Counter[str] = Counter()


def fault_point(point: str) -> None:
    """Die here if MAILBOT_FAULT asks for this point and this is its Nth passage."""
    wanted = os.environ.get("MAILBOT_FAULT")
    if not wanted:
        return
    name, _, nth = wanted.partition(":")
    if name != point:
        return
    _reached[point] += 1
    if _reached[point] == int(nth or 1):
        os.kill(os.getpid(), signal.SIGKILL)
