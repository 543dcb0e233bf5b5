"""The daemon: APScheduler jobs that fetch (or IDLE), send the outbox, and mail a daily digest.

The jobs call the same functions the CLI calls. SIGTERM or SIGINT sets a
stop flag: the mail in hand is finished, the jobs return, the scheduler
shuts down, the leases are released, and the process exits cleanly.

One daemon at a time serves a mailbox: it holds the mailbox's lease in the
database (mailbot.store.leases) and renews it as it works. A second daemon
started on the same mailbox logs one line and waits; it takes over when the
first exits, or when the first's lease runs out (it died on another host),
or at once when the first was a process of this host that no longer
exists. Likewise one daemon at a time sends a call's replies (the lease
``outbox:CALL``), so that several daemons serving several mailboxes of one
call, or several calls, can share a PostgreSQL database.

When the mailbox, the database, the disk or the SMTP server fails, the mail
stays unprocessed in the mailbox and the replies wait in the outbox; the
daemon retries with backoff, and says once what is wrong and what happens
next, and once when it works again (mailbot.service.outages).
"""

from __future__ import annotations

import dataclasses
import logging
import signal
import threading
from datetime import UTC, datetime
from types import FrameType

from apscheduler.schedulers.background import BackgroundScheduler
from apscheduler.triggers.cron import CronTrigger
from sqlalchemy.exc import InterfaceError, OperationalError, SQLAlchemyError

from mailbot.app import App
from mailbot.domain import ReplyState
from mailbot.errors import MailbotError
from mailbot.intake.poll import PollReport, poll
from mailbot.replies.digest import queue_digest
from mailbot.replies.reminders import queue_reminders
from mailbot.replies.sender import SendReport, recover_interrupted, send_pending
from mailbot.service.notify import Notifier, Pulse
from mailbot.service.outages import Outage
from mailbot.service.status import StateRecorder
from mailbot.sources.base import Mailbox, SourceError
from mailbot.store.blobs import StoreError
from mailbot.store.db import DatabaseError
from mailbot.store.leases import LEASE_TTL, Lease, LeaseHeld, LeaseLost, holder_name

log = logging.getLogger(__name__)

BACKOFF_MAX = 60.0
LEASE_WAIT_MAX = 5.0  # a waiting daemon looks at the lease this often at most
REMINDER_INTERVAL = 300.0  # seconds between looks for due reminders (each is sent once)
# How long one step of the intake loop (a fetch, one mail, a wait beyond its
# interval) may take before the loop counts as hung and the watchdog is no
# longer pinged (systemd then restarts the daemon, WatchdogSec later).
STEP_GRACE = 600.0


def now() -> datetime:
    return datetime.now(UTC)


def is_database_error(exc: BaseException) -> bool:
    return isinstance(exc, SQLAlchemyError | DatabaseError)


def error_summary(exc: BaseException) -> str:
    """The error in one line: the driver's own message, without SQL or parameters."""
    inner = getattr(exc, "orig", None)
    shown = inner if isinstance(inner, BaseException) else exc
    text = str(shown).strip().splitlines()
    return f"{type(shown).__name__}: {text[0] if text else ''}"


class Daemon:
    """Runs the intake for one call's mailbox until told to stop."""

    def __init__(self, app: App, *, lease_ttl: float = LEASE_TTL) -> None:
        self.app = app
        self.stop = threading.Event()
        self.scheduler: BackgroundScheduler | None = None
        self._mailbox: Mailbox | None = None
        self._send_lock = threading.Lock()
        # Replies the intake suppressed (hourly limits) since the last outbox line.
        self._suppressed = 0
        self._suppressed_lock = threading.Lock()
        self.holder = holder_name()
        self.lease_ttl = lease_ttl
        self.lease: Lease | None = None  # the mailbox's, once its name is known
        self.outbox = Lease(app.db, f"outbox:{app.call.id}", self.holder, ttl=lease_ttl)
        self._recover_outbox = True  # at the first send, and after a send that broke off
        self._outbox_busy_logged = False
        self.database = Outage("the database")
        self.store = Outage(f"the store {app.settings.path(app.settings.store_dir)}")
        self.mailbox_outage = Outage(
            f"the mailbox {self._source_label()}", back="is reachable again"
        )
        self.intake = Outage("the intake")
        self.transport_outage = Outage("replies", back="go out again")
        self.notifier = Notifier()
        self.pulse = Pulse()
        self._hung_logged = False
        self.recorder: StateRecorder | None = None  # once the mailbox's name is known

    # -- one round, as `mailbot run --once` does it ---------------------------

    def once(self) -> tuple[PollReport, SendReport]:
        """One fetch and one send, under the mailbox's lease; LeaseHeld if another has it."""
        self.app.db.check_schema()
        mailbox = self.app.open_mailbox()
        lease = self._lease_for(mailbox)
        try:
            if not lease.acquire():
                raise LeaseHeld(
                    f"{mailbox.name} is served by another mailbot, {lease.describe_other()}: "
                    "nothing done"
                )
            self.recorder = StateRecorder(
                self.app.db, lease.source, self.app.call.id, self.holder, now
            )
            self.recorder.started()
            try:
                report = poll(self.app, mailbox, self.stop, lease=lease)
            finally:
                mailbox.close()
            self._polled(report)
            if report.fault is not None:
                self._fault(report.fault)
            return report, self._send()
        finally:
            self.app.close_judges()
            if self.recorder is not None and lease.held:
                self.recorder.stopped()
            self._release()

    def send(self) -> SendReport:
        """Send what is due now, as one round (the outbox's lease is taken and given back)."""
        try:
            return self._send()
        finally:
            self._release()

    def _send(self) -> SendReport:
        with self._send_lock:
            was_ours = self.outbox.held
            if not self.outbox.acquire():
                if not self._outbox_busy_logged:
                    log.info(
                        "the replies of %s are sent by another mailbot, %s",
                        self.app.call.id,
                        self.outbox.describe_other(),
                    )
                    self._outbox_busy_logged = True
                return SendReport()
            self._outbox_busy_logged = False
            if self._recover_outbox or not was_ours:
                self._recover()
            self._recover_outbox = True  # until this round ends without an exception
            report = send_pending(
                self.app.db,
                self.app.transport(),
                self.app.settings.replies,
                self.app.clock,
                call_id=self.app.call.id,
                outage=self.transport_outage,
            )
            self._recover_outbox = False
            with self._suppressed_lock:
                report = dataclasses.replace(report, suppressed=self._suppressed)
                self._suppressed = 0
            return report

    def _recover(self) -> None:
        """Settle the replies a sender that stopped mid-send left (see recover_interrupted)."""
        recovered = recover_interrupted(self.app.db, self.app.call.id)
        if recovered:
            log.warning(
                "%d replies were being sent when mailbot stopped: marked uncertain", recovered
            )

    def _lease_for(self, mailbox: Mailbox) -> Lease:
        if self.lease is None or self.lease.source != mailbox.name:
            self.lease = Lease(self.app.db, mailbox.name, self.holder, ttl=self.lease_ttl)
        return self.lease

    def _release(self) -> None:
        for lease in (self.outbox, self.lease):
            if lease is None or not lease.held:
                continue
            try:
                lease.release()
            except (SQLAlchemyError, DatabaseError) as exc:
                log.warning(
                    "cannot release the lease on %s (%s); another mailbot can take it "
                    "over when it runs out",
                    lease.source,
                    error_summary(exc),
                )

    # -- the long-running daemon ----------------------------------------------

    def run(self) -> None:
        self.app.db.check_schema()
        self._install_signal_handlers()
        self._mailbox = self.app.open_mailbox()
        lease = self._lease_for(self._mailbox)
        self.recorder = StateRecorder(self.app.db, lease.source, self.app.call.id, self.holder, now)
        # Started: the checks are done. Waiting for the lease is part of the service's life.
        self.notifier.ready(f"serving {self._source_label()}")
        try:
            if not self._wait_for_lease(lease):
                return
            self.recorder.started()
            self._schedule()
            log.info(
                "mailbot watching %s for %s (database %s)",
                self._source_label(),
                self.app.call.id,
                self.app.db.safe_url,
            )
            try:
                self._keep_alive()
            finally:
                log.info("stopping: finishing the mail in hand")
                self.notifier.stopping()
                if self.scheduler is not None:
                    self.scheduler.shutdown(wait=True)
        finally:
            if self._mailbox is not None:
                self._mailbox.close()
            self.app.close_judges()
            if self.recorder is not None and lease.held:
                self.recorder.stopped()
            self._release()
            log.info("stopped")

    def _keep_alive(self) -> None:
        """Until stopped: ping systemd's watchdog while the intake loop keeps its word."""
        tick = min(1.0, self.notifier.watchdog_interval or 1.0)
        self._ping()
        while not self.stop.wait(tick):
            self._ping()

    def _ping(self) -> None:
        overdue = self.pulse.overdue()
        if not overdue:
            self._hung_logged = False
            self.notifier.watchdog()
        elif not self._hung_logged:
            log.error(
                "the intake loop has not moved for %.0f s past its step's time: the "
                "watchdog is no longer pinged, so systemd restarts mailbot",
                overdue,
            )
            self._hung_logged = True

    def _schedule(self) -> None:
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
            next_run_time=now(),
        )
        scheduler.add_job(
            self._lease_job,
            "interval",
            seconds=self.lease_ttl / 3,
            id="lease",
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
        if settings.reminders.hours_before:
            scheduler.add_job(
                self._reminder_job,
                "interval",
                seconds=REMINDER_INTERVAL,
                id="reminders",
                max_instances=1,
                coalesce=True,
                next_run_time=now(),
            )
        self.scheduler = scheduler
        scheduler.start()

    def _wait_for_lease(self, lease: Lease) -> bool:
        """Take the mailbox's lease, waiting while another daemon holds it; False if stopped."""
        step = min(LEASE_WAIT_MAX, self.lease_ttl / 4)
        waiting = False
        while not self.stop.is_set():
            self.pulse.beat(step + STEP_GRACE)
            if threading.current_thread() is threading.main_thread():
                self._ping()  # before the jobs start, the main thread waits here
            try:
                if lease.acquire():
                    self.database.recovered()
                    if waiting:
                        log.info("%s: took over the lease; serving it now", lease.source)
                    return True
                if not waiting:
                    log.warning(
                        "%s is served by another mailbot, %s; this one waits and takes "
                        "over when that one stops or its lease runs out",
                        lease.source,
                        lease.describe_other(),
                    )
                    self.notifier.status(f"waiting: another mailbot serves {lease.source}")
                    waiting = True
            except (SQLAlchemyError, DatabaseError) as exc:
                self._fault(exc)
            self.stop.wait(step)
        return False

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
        """Fetch, then wait for news (IDLE) or the poll interval; retry with backoff."""
        backoff = 1.0
        interval = self.app.settings.source.poll_interval
        while not self.stop.is_set():
            try:
                lease = self.lease
                assert lease is not None, "run() takes the lease before it starts the jobs"
                if not lease.held and not self._wait_for_lease(lease):
                    return
                self.pulse.beat(STEP_GRACE)
                if self._mailbox is None:
                    self._mailbox = self.app.open_mailbox()
                report = poll(self.app, self._mailbox, self.stop, on_mail=self._beat, lease=lease)
                self._polled(report)
                self.mailbox_outage.recovered("new mail is fetched again")
                if report.new:
                    log.info("poll: %s", report.summary())
                    self._kick_sender()
                if report.fault is not None:
                    self._fault(report.fault)
                    self.pulse.beat(backoff + STEP_GRACE)
                    self.stop.wait(backoff)
                    backoff = min(backoff * 2, BACKOFF_MAX)
                    continue
                for outage in (self.database, self.store, self.intake):
                    outage.recovered("new mail is processed again")
                backoff = 1.0
                self.pulse.beat(interval + STEP_GRACE)
                self._mailbox.wait(self.stop, interval)
            except LeaseLost:
                log.warning(
                    "%s: another mailbot holds the lease now; this one records no more "
                    "mail and waits to take the lease again",
                    self.lease.source if self.lease else "?",
                )
            except Exception as exc:  # the loop must outlive any one failure
                self._fault(exc)
                if self._mailbox is not None:
                    self._mailbox.close()
                    self._mailbox = None
                self.pulse.beat(backoff + STEP_GRACE)
                self.stop.wait(backoff)
                backoff = min(backoff * 2, BACKOFF_MAX)

    def _beat(self, _mail: object) -> None:
        self.pulse.beat(STEP_GRACE)

    def _polled(self, report: PollReport) -> None:
        """Record the poll for `mailbot status`, and tell systemd in one STATUS line."""
        fault = error_summary(report.fault) if report.fault is not None else None
        with self._suppressed_lock:
            self._suppressed += report.suppressed  # told in the next outbox line
        if self.recorder is not None:
            self.recorder.polled(report.summary(), report.waiting, fault)
        self.notifier.status(f"last poll {now():%H:%M:%S} UTC: {fault or report.summary()}")

    def _fault(self, exc: BaseException) -> None:
        """Say once what failed and what happens next (repeats go to debug)."""
        if self.recorder is not None:
            self.recorder.failed(error_summary(exc))
        if isinstance(exc, StoreError):
            self.store.failed(
                error_summary(exc),
                "new mail waits unprocessed in the mailbox (not moved, not flagged); "
                f"retrying with backoff up to {BACKOFF_MAX:.0f} s",
            )
        elif is_database_error(exc):
            reach = isinstance(exc, OperationalError | InterfaceError | DatabaseError)
            self.database.failed(
                f"cannot reach it ({error_summary(exc)})" if reach else error_summary(exc),
                "new mail waits unprocessed in the mailbox (not moved, not flagged) and "
                f"replies wait in the outbox; retrying with backoff up to {BACKOFF_MAX:.0f} s",
            )
        elif isinstance(exc, SourceError):
            self.mailbox_outage.failed(
                f"cannot fetch mail ({error_summary(exc)})",
                f"mail waits there; reconnecting with backoff up to {BACKOFF_MAX:.0f} s",
            )
        else:
            self.intake.failed(
                f"unexpected error ({error_summary(exc)})",
                "the mail in hand waits unprocessed in the mailbox; retrying with backoff "
                f"up to {BACKOFF_MAX:.0f} s",
                traceback=not isinstance(exc, MailbotError | OSError),
            )

    def _kick_sender(self) -> None:
        """Send new replies now rather than at the next interval."""
        if self.scheduler is not None:
            self.scheduler.modify_job("outbox", next_run_time=now())

    def _send_job(self) -> None:
        try:
            report = self._send()
            self.database.recovered()
            if report.sent or report.failed or report.suppressed:
                log.info("outbox: %s", report)
        except Exception as exc:  # the job must run again at its next interval
            if is_database_error(exc):
                self._fault(exc)
            else:
                self.transport_outage.failed(
                    error_summary(exc),
                    "replies wait in the outbox; retrying",
                    traceback=not isinstance(exc, MailbotError | OSError),
                )

    def _lease_job(self) -> None:
        """Renew the leases; a mailbox lease found lost stops the intake until taken again."""
        try:
            lease = self.lease
            if lease is not None and lease.held:
                if not lease.renew():
                    log.warning(
                        "%s: another mailbot took the lease; this one records no more mail "
                        "and waits to take it again",
                        lease.source,
                    )
                elif self.recorder is not None:
                    self.recorder.heartbeat()
            if self.outbox.held:
                self.outbox.renew()
        except (SQLAlchemyError, DatabaseError) as exc:
            self._fault(exc)

    def _reminder_job(self) -> None:
        if not self.outbox.held:
            return  # the daemon sending this call's replies sends its reminders too
        self.remind()

    def remind(self) -> int:
        """Queue the reminders due now (the app's clock); how many (0 on a fault, logged)."""
        try:
            with self.app.db.transaction() as session:
                queued = queue_reminders(
                    session,
                    call=self.app.call,
                    settings=self.app.settings.replies,
                    renderer=self.app.renderer,
                    hours_before=self.app.settings.reminders.hours_before,
                    now=self.app.clock(),
                )
        except (MailbotError, SQLAlchemyError, OSError) as exc:
            log.warning("cannot queue the reminders (%s); tried again later", error_summary(exc))
            return 0
        if queued:
            self._kick_sender()
        return len(queued)

    def _digest_job(self) -> None:
        if not self.outbox.held:
            return  # the daemon sending this call's replies sends its digest too
        try:
            with self.app.db.transaction() as session:
                queued = queue_digest(
                    session,
                    settings=self.app.settings.replies,
                    call=self.app.call,
                    renderer=self.app.renderer,
                    to=self.app.settings.digest.to,
                    now=now(),
                )
                held = [r.last_error for r in queued if r.state == ReplyState.SUPPRESSED]
        except (MailbotError, SQLAlchemyError, OSError) as exc:
            log.warning("cannot write the daily digest (%s)", error_summary(exc))
            return
        for reason in held:  # after the commit, as for the intake's replies
            log.warning("the daily digest is suppressed: %s", reason)
        with self._suppressed_lock:
            self._suppressed += len(held)
