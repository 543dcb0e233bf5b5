"""`mailbot reprocess`: unchanged rules change nothing, a dry run writes nothing, and a
changed verdict is told once, when asked, however many runs later."""

from __future__ import annotations

import email
import email.policy
import re
import zlib
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from click.testing import Result
from sqlalchemy import select

from mailbot.app import App
from mailbot.intake.reprocess import reprocess
from mailbot.service.daemon import Daemon
from mailbot.sources.maildir import deliver
from mailbot.store.models import Base, Mail, Reply, Submission
from mailbot.web.actions import Acting, accept_by_decision, withdraw
from mailbot.web.auth import Actor, add_user
from mailbot.web.dealing import AttachTo, attach
from mailbot.web.labels import STATUSES
from tests.conftest import RULES, mailbot_in_process, write_rules
from tests.daemon_support import july, proposal, settings_values
from tests.fixtures import AppFactory

# Every test here runs the whole pipeline, some `mailbot` in its own process.
pytestmark = pytest.mark.slow

OTHER = ("中国科学院微生物研究所", "李娜")
LATE = ("中国科学院大气物理研究所", "王堃")


def dump(engine: sa.Engine) -> dict[str, list[tuple[Any, ...]]]:
    """Every row of every table, in primary-key order."""
    with engine.connect() as connection:
        tables = {
            table.name: [
                tuple(row)
                for row in connection.execute(table.select().order_by(*table.primary_key.columns))
            ]
            for table in Base.metadata.sorted_tables
        }
        tables["alembic_version"] = [
            tuple(r) for r in connection.execute(sa.text("SELECT * FROM alembic_version"))
        ]
    return tables


def later_deadline(folder: Path) -> Path:
    """The call's rules with the deadline a week later: the late mails come in time."""
    text = RULES.read_text(encoding="utf-8")
    changed = text.replace('deadline = "2021-07-30 24:00"', 'deadline = "2021-08-06 24:00"')
    assert changed != text
    return write_rules(folder, changed)


def intake(make_app: AppFactory, tmp_path: Path, db_url: str) -> App:
    """Every kind of version: new, resubmission, completion, late alone, late after a version."""
    app = make_app(settings_values(tmp_path, db_url))
    maildir = tmp_path / "Maildir"
    deliver(maildir, proposal("foxmail", files="misnamed"), july(20))
    deliver(maildir, proposal("foxmail", files="good"), july(21))
    deliver(maildir, proposal("coremail", *OTHER, files="no_pdf"), july(22))
    deliver(maildir, proposal("coremail", *OTHER, files="pdf_only"), july(23))
    deliver(maildir, proposal("qqmail", *LATE, files="good"), july(31))
    deliver(maildir, proposal("foxmail", files="good", subject=None), july(31, 12))
    Daemon(app).once()
    return app


def test_unchanged_rules_change_nothing_at_all(
    tmp_path: Path, db_url: str, make_app: AppFactory
) -> None:
    app = intake(make_app, tmp_path, db_url)
    before = dump(app.db.engine)
    report = reprocess(app)
    assert report.total == 6
    assert report.mails == []
    assert report.submissions == []
    assert report.untold == 0
    assert dump(app.db.engine) == before
    with app.db.transaction() as session:
        statuses = {s.pi: s.status for s in session.scalars(select(Submission))}
        kinds = [
            (s.pi, v.number, v.kind, v.status)
            for s in session.scalars(select(Submission).order_by(Submission.seq))
            for v in s.versions
        ]
    # The late submission stays late (no undocumented status); first versions stay new.
    assert statuses == {"张喆": "accepted", "李娜": "accepted", "王堃": "late"}
    assert kinds == [
        ("张喆", 1, "new", "needs_correction"),
        ("张喆", 2, "resubmission", "accepted"),
        ("李娜", 1, "new", "needs_correction"),
        ("李娜", 2, "completion", "accepted"),
    ]


def test_a_dry_run_prints_the_changes_and_writes_nothing(
    tmp_path: Path, db_url: str, make_app: AppFactory
) -> None:
    app = intake(make_app, tmp_path, db_url)
    before = dump(app.db.engine)
    values = settings_values(tmp_path, db_url, rules=str(later_deadline(tmp_path)))
    changed = make_app(values)
    report = reprocess(changed, reply=True, dry_run=True)
    assert dump(app.db.engine) == before
    assert len(report.mails) == 2  # both late mails now come in time
    assert any(": late -> accepted; problems -late" in line for line in report.mails)
    assert report.submissions == [
        "ANSO2021-0001: status accepted; versions 1 new needs_correction, "
        "2 resubmission accepted -> 1 new needs_correction, 2 resubmission accepted, "
        "3 resubmission accepted",
        "ANSO2021-0003: status late -> accepted; versions none -> 1 new accepted",
    ]
    assert report.replies == 0
    assert report.untold == 2


def test_a_change_not_told_is_told_by_a_later_reply_once(
    tmp_path: Path, db_url: str, make_app: AppFactory
) -> None:
    intake(make_app, tmp_path, db_url)
    values = settings_values(tmp_path, db_url, rules=str(later_deadline(tmp_path)))
    app = make_app(values)

    def replies() -> list[Reply]:
        with app.db.transaction() as session:
            return list(session.scalars(select(Reply).order_by(Reply.id)))

    sent_before = len(replies())
    first = reprocess(app)  # saves the changes, tells nobody
    assert len(first.mails) == 2
    assert first.replies == 0
    assert first.untold == 2
    assert len(replies()) == sent_before
    told = reprocess(app, reply=True)  # nothing changes now, but two are owed a reply
    assert told.mails == []
    assert told.replies == 2
    assert told.untold == 0
    new = replies()[sent_before:]
    assert sorted(r.template for r in new) == ["accepted", "accepted"]
    for item in new:
        letter = email.message_from_bytes(item.raw, policy=email.policy.default)
        body = letter.get_body(preferencelist=("plain",))
        assert body is not None
        text = body.get_content()
        assert "None" not in text
        # The late one's first version is new; the other replaces version 2.
        assert ("（首次提交）" if "王堃" in text else "取代第 2 版") in text
    again = reprocess(app, reply=True)
    assert again.replies == 0
    assert again.untold == 0
    assert len(replies()) == sent_before + 2


def test_a_submission_left_without_mail_is_ignored_not_void(
    tmp_path: Path, make_app: AppFactory
) -> None:
    db_url = f"sqlite:///{tmp_path / 'mailbot.sqlite3'}"
    intake(make_app, tmp_path, db_url)
    # The operator puts the late sender on the deny list: reprocess judges as the daemon
    # now would, so that mail is ignored and its submission has no mail left.
    app = make_app(settings_values(tmp_path, db_url, intake={"deny": ["*@example.ac.cn"]}))
    report = reprocess(app)
    assert report.untold == 0  # an ignored mail is never answered
    with app.db.transaction() as session:
        statuses = {s.reference: s.status for s in session.scalars(select(Submission))}
    assert set(statuses.values()) == {"ignored"}
    assert set(statuses.values()) <= set(STATUSES)
    assert "ANSO2021-0003: status late -> ignored" in report.submissions


# The same, as a secretariat runs it: the demo, then the command.


def mailbot(*args: str) -> Result:
    return mailbot_in_process(*args)


def demo_dump(folder: Path) -> dict[str, list[tuple[Any, ...]]]:
    engine = sa.create_engine(f"sqlite:///{folder / 'mailbot.sqlite3'}")
    try:
        return dump(engine)
    finally:
        engine.dispose()


def test_the_demo_reprocessed_under_its_own_rules_is_byte_for_byte_the_same(
    tmp_path: Path,
) -> None:
    target = tmp_path / "demo"
    assert mailbot("demo", "--dir", str(target)).exit_code == 0
    config = str(target / "mailbot.toml")
    before = demo_dump(target)
    result = mailbot("--config", config, "reprocess")
    assert result.exit_code == 0, result.stderr
    assert result.stdout.splitlines() == [
        "9 mails judged again: 0 verdicts changed, 0 submissions changed"
    ]
    assert demo_dump(target) == before
    log = mailbot("--config", config, "log")
    assert "void" not in log.stdout
    assert "late" in log.stdout


def test_the_command_previews_then_saves_then_tells(tmp_path: Path) -> None:
    target = tmp_path / "demo"
    assert mailbot("demo", "--dir", str(target)).exit_code == 0
    config_path = target / "mailbot.toml"
    rules = later_deadline(tmp_path)
    text = config_path.read_text(encoding="utf-8")
    config_path.write_text(
        re.sub(r"^rules = .*$", f'rules = "{rules.as_posix()}"', text, flags=re.M),
        encoding="utf-8",
    )
    config = str(config_path)
    before = demo_dump(target)

    preview = mailbot("--config", config, "reprocess", "--dry-run")
    assert preview.exit_code == 0, preview.stderr
    lines = preview.stdout.splitlines()
    assert lines[0] == (
        "9 mails judged again: 1 verdict would change, 1 submission would change "
        "(dry run: nothing written)"
    )
    assert "late -> accepted" in lines[1]
    assert lines[2] == "  ANSO2021-0005: status late -> accepted; versions none -> 1 new accepted"
    assert demo_dump(target) == before

    saved = mailbot("--config", config, "reprocess")
    assert saved.stdout.splitlines()[0] == (
        "9 mails judged again: 1 verdict changed, 1 submission changed"
    )
    assert "1 changed verdict not yet told" in saved.stdout
    told = mailbot("--config", config, "reprocess", "--reply")
    assert told.stdout.splitlines() == [
        "9 mails judged again: 0 verdicts changed, 0 submissions changed, 1 reply queued"
    ]
    again = mailbot("--config", config, "reprocess", "--reply")
    assert "0 replies queued" in again.stdout


def test_mail_let_in_by_a_changed_deny_list_gets_new_versions_and_the_rest_keep_theirs(
    tmp_path: Path, db_url: str, make_app: AppFactory
) -> None:
    zhang = f"pi{zlib.crc32('中国科学院植物研究所+张喆'.encode()) % 10_000}@example.ac.cn"
    denied = settings_values(tmp_path, db_url, intake={"deny": [zhang]})
    app = make_app(denied)
    maildir = tmp_path / "Maildir"
    deliver(maildir, proposal("foxmail", files="misnamed"), july(20))
    deliver(maildir, proposal("foxmail", files="good"), july(21))
    deliver(maildir, proposal("coremail", *OTHER, files="no_pdf"), july(22))
    deliver(maildir, proposal("coremail", *OTHER, files="pdf_only"), july(23))
    Daemon(app).once()

    def versions() -> dict[tuple[str, int], tuple[int, str]]:
        with app.db.transaction() as session:
            return {
                (s.reference, v.number): (v.id, v.kind)
                for s in session.scalars(select(Submission))
                for v in s.versions
            }

    before = versions()
    assert set(before) == {("ANSO2021-0001", 1), ("ANSO2021-0001", 2)}
    # Taken off the deny list: the earlier mails now come first and make versions of their own.
    report = reprocess(make_app(settings_values(tmp_path, db_url)))
    assert len(report.mails) == 2
    assert report.untold == 2
    assert (
        "ANSO2021-0002: new submission, accepted; versions 1 new needs_correction, "
        in (report.submissions[0])
    )
    after = versions()
    assert {k: after[k] for k in before} == before  # the same rows, ids and all
    assert after[("ANSO2021-0002", 1)][1] == "new"
    assert after[("ANSO2021-0002", 2)][1] == "resubmission"


def test_a_decision_made_on_the_desk_stands_through_a_reprocess(
    tmp_path: Path, make_app: AppFactory
) -> None:
    db_url = f"sqlite:///{tmp_path / 'mailbot.sqlite3'}"
    app = intake(make_app, tmp_path, db_url)
    with app.db.transaction() as session:
        user = add_user(session, "wang.fang", "a long enough password")
        session.flush()
        actor = Actor(user.id, user.name)
        late = session.scalars(select(Submission).where(Submission.pi == LATE[1])).one()
        accepted = session.scalars(select(Submission).where(Submission.pi == "张喆")).one()
        when = datetime(2021, 8, 2, 9, 0, tzinfo=UTC)
        accept_by_decision(session, late, Acting(actor, "the server was down that night", when))
        withdraw(session, accepted, Acting(actor, "the applicant asked", when))
    changed = make_app(settings_values(tmp_path, db_url, rules=str(later_deadline(tmp_path))))
    report = reprocess(changed)
    assert len(report.mails) == 2  # the verdicts are judged again...
    with app.db.transaction() as session:
        statuses = {s.pi: s.status for s in session.scalars(select(Submission))}
    # ...but what a person decided is kept.
    assert statuses == {"张喆": "withdrawn", "李娜": "accepted", "王堃": "accepted_by_decision"}


def test_mail_attached_on_the_desk_stays_attached_through_a_reprocess(
    tmp_path: Path, db_url: str, make_app: AppFactory
) -> None:
    app = intake(make_app, tmp_path, db_url)
    maildir = tmp_path / "Maildir"
    # 李娜's files, misnamed, under a subject naming nobody; then a note with no files.
    deliver(
        maildir, proposal("outlook", *OTHER, files="misnamed", subject="建议书请查收"), july(24)
    )
    deliver(maildir, proposal("outlook", *OTHER, files="none", subject="补充说明"), july(24, 12))
    Daemon(app).once()
    when = datetime(2021, 7, 25, 9, 0, tzinfo=UTC)
    with app.db.transaction() as session:
        user = add_user(session, "wang.fang", "a long enough password")
        session.flush()
        actor = Actor(user.id, user.name)
        mails = {m.subject: m for m in session.scalars(select(Mail).where(Mail.id > 6))}
        assert all(m.submission_id is None for m in mails.values())
        reference = session.scalars(select(Submission).where(Submission.pi == OTHER[1])).one()
        reference_text = reference.reference
        attach(
            session,
            app,
            mails["建议书请查收"],
            AttachTo(reference_text, as_version=True),
            Acting(actor, "主题未写单位", when),
        )
        attach(
            session,
            app,
            mails["补充说明"],
            AttachTo(reference_text, as_version=False),
            Acting(actor, "补充说明", when),
        )
    with app.db.transaction() as session:
        li_na = session.scalars(select(Submission).where(Submission.pi == OTHER[1])).one()
        assert [(v.number, v.kind, v.status) for v in li_na.versions][-1] == (
            3,
            "resubmission",
            "needs_correction",
        )
    before = dump(app.db.engine)
    report = reprocess(app)
    assert report.mails == []
    assert report.submissions == []
    assert dump(app.db.engine) == before  # nothing a person attached comes loose
