"""Outages: one log line when something mailbot depends on fails, one when it works again.

The daemon retries a mailbox, a database, a disk or an SMTP server that
fails, every few seconds for as long as it takes. Logging each retry would
bury the one line an operator needs: what is wrong and what happens next.
An Outage logs that line when the trouble starts (with the traceback when
the error is not one of the expected kind), keeps the retries at debug
level, and says when it works again and how long it was down.
"""

from __future__ import annotations

import logging
import threading
import time

log = logging.getLogger("mailbot.service.daemon")


class Outage:
    """One thing mailbot depends on ("the database", "the SMTP server 10.0.0.5:587")."""

    def __init__(
        self, what: str, *, back: str = "works again", logger: logging.Logger = log
    ) -> None:
        self.what = what
        self.back = back  # what the line at the end says: "works again", "is reachable again"
        self.log = logger
        self.since: float | None = None
        self.repeats = 0
        self._lock = threading.Lock()  # the fetch, send and lease jobs share one

    @property
    def down(self) -> bool:
        return self.since is not None

    def failed(self, problem: str, next_step: str, *, traceback: bool = False) -> None:
        """Say once what is wrong and what happens next; only debug on later failures."""
        with self._lock:
            first = self.since is None
            if first:
                self.since, self.repeats = time.monotonic(), 0
            else:
                self.repeats += 1
        if first:
            self.log.warning("%s: %s; %s", self.what, problem, next_step, exc_info=traceback)
        else:
            self.log.debug("%s still failing: %s", self.what, problem)

    def recovered(self, next_step: str = "") -> None:
        """Say that it works again, once, when it was down."""
        with self._lock:
            since, self.since = self.since, None
        if since is not None:
            self.log.info(
                "%s %s after %.0f s%s",
                self.what,
                self.back,
                time.monotonic() - since,
                f"; {next_step}" if next_step else "",
            )
