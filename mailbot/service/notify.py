"""systemd's notify protocol: READY, WATCHDOG, STATUS and STOPPING datagrams to $NOTIFY_SOCKET.

Under a unit with ``Type=notify`` systemd sets ``NOTIFY_SOCKET`` (a path, or
an abstract socket spelled with a leading ``@``) and, with ``WatchdogSec=``,
``WATCHDOG_USEC``: the daemon must say ``WATCHDOG=1`` more often than that or
systemd kills and restarts it. Outside systemd the variable is unset and
every call here does nothing, so the daemon runs the same by hand.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
from collections.abc import Callable, Mapping

log = logging.getLogger(__name__)


class Notifier:
    """Sends state lines to the service manager, if there is one."""

    def __init__(self, environ: Mapping[str, str] | None = None) -> None:
        env: Mapping[str, str] = os.environ if environ is None else environ
        self.address = _address(env.get("NOTIFY_SOCKET", ""))
        self.watchdog_usec = _watchdog_usec(env)
        self._warned = False

    @property
    def enabled(self) -> bool:
        return self.address is not None

    @property
    def watchdog_interval(self) -> float | None:
        """How often to ping, in seconds (half the watchdog's time), or None without one."""
        if self.watchdog_usec is None or not self.enabled:
            return None
        return self.watchdog_usec / 2_000_000

    def ready(self, status: str = "") -> None:
        self.send("READY=1", *([f"STATUS={status}"] if status else []))

    def watchdog(self) -> None:
        self.send("WATCHDOG=1")

    def status(self, text: str) -> None:
        self.send(f"STATUS={text}")

    def stopping(self) -> None:
        self.send("STOPPING=1")

    def send(self, *lines: str) -> None:
        """One datagram of newline-separated assignments; a failure is logged once, not raised."""
        if self.address is None:
            return
        payload = "\n".join(lines).encode()
        try:
            with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC) as sock:
                sock.sendto(payload, self.address)
        except OSError as exc:
            if not self._warned:
                log.warning("cannot notify the service manager at NOTIFY_SOCKET (%s)", exc)
                self._warned = True


def _address(value: str) -> str | bytes | None:
    if not value:
        return None
    if value.startswith("@"):
        return b"\0" + value[1:].encode()  # the abstract namespace
    if value.startswith("/"):
        return value
    log.warning("NOTIFY_SOCKET=%r is neither a path nor an abstract socket: ignored", value)
    return None


def _watchdog_usec(env: Mapping[str, str]) -> int | None:
    usec = env.get("WATCHDOG_USEC", "")
    pid = env.get("WATCHDOG_PID", "")
    if pid and pid != str(os.getpid()):
        return None  # meant for another process (our parent)
    try:
        value = int(usec)
    except ValueError:
        return None
    return value if value > 0 else None


class Pulse:
    """Whether the intake loop still moves: it promises the next sign of life by a deadline.

    The loop calls ``beat(within)`` before each step that may take a while
    (a poll, a wait for news, a backoff), saying how long that step may take;
    the watchdog is pinged only while that promise holds, so a loop stuck in
    one step stops the pings and systemd restarts the daemon.
    """

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self.clock = clock
        self._lock = threading.Lock()
        self._deadline = clock()

    def beat(self, within: float) -> None:
        with self._lock:
            self._deadline = self.clock() + within

    def overdue(self) -> float:
        """Seconds past the promised deadline (0.0 while the loop keeps its word)."""
        with self._lock:
            return max(0.0, self.clock() - self._deadline)
