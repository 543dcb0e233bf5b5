"""The thread as applicants use it, end to end through `run --once` on a Maildir and on Dovecot.

An answer to one of our letters belongs to that letter's submission whatever
its subject (Foxmail's 回复：, Outlook's RE:, Gmail's Re:); a thank-you in an
accepted submission's thread is for a person, not answered; Word and PDF sent
a minute apart get one letter (the settling window, on a fake clock); a late
mail names the submission whose earlier version stands.
"""

from __future__ import annotations

import email
import email.policy
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from flask.testing import FlaskClient
from sqlalchemy import select

from mailbot.app import App
from mailbot.cli.report import show
from mailbot.intake.reprocess import reprocess
from mailbot.ledger.attention import needing_a_person
from mailbot.ledger.log import log_rows
from mailbot.replies.outbox import reply_body
from mailbot.service.daemon import Daemon
from mailbot.sources.maildir import deliver, folder_path
from mailbot.store.models import Mail, Reply, Submission
from mailbot.web.app import create_app
from mailbot.web.auth import add_user
from tests.daemon_support import (
    INST,
    PASSWORD_ENV,
    PI,
    july,
    proposal,
    settings_values,
)
from tests.fixtures import AppFactory
from tests.servers.dovecot import Dovecot
from tests.web_support import NAME, PASSWORD, form_token

# Slow: each test runs the pipeline on a Maildir (or Dovecot) mail by mail.
pytestmark = pytest.mark.slow


@dataclass
class Inbox:
    """Where the applicants' mail lands: a Maildir or a Dovecot INBOX, and how to count filing."""

    app: App
    put: Callable[[bytes, datetime], None]
    filed: Callable[[str], int]  # mails in an outcome folder ("accepted", "ignored", ...)
    clock: list[datetime]

    def once(self, at: datetime | None = None) -> None:
        if at is not None:
            self.clock[0] = at
        Daemon(self.app).once()

    def replies(self) -> list[Reply]:
        with self.app.db.transaction() as session:
            found = list(session.scalars(select(Reply).order_by(Reply.id)))
            session.expunge_all()
        return found

    def sent(self) -> list[Reply]:
        return [r for r in self.replies() if r.state == "sent"]

    def mail(self, subject_part: str) -> Mail:
        with self.app.db.transaction() as session:
            found = [m for m in session.scalars(select(Mail)) if subject_part in m.subject]
            assert len(found) == 1, [m.subject for m in found]
            session.expunge_all()
        return found[0]


FOLDERS = {"accepted", "needs-correction", "late", "ignored"}


@pytest.fixture(params=["maildir", pytest.param("dovecot", marks=pytest.mark.servers)])
def inbox(
    make_app: AppFactory,
    request: pytest.FixtureRequest,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> Iterator[Inbox]:
    url = f"sqlite:///{tmp_path / 'mailbot.sqlite3'}"
    if request.param == "maildir":
        maildir = tmp_path / "Maildir"
        app = make_app(settings_values(tmp_path, url))

        def put(raw: bytes, when: datetime) -> None:
            deliver(maildir, raw, when)

        def filed(status: str) -> int:
            where = folder_path(maildir, f"mailbot/{status}")
            return sum(1 for sub in ("cur", "new") for _ in (where / sub).glob("*"))

    else:
        dovecot: Dovecot = request.getfixturevalue("mailbox")
        monkeypatch.setenv(PASSWORD_ENV, dovecot.password)
        app = make_app(settings_values(tmp_path, url, imap=dovecot))

        def put(raw: bytes, when: datetime) -> None:
            dovecot.append("INBOX", raw, when)

        def filed(status: str) -> int:
            return len(dovecot.list_uids(f"mailbot.{status}"))

    # The outbox sends by this clock; the July 2021 mails are long settled by the wall clock.
    clock = [datetime.now(UTC)]
    app.clock = lambda: clock[0]
    yield Inbox(app, put, filed, clock)


def _text(reply: Reply) -> str:
    return reply_body(reply.raw)


def _subject(reply: Reply) -> str:
    message = email.message_from_bytes(reply.raw, policy=email.policy.default)
    return str(message["Subject"])


def _codes(mail: Mail) -> list[str]:
    return [p["code"] for p in mail.problems]


# -- an answer to our letter belongs to its submission ---------------------------------------


@pytest.mark.parametrize(
    ("client", "prefix"),
    [("foxmail", "回复："), ("outlook", "RE: "), ("gmail", "Re: "), ("qqmail", "回复：")],
)
def test_the_missing_pdf_sent_as_an_answer_completes_the_submission(
    inbox: Inbox, client: str, prefix: str
) -> None:
    inbox.put(proposal(client, files="no_pdf"), july(20))
    inbox.once()
    (letter,) = inbox.sent()
    assert letter.template == "needs_correction"
    answer = proposal(
        client,
        files="pdf_only",
        subject=prefix + _subject(letter),
        in_reply_to=letter.message_id,
    )
    inbox.put(answer, july(20, 11))
    inbox.once()

    mail = inbox.mail(_subject(letter)[:12])
    assert "subject_format" not in _codes(mail)
    assert (mail.institution, mail.pi) == (INST, PI)
    first, second = inbox.sent()
    assert second.template == "accepted", (mail.status, mail.problems)
    assert second.submission_id == first.submission_id
    assert "ANSO2021-0001" in _text(second)
    assert "not in the required form" not in _text(second)
    assert inbox.filed("accepted") == 1
    assert inbox.filed("needs-correction") == 1
    # The same judgement again: nothing changes on a reprocess under the same rules.
    assert not reprocess(inbox.app, dry_run=True).mails


def test_an_answer_with_misnamed_files_is_held_to_the_submissions_names(inbox: Inbox) -> None:
    inbox.put(proposal("outlook", files="no_pdf"), july(20))
    inbox.once()
    (letter,) = inbox.sent()
    other = proposal(
        "outlook",
        "中国科学院微生物研究所",
        "李娜",
        files="pdf_only",
        subject="RE: " + _subject(letter),
        in_reply_to=letter.message_id,
    )
    inbox.put(other, july(20, 11))
    inbox.once()
    mail = inbox.mail("RE: ")
    # The thread says whose mail it is; the files name someone else: corrected, not moved.
    assert (mail.institution, mail.pi) == (INST, PI)
    assert "subject_format" not in _codes(mail)
    assert "attachment_name" in _codes(mail) or "missing_pdf" in _codes(mail)
    with inbox.app.db.transaction() as session:
        assert session.scalar(select(Submission.reference).where(Submission.pi == "李娜")) is None


# -- a thank-you in an accepted submission's thread ------------------------------------------


@pytest.mark.parametrize(("client", "prefix"), [("gmail", "Re: "), ("foxmail", "回复：")])
def test_a_thank_you_after_acceptance_is_for_a_person(
    inbox: Inbox, client: str, prefix: str
) -> None:
    inbox.put(proposal(client), july(20))
    inbox.once()
    (letter,) = inbox.sent()
    assert letter.template == "accepted"
    thanks = proposal(
        client,
        files="none",
        subject=prefix + _subject(letter),
        in_reply_to=letter.message_id,
        body="收到，谢谢！Thank you very much.",
    )
    inbox.put(thanks, july(20, 12))
    inbox.once()

    assert len(inbox.replies()) == 1  # nothing queued for the thank-you
    mail = inbox.mail(prefix)
    assert mail.status == "ignored"
    assert _codes(mail) == ["thread_followup"]
    assert inbox.filed("ignored") == 1
    with inbox.app.db.transaction() as session:
        submission = session.scalar(select(Submission))
        assert submission is not None
        assert mail.submission_id == submission.id
        assert submission.status == "accepted"
        assert submission.current_version == 1
        need = needing_a_person(session, inbox.app.call)
        assert [(m.id, m.reasons) for m in need.mails] == [(mail.id, ["thread_followup"])]
    assert not reprocess(inbox.app, dry_run=True).mails


def test_a_mail_without_files_in_a_correction_thread_is_still_answered(inbox: Inbox) -> None:
    inbox.put(proposal("foxmail", files="no_pdf"), july(20))
    inbox.once()
    (letter,) = inbox.sent()
    question = proposal(
        "foxmail",
        files="none",
        subject="回复：" + _subject(letter),
        in_reply_to=letter.message_id,
        body="请问还缺什么？",
    )
    inbox.put(question, july(20, 12))
    inbox.once()
    mail = inbox.mail("回复：")
    assert mail.status == "needs_correction"
    assert "subject_format" not in _codes(mail)
    assert [r.template for r in inbox.sent()] == ["needs_correction", "needs_correction"]


# -- Word and PDF a minute apart: one letter --------------------------------------------------


def _utc(when: datetime) -> datetime:
    return when.astimezone(UTC)


def test_word_and_pdf_a_minute_apart_get_one_letter(inbox: Inbox) -> None:
    t0 = july(26, 16, 42, 9)
    inbox.put(proposal("outlook", files="no_pdf"), t0)
    inbox.once(at=_utc(t0) + timedelta(seconds=5))
    (waiting,) = inbox.replies()
    assert (waiting.state, waiting.template) == ("pending", "needs_correction")
    assert inbox.sent() == []

    inbox.put(proposal("outlook", files="pdf_only"), t0 + timedelta(seconds=60))
    inbox.once(at=_utc(t0) + timedelta(seconds=65))
    (letter,) = inbox.sent()
    assert letter.template == "accepted"
    assert "ANSO2021-0001" in _text(letter)
    states = {r.id: r.state for r in inbox.replies()}
    assert states[waiting.id] == "superseded"

    inbox.once(at=_utc(t0) + timedelta(minutes=10))  # the kept-back letter never leaves
    assert [r.template for r in inbox.sent()] == ["accepted"]


def test_a_single_mail_missing_its_pdf_is_answered_once_the_window_is_over(inbox: Inbox) -> None:
    t0 = july(26, 16, 42, 9)
    inbox.put(proposal("gmail", files="no_pdf"), t0)
    inbox.once(at=_utc(t0) + timedelta(seconds=5))
    inbox.once(at=_utc(t0) + timedelta(seconds=89))
    assert inbox.sent() == []
    inbox.once(at=_utc(t0) + timedelta(seconds=91))
    assert [r.template for r in inbox.sent()] == ["needs_correction"]


def test_an_accepted_mail_never_waits(inbox: Inbox) -> None:
    t0 = july(26, 16, 42, 9)
    inbox.put(proposal("foxmail"), t0)
    inbox.once(at=_utc(t0) + timedelta(seconds=2))
    assert [r.template for r in inbox.sent()] == ["accepted"]


def test_a_window_of_zero_answers_at_once(make_app: AppFactory, tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'mailbot.sqlite3'}"
    app = make_app(settings_values(tmp_path, url, intake={"settle_window": "0"}))
    t0 = july(26, 16, 42, 9)
    app.clock = lambda: _utc(t0) + timedelta(seconds=5)
    deliver(tmp_path / "Maildir", proposal("gmail", files="no_pdf"), t0)
    deliver(tmp_path / "Maildir", proposal("gmail", files="pdf_only"), t0 + timedelta(seconds=1))
    Daemon(app).once()
    with app.db.transaction() as session:
        templates = [r.template for r in session.scalars(select(Reply).order_by(Reply.id))]
        states = [r.state for r in session.scalars(select(Reply).order_by(Reply.id))]
    # Without the window each mail is answered as it comes, as before.
    assert templates == ["needs_correction", "accepted"]
    assert states == ["sent", "sent"]


# -- a late mail for an existing submission ---------------------------------------------------


@pytest.mark.parametrize("files", ["good", "pdf_only"])
def test_a_late_mail_names_the_reference_and_the_version_that_stands(
    inbox: Inbox, files: str
) -> None:
    inbox.put(proposal("coremail", files="no_pdf" if files == "pdf_only" else "good"), july(28))
    inbox.once()
    first_status = "needs_correction" if files == "pdf_only" else "accepted"
    inbox.put(proposal("coremail", files=files), july(31, 9))
    inbox.once()
    _first, late = inbox.sent()
    assert late.template == "late"
    body = _text(late)
    assert "ANSO2021-0001" in body
    assert "第 1 版保持不变" in body
    assert "version 1, received before the deadline, stands" in body
    assert ("已受理" if first_status == "accepted" else "需要更正") in body
    assert "None" not in body
    with inbox.app.db.transaction() as session:
        (row,) = log_rows(session, inbox.app.call)
        assert (row.status, row.version) == (first_status, 1)
        assert "late_mail" in row.problems
        page = show(session, inbox.app.call, "ANSO2021-0001")
    assert "(no version): late" in page
    assert inbox.filed("late") == 1
    desk = _signed_in(inbox.app).get("/submissions/ANSO2021-0001")
    assert desk.status_code == 200
    assert 'id="late-mail">1 ' in desk.text
    assert "the application stands as it was" in desk.text


def _signed_in(app: App) -> FlaskClient:
    with app.db.transaction() as session:
        add_user(session, NAME, PASSWORD)
    client = create_app(app).test_client()
    page = client.get("/login")
    answer = client.post(
        "/login",
        data={"csrf_token": form_token(page.text), "name": NAME, "password": PASSWORD},
    )
    assert answer.status_code == 303
    return client


def test_a_late_first_mail_says_nothing_of_an_earlier_version(inbox: Inbox) -> None:
    inbox.put(proposal("coremail"), july(31, 9))
    inbox.once()
    (late,) = inbox.sent()
    body = _text(late)
    assert late.template == "late"
    assert "保持不变" not in body
    assert "stands" not in body
