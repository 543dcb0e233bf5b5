"""Reminders before the deadline, on a fake clock through both points (72 h and 24 h), a
restart in between and a correction arriving between the points: exactly one reminder per
submission per point, none after the deadline, none to decided or withdrawn submissions."""

from __future__ import annotations

import email
import email.policy
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from mailbot.app import App
from mailbot.domain import SubmissionStatus
from mailbot.service.daemon import Daemon
from mailbot.sources.maildir import deliver
from mailbot.store.models import Mail, Reminder, Reply, Submission
from tests.daemon_support import july, proposal, settings_values
from tests.fixtures import AppFactory

# Slow: each test runs the daemon through the call's last days on a fake clock.
pytestmark = pytest.mark.slow

DEADLINE = july(31, 0)  # 2021-07-30 24:00 Beijing time
WANTING = ("中国科学院微生物研究所", "李娜")  # misnamed files: needs correction throughout
LATER = ("中国科学院大气物理研究所", "王堃")  # Word only; the PDF comes between the points
DONE = ("中国科学院植物研究所", "张喆")  # accepted
WITHDRAWN = ("中国科学院动物研究所", "刘洋")
DECIDED = ("中国科学院遗传与发育生物学研究所", "赵敏")


class Clock:
    def __init__(self, at: datetime) -> None:
        self.at = at

    def __call__(self) -> datetime:
        return self.at


def _app(make_app: AppFactory, values: dict[str, Any], clock: Clock) -> App:
    """A daemon's app as a (re)start builds it, on the shared database and the fake clock."""
    app = make_app(values)
    app.clock = clock
    return app


def _status(app: App, pi: str, status: SubmissionStatus) -> None:
    with app.db.transaction() as session:
        found = session.scalar(select(Submission).where(Submission.pi == pi))
        assert found is not None
        found.status = status


def _reminders(app: App) -> list[tuple[str, int, Reply]]:
    with app.db.transaction() as session:
        rows = session.execute(
            select(Submission.pi, Reminder.hours_before, Reply)
            .join(Reminder, Reminder.submission_id == Submission.id)
            .join(Reply, Reply.id == Reminder.reply_id)
            .order_by(Reminder.id)
        ).all()
        session.expunge_all()
        return [(pi, hours, reply) for pi, hours, reply in rows]


def test_one_reminder_per_submission_per_point_across_a_restart_and_a_correction(
    make_app: AppFactory, tmp_path: Path, db_url: str
) -> None:
    values = settings_values(tmp_path, db_url)
    maildir = tmp_path / "Maildir"
    clock = Clock(july(27, 9))
    app = _app(make_app, values, clock)
    deliver(maildir, proposal("foxmail", *WANTING, files="misnamed"), july(26, 10))
    deliver(maildir, proposal("outlook", *LATER, files="no_pdf"), july(26, 11))
    deliver(maildir, proposal("qqmail", *DONE, files="good"), july(26, 12))
    deliver(maildir, proposal("coremail", *WITHDRAWN, files="misnamed"), july(26, 13))
    deliver(maildir, proposal("gmail", *DECIDED, files="no_pdf"), july(26, 14))
    Daemon(app).once()
    _status(app, WITHDRAWN[1], SubmissionStatus.WITHDRAWN)
    _status(app, DECIDED[1], SubmissionStatus.ACCEPTED_BY_DECISION)
    daemon = Daemon(app)

    clock.at = DEADLINE - timedelta(hours=72, seconds=1)
    assert daemon.remind() == 0  # not yet
    clock.at = DEADLINE - timedelta(hours=72)
    assert daemon.remind() == 2
    clock.at = DEADLINE - timedelta(hours=71)
    assert daemon.remind() == 0  # the point was served

    # A restart, and the PDF the Word lacked arrives between the points.
    app.close()
    clock.at = DEADLINE - timedelta(hours=40)
    app = _app(make_app, values, clock)
    deliver(maildir, proposal("outlook", *LATER, files="pdf_only"), DEADLINE - timedelta(hours=41))
    Daemon(app).once()
    assert Daemon(app).remind() == 0  # still the 72 h point: served before the restart

    clock.at = DEADLINE - timedelta(hours=24)
    assert Daemon(app).remind() == 1  # only the one still needing correction
    app.close()
    clock.at = DEADLINE - timedelta(hours=1)
    app = _app(make_app, values, clock)
    assert Daemon(app).remind() == 0

    # A new mail needing correction half an hour before the deadline: reminded at the
    # 24 h point it missed while the deadline has not passed, never after it.
    late_comer = ("中国科学院化学研究所", "陈静")
    deliver(
        maildir,
        proposal("foxmail", *late_comer, files="misnamed"),
        DEADLINE - timedelta(minutes=30),
    )
    clock.at = DEADLINE - timedelta(minutes=20)
    Daemon(app).once()
    clock.at = DEADLINE + timedelta(seconds=1)
    assert Daemon(app).remind() == 0

    sent = _reminders(app)
    assert [(pi, hours) for pi, hours, _ in sent] == [
        (WANTING[1], 72),
        (LATER[1], 72),
        (WANTING[1], 24),
    ]
    _check_letters(app, sent)
    _on_the_desk(app)


def _on_the_desk(app: App) -> None:
    """The submission's page on the desk lists both reminders among its letters."""
    from mailbot.web.app import create_app
    from mailbot.web.auth import add_user
    from tests.web_support import NAME, PASSWORD, form_token

    with app.db.transaction() as session:
        add_user(session, NAME, PASSWORD)
        reference = session.scalar(select(Submission.reference).where(Submission.pi == WANTING[1]))
    client = create_app(app).test_client()
    page = client.get("/login")
    form = {"csrf_token": form_token(page.text), "name": NAME, "password": PASSWORD}
    assert client.post("/login", data=form).status_code == 303
    text = client.get(f"/submissions/{reference}").text
    assert "截止前提醒" in text
    assert "还有 72 小时 0 分钟" in text
    assert "还有 24 小时 0 分钟" in text


def _check_letters(app: App, sent: list[tuple[str, int, Reply]]) -> None:
    """Each reminder is threaded to the submission's last mail, says what is wrong, how long
    is left, and goes out through the outbox."""
    with app.db.transaction() as session:
        mails = list(session.scalars(select(Mail).order_by(Mail.received_at)))
        session.expunge_all()
    for pi, hours, reply in sent:
        letter = email.message_from_bytes(reply.raw, policy=email.policy.default)
        last = [m for m in mails if m.pi == pi and m.received_at <= reply.queued_at][-1]
        assert letter["In-Reply-To"] == last.message_id
        assert reply.to_address == last.sender
        body = letter.get_body(("plain",))
        assert body is not None
        text = body.get_content()
        assert f"还有 {hours} 小时 0 分钟" in text
        assert f"is {hours} h 0 min away" in text
        assert "None" not in text
        assert "ANSO2021-" in str(letter["Subject"])
    assert "中国科学院微生物研究所+李娜" in text  # the last, the 24 h reminder to 李娜
    assert "1. 建议书 Word 文件的文件名不正确" in text  # what is still wrong
    assert "请在截止前按以下要求重新发送" in text
    Daemon(app).send()
    with app.db.transaction() as session:
        states = set(session.scalars(select(Reply.state).where(Reply.template == "reminder")))
    assert states == {"sent"}


def test_a_reminder_counts_against_the_hourly_limit_and_is_kept_when_over_it(
    make_app: AppFactory,
    tmp_path: Path,
) -> None:
    values = settings_values(
        tmp_path,
        f"sqlite:///{tmp_path / 'mailbot.sqlite3'}",
        replies={"per_sender_hourly_limit": 1},
    )
    clock = Clock(DEADLINE - timedelta(hours=72, minutes=10))
    app = _app(make_app, values, clock)
    deliver(tmp_path / "Maildir", proposal("foxmail", *WANTING, files="misnamed"), clock.at)
    Daemon(app).once()  # the "please correct" letter: the hour's one
    clock.at = DEADLINE - timedelta(hours=72)
    assert Daemon(app).remind() == 1
    ((_, _, reminder),) = _reminders(app)
    assert reminder.state == "suppressed"
    assert "per_sender_hourly_limit" in (reminder.last_error or "")


def test_a_reminder_point_must_be_hours_before_the_deadline(tmp_path: Path) -> None:
    from mailbot.config import ConfigError, load_settings

    values = settings_values(tmp_path, "sqlite://", reminders={"hours_before": [72, 0]})
    with pytest.raises(ConfigError, match="hours_before"):
        load_settings(None, **values)
    values = settings_values(tmp_path, "sqlite://", reminders={"hours_before": [24, 72, 24]})
    assert load_settings(None, **values).reminders.hours_before == [72, 24]


def test_a_templates_folder_without_the_reminder_stops_run_unless_reminders_are_off(
    tmp_path: Path,
) -> None:
    from mailbot.config import ConfigError, load_settings
    from mailbot.service.preflight import check_templates
    from tests.conftest import ROOT

    folder = tmp_path / "templates"
    (folder / "reply").mkdir(parents=True)
    for template in (ROOT / "templates" / "reply").glob("*.txt.j2"):
        if not template.name.startswith("reminder."):
            (folder / "reply" / template.name).write_bytes(template.read_bytes())
    values = settings_values(tmp_path, "sqlite://", templates_dir=str(folder))
    with pytest.raises(ConfigError, match=r"'reminder'.*hours_before = \[\]"):
        check_templates(load_settings(None, **values))
    check_templates(load_settings(None, **values, reminders={"hours_before": []}))
