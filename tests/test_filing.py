"""Where `mailbot run --once` files each mail of a Maildir, and how the summary counts it."""

from __future__ import annotations

import hashlib
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from sqlalchemy import func, select

from mailbot.intake.batch import record_batch
from mailbot.intake.filing import filed_statuses
from mailbot.intake.poll import PollReport, poll
from mailbot.intake.record import Known, NotStored, Processed, Recorded
from mailbot.judge import processes as judges_module
from mailbot.judge.bounded import JudgeError
from mailbot.judge.processes import Judged
from mailbot.service.daemon import Daemon
from mailbot.sources.base import Cursor, Fetched, Flag, MoveTo
from mailbot.sources.maildir import deliver, folder_path
from mailbot.store.blobs import StoreError
from mailbot.store.models import Mail, Reply
from tests.conftest import ROOT
from tests.daemon_support import july, proposal, settings_values, toml, with_trace
from tests.fixtures import AppFactory

# Every test here runs the whole pipeline, one `mailbot` in its own process.
pytestmark = pytest.mark.slow

OTHER_INST, OTHER_PI = "中国科学院微生物研究所", "李娜"


def _files(maildir: Path, folder: str) -> int:
    where = folder_path(maildir, folder)
    return sum(len(list((where / sub).iterdir())) for sub in ("cur", "new") if where.is_dir())


def test_a_completion_is_filed_and_counted_under_the_status_it_brought(tmp_path: Path) -> None:
    values = settings_values(tmp_path, f"sqlite:///{tmp_path / 'mailbot.sqlite3'}")
    config = tmp_path / "mailbot.toml"
    config.write_text(toml(values), encoding="utf-8")
    maildir = tmp_path / "Maildir"
    # The Word with a partner's agreement, then the stamped PDF on its own.
    deliver(maildir, proposal("coremail", OTHER_INST, OTHER_PI, files="no_pdf"), july(22))
    deliver(maildir, proposal("coremail", OTHER_INST, OTHER_PI, files="pdf_only"), july(23))

    def mailbot(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "mailbot", "--config", str(config), *args],
            capture_output=True,
            text=True,
            cwd=ROOT,
            timeout=120,
            check=False,
        )

    assert mailbot("init").returncode == 0
    once = mailbot("run", "--once")
    assert once.returncode == 0, once.stderr
    assert "2 new (accepted 1, needs_correction 1)" in once.stdout
    assert _files(maildir, "mailbot/needs-correction") == 1  # the first mail, as judged then
    assert _files(maildir, "mailbot/accepted") == 1  # the completion that made it accepted
    assert _files(maildir, "INBOX") == 0


def test_a_completion_recorded_before_a_stop_is_filed_under_the_same_status(
    tmp_path: Path,
    make_app: AppFactory,
) -> None:
    """The next start files mail recorded but not moved; a completion goes where it would have."""
    app = make_app(settings_values(tmp_path, f"sqlite:///{tmp_path / 'mailbot.sqlite3'}"))
    maildir = tmp_path / "Maildir"
    deliver(maildir, proposal("coremail", OTHER_INST, OTHER_PI, files="no_pdf"), july(22))
    deliver(maildir, proposal("coremail", OTHER_INST, OTHER_PI, files="pdf_only"), july(23))
    Daemon(app).once()
    with app.db.transaction() as session:
        mails = session.scalars(select(Mail).order_by(Mail.id)).all()
        rows = [(m.location, m.status) for m in mails]
        assert [status for _location, status in rows] == ["needs_correction"] * 2
        filed = filed_statuses(session, mails[0].source, rows)
    assert [status for _location, status in filed] == ["needs_correction", "accepted"]
    assert [m.settled_folder for m in mails] == ["mailbot/needs-correction", "mailbot/accepted"]


def test_each_mail_comes_back_as_what_became_of_it(make_app: AppFactory, tmp_path: Path) -> None:
    """Recorded, recorded as a duplicate, known already, or not stored: what the summary counts."""
    app = make_app(settings_values(tmp_path, f"sqlite:///{tmp_path / 'mailbot.sqlite3'}"))
    maildir = tmp_path / "Maildir"
    raw = proposal("coremail")
    deliver(maildir, raw, july(22))
    deliver(maildir, with_trace(raw, "call@anso.org.cn", "alias"), july(22, 10, 5))
    mailbox = app.open_mailbox()
    [batch] = list(mailbox.fetch_new("INBOX", Cursor()))
    judged = list(app.judges.judge_all((item.raw, item.received_at) for item in batch))
    report = PollReport()

    def process(source: str, item: Fetched, judged: Judged | Exception) -> Processed:
        """One mail as a batch of its own."""
        [(_, outcome)] = record_batch(app, source, [(item, judged)])
        return outcome

    first = process(mailbox.name, batch[0], judged[0])
    assert isinstance(first, Recorded)
    assert first.status == "accepted"
    assert not first.duplicate
    copy = process(mailbox.name, batch[1], judged[1])
    assert isinstance(copy, Recorded)
    assert copy.duplicate, "the second delivery is recorded as a duplicate"
    assert copy.status == "ignored"
    assert process(mailbox.name, batch[0], judged[0]) == Known("accepted")
    full = StoreError("the blob store's disk is full")
    refused = process(mailbox.name, batch[0], full)
    assert refused == NotStored(full)
    for outcome in (first, copy, Known("accepted"), refused):
        report.tally(outcome)

    assert report.summary() == (
        "2 new (accepted 1, ignored 1), 1 already recorded, 1 failed, 1 duplicate"
    )
    assert report.fault is full
    with app.db.transaction() as session:
        assert session.scalar(select(func.count()).select_from(Mail)) == 2
        assert session.scalar(select(func.count()).select_from(Reply)) == 1  # one answer


@pytest.mark.parametrize("first", [False, True], ids=["judged-then-stored", "stored-first"])
def test_the_daemon_lets_go_of_a_mail_once_a_judging_process_stored_it(
    make_app: AppFactory, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, first: bool
) -> None:
    if first:  # as a big mail is: stored before it is judged
        monkeypatch.setattr(judges_module, "STORE_FIRST", 0)
    app = make_app(settings_values(tmp_path, f"sqlite:///{tmp_path / 'mailbot.sqlite3'}"))
    raw = proposal("coremail")
    deliver(tmp_path / "Maildir", raw, july(22))
    mailbox = app.open_mailbox()
    fetched: list[Fetched] = []
    fetch_new = mailbox.fetch_new

    def watched(
        folder: str, cursor: Cursor, before: Callable[[int], None] | None = None
    ) -> Iterator[list[Fetched]]:
        for batch in fetch_new(folder, cursor, before):
            fetched.extend(batch)
            yield batch

    monkeypatch.setattr(mailbox, "fetch_new", watched)
    assert poll(app, mailbox).summary().startswith("1 new (accepted 1)")
    [item] = fetched
    assert item.raw == b""  # released: the store holds the mail
    with app.db.transaction() as session:
        mail = session.scalars(select(Mail)).one()
        assert item.stored_as == mail.raw_sha256
        assert mail.raw_size == len(raw)
    assert app.blobs.get(mail.raw_sha256) == raw


def test_a_mail_let_go_of_and_then_not_judged_is_kept_from_the_store(
    make_app: AppFactory, tmp_path: Path
) -> None:
    """A big mail is let go of once stored; if its judging then fails, the store has it."""
    app = make_app(settings_values(tmp_path, f"sqlite:///{tmp_path / 'mailbot.sqlite3'}"))
    raw = proposal("coremail")
    deliver(tmp_path / "Maildir", raw, july(22))
    mailbox = app.open_mailbox()
    [[item]] = list(mailbox.fetch_new("INBOX", Cursor()))
    item.release(app.blobs.put(raw))  # as the judging process's word that it stored it does
    [(_, outcome)] = record_batch(app, mailbox.name, [(item, JudgeError("a fault of mailbot's"))])
    assert isinstance(outcome, Recorded)
    assert outcome.status == "ignored"
    with app.db.transaction() as session:
        mail = session.scalars(select(Mail)).one()
        assert [p["code"] for p in mail.problems] == ["unjudged"]
        assert mail.raw_sha256 == hashlib.sha256(raw).hexdigest()
        assert mail.raw_size == len(raw)


def test_with_after_flag_a_mail_stays_in_the_inbox_flagged(
    make_app: AppFactory, tmp_path: Path
) -> None:
    values = settings_values(tmp_path, f"sqlite:///{tmp_path / 'mailbot.sqlite3'}")
    app = make_app(values)
    flagging = make_app({**values, "source": {**values["source"], "after": "flag"}})
    assert app.filing("accepted") == MoveTo("mailbot/accepted")
    assert flagging.filing("accepted") == Flag()
    maildir = tmp_path / "Maildir"
    key = deliver(maildir, proposal("coremail"), july(22))
    report, _ = Daemon(flagging).once()
    assert report.new == 1
    assert [p.name for p in (maildir / "cur").iterdir()] == [f"{key}:2,S"]
    assert _files(maildir, "mailbot/accepted") == 0
    with flagging.db.transaction() as session:
        mail = session.scalars(select(Mail)).one()
        assert mail.settled
        assert mail.settled_folder is None


def test_a_batch_flushes_the_folders_naming_its_blobs_once_before_its_commit(
    make_app: AppFactory, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The judging processes leave the folders: one flush covers every mail of the batch."""
    app = make_app(settings_values(tmp_path, f"sqlite:///{tmp_path / 'mailbot.sqlite3'}"))
    for hour in (9, 10, 11):
        deliver(tmp_path / "Maildir", proposal("coremail", pi=f"张{hour}"), july(22, hour))
    calls: list[tuple[list[str], int]] = []
    sync_folders = app.blobs.sync_folders

    def watched(sha256s: Iterator[str]) -> None:
        with app.db.transaction() as session:
            recorded = session.scalar(select(func.count()).select_from(Mail)) or 0
        calls.append((list(sha256s), recorded))
        sync_folders(calls[-1][0])

    monkeypatch.setattr(app.blobs, "sync_folders", watched)
    assert poll(app, app.open_mailbox()).new == 3
    assert len(calls) == 1, "one flush for the batch"
    [(flushed, recorded_before)] = calls
    assert recorded_before == 0, "the folders are flushed before the commit"
    with app.db.transaction() as session:
        mails = session.scalars(select(Mail)).all()
        assert {m.raw_sha256 for m in mails} <= set(flushed)
        assert {a.sha256 for m in mails for a in m.attachments} <= set(flushed)
