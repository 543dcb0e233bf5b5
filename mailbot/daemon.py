"""The daemon: APScheduler jobs that fetch (or IDLE), send the outbox, and mail a daily digest.

The jobs call the same functions the CLI calls. SIGTERM or SIGINT sets a
stop flag: the mail in hand is finished, the jobs return, the scheduler
shuts down, and the process exits cleanly.
"""

from __future__ import annotations

import logging
import signal
import threading
from datetime import UTC, datetime
from types import FrameType

from apscheduler.schedulers.background import BackgroundScheduler
from apscheduler.triggers.cron import CronTrigger
from sqlalchemy.exc import SQLAlchemyError

from mailbot.app import App
from mailbot.digest import queue_digest
from mailbot.errors import MailbotError
from mailbot.intake import PollReport, poll
from mailbot.replies.sender import SendReport, recover_interrupted, send_pending
from mailbot.sources.base import Mailbox

log = logging.getLogger(__name__)

BACKOFF_MAX = 60.0


def now() -> datetime:
    return datetime.now(UTC)


class Daemon:
    """Runs the intake for one call until told to stop."""

    def __init__(self, app: App) -> None:
        self.app = app
        self.stop = threading.Event()
        self.scheduler: BackgroundScheduler | None = None
        self._mailbox: Mailbox | None = None
        self._send_lock = threading.Lock()

    # -- one round, as `mailbot run --once` does it ---------------------------

    def once(self) -> tuple[PollReport, SendReport]:
        self.app.db.check_schema()
        recovered = recover_interrupted(self.app.db)
        if recovered:
            log.warning(
                "%d replies were being sent when mailbot stopped: marked uncertain", recovered
            )
        mailbox = self.app.open_mailbox()
        try:
            report = poll(self.app, mailbox, self.stop)
        finally:
            mailbox.close()
        return report, self.send()

    def send(self) -> SendReport:
        with self._send_lock:
            return send_pending(self.app.db, self.app.transport(), self.app.settings.replies, now)

    # -- the long-running daemon ----------------------------------------------

    def run(self) -> None:
        self.app.db.check_schema()
        recovered = recover_interrupted(self.app.db)
        if recovered:
            log.warning(
                "%d replies were being sent when mailbot stopped: marked uncertain", recovered
            )
        self._install_signal_handlers()
        settings = self.app.settings
        scheduler = BackgroundScheduler(timezone=UTC)
        scheduler.add_job(self._watch, id="fetch", max_instances=1)
        scheduler.add_job(
            self._send_job,
            "interval",
            seconds=settings.replies.send_interval,
            id="outbox",
            max_instances=1,
            coalesce=True,
        )
        hour, minute = (int(part) for part in settings.digest.at.split(":"))
        if settings.digest.to:
            scheduler.add_job(
                self._digest_job,
                CronTrigger(hour=hour, minute=minute, timezone=self.app.call.tz),
                id="digest",
                max_instances=1,
                coalesce=True,
            )
        self.scheduler = scheduler
        scheduler.start()
        log.info("mailbot watching %s for %s", self._source_label(), self.app.call.id)
        try:
            while not self.stop.wait(1.0):
                pass
        finally:
            log.info("stopping: finishing the mail in hand")
            scheduler.shutdown(wait=True)
            if self._mailbox is not None:
                self._mailbox.close()
            log.info("stopped")

    def _source_label(self) -> str:
        source = self.app.settings.source
        if source.kind == "imap":
            return f"imap://{source.imap.host}:{source.imap.port} {', '.join(source.imap.folders)}"
        return f"maildir {self.app.settings.path(source.maildir.path)}"

    def _install_signal_handlers(self) -> None:
        # APScheduler installs none: without these the process dies mid-job.
        def handle(signum: int, _frame: FrameType | None) -> None:
            log.info("received %s", signal.Signals(signum).name)
            self.stop.set()

        signal.signal(signal.SIGTERM, handle)
        signal.signal(signal.SIGINT, handle)

    def _watch(self) -> None:
        """Fetch, then wait for news (IDLE) or the poll interval; reconnect with backoff."""
        backoff = 1.0
        down_since: str | None = None
        interval = self.app.settings.source.poll_interval
        while not self.stop.is_set():
            try:
                if self._mailbox is None:
                    self._mailbox = self.app.open_mailbox()
                report = poll(self.app, self._mailbox, self.stop)
                if down_since is not None:
                    log.info("mailbox reachable again (down since %s)", down_since)
                    down_since, backoff = None, 1.0
                if report.new:
                    log.info("poll: %s", report.summary())
                    self._kick_sender()
                if report.failed:
                    self.stop.wait(min(backoff, BACKOFF_MAX))
                    backoff *= 2
                    continue
                self._mailbox.wait(self.stop, interval)
            except Exception as exc:  # the loop must outlive any one failure
                if not isinstance(exc, MailbotError | SQLAlchemyError | OSError):
                    log.exception("unexpected error while fetching")
                if down_since is None:
                    down_since = now().isoformat(timespec="seconds")
                    log.warning(
                        "cannot fetch mail (%s); retrying with backoff up to %ds, mail waits "
                        "in the mailbox",
                        _one_line(exc),
                        BACKOFF_MAX,
                    )
                if self._mailbox is not None:
                    self._mailbox.close()
                    self._mailbox = None
                self.stop.wait(backoff)
                backoff = min(backoff * 2, BACKOFF_MAX)

    def _kick_sender(self) -> None:
        """Send new replies now rather than at the next interval."""
        if self.scheduler is not None:
            self.scheduler.modify_job("outbox", next_run_time=now())

    def _send_job(self) -> None:
        try:
            report = self.send()
            if report.sent or report.failed:
                log.info("outbox: %s", report)
        except (MailbotError, SQLAlchemyError, OSError) as exc:
            log.warning("cannot send replies (%s); they wait in the outbox", _one_line(exc))

    def _digest_job(self) -> None:
        try:
            with self.app.db.transaction() as session:
                queue_digest(self.app, session, now())
        except (MailbotError, SQLAlchemyError, OSError) as exc:
            log.warning("cannot write the daily digest (%s)", _one_line(exc))


def _one_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0] if text else ''}"
