"""The intake daemon against real servers: Dovecot, an SMTP server, SQLite and PostgreSQL."""

from __future__ import annotations

import email
import signal
from collections import Counter
from collections.abc import Callable
from datetime import datetime
from pathlib import Path

import pytest
from click.testing import CliRunner, Result
from sqlalchemy import func, select

from mailbot.cli import main
from mailbot.service.daemon import Daemon
from mailbot.store.models import Mail, Reply, Submission
from tests.daemon_support import (
    PASSWORD_ENV,
    daemon_process,
    july,
    proposal,
    settings_values,
    toml,
    wait_until,
)
from tests.fixtures import AppFactory
from tests.mailfactory import build_mail
from tests.servers.dovecot import Dovecot
from tests.servers.smtp import SmtpSink

MIXED: list[tuple[str, Callable[[], bytes], datetime, str]] = [
    # (what, raw, receipt time, expected status)
    ("good", lambda: proposal("outlook", "中国科学院植物研究所", "张喆"), july(20), "accepted"),
    (
        "misnamed",
        lambda: proposal("foxmail", "中国科学院微生物研究所", "李娜", files="misnamed"),
        july(21),
        "needs_correction",
    ),
    (
        "no pdf",
        lambda: proposal("coremail", "中国科学院大气物理研究所", "王堃", files="no_pdf"),
        july(22),
        "needs_correction",
    ),
    (
        "late",
        lambda: proposal("qqmail", "中国科学院上海营养与健康研究所", "陈镕"),
        july(31, 0, 0, 1),
        "late",
    ),
    (
        "on the edge",
        lambda: proposal("gmail", "中国科学院昆明动物研究所", "赵磊"),
        july(30, 23, 59, 59),
        "accepted",
    ),
    (
        "out of office",
        lambda: build_mail(
            "outlook",
            subject="自动回复: 合作专项建议书",
            headers=[("Auto-Submitted", "auto-replied")],
        ),
        july(23),
        "ignored",
    ),
    (
        "bounce",
        lambda: build_mail(
            "raw_utf8",
            subject="Undelivered Mail Returned to Sender",
            sender=("Mail Delivery System", "MAILER-DAEMON@mx.example.org"),
        ),
        july(24),
        "ignored",
    ),
]


def _fill(dovecot: Dovecot) -> dict[str, tuple[bytes, str]]:
    sent = {}
    for _what, make, when, status in MIXED:
        raw = make()
        dovecot.append("INBOX", raw, when)
        sent[email.message_from_bytes(raw)["Message-ID"].strip()] = (raw, status)
    return sent


def test_run_once_against_dovecot(
    imap_env: Dovecot, smtp_sink: SmtpSink, db_url: str, tmp_path: Path, make_app: AppFactory
) -> None:
    sent = _fill(imap_env)
    app = make_app(settings_values(tmp_path, db_url, imap=imap_env, smtp=smtp_sink))
    polled, replies = Daemon(app).once()
    assert polled.new == len(MIXED)
    assert polled.failed == 0

    with app.db.transaction() as session:
        mails = {m.message_id: m for m in session.scalars(select(Mail))}
        assert {mid: m.status for mid, m in mails.items()} == {
            mid: s for mid, (_, s) in sent.items()
        }
        for mail in mails.values():
            assert mail.message_id is not None
            assert app.blobs.get(mail.raw_sha256) == sent[mail.message_id][0]
            assert mail.received_at.year == 2021

    answered = [mid for mid, (_, status) in sent.items() if status != "ignored"]
    got = smtp_sink.wait_for(len(answered), timeout=10)
    assert replies.sent == len(answered)
    in_reply_to = Counter(m.message["In-Reply-To"].strip() for m in got)
    assert in_reply_to == Counter(answered)  # exactly one reply to each, threaded to it
    for message in got:
        assert message.message["Auto-Submitted"] == "auto-replied"
        original = email.message_from_bytes(sent[message.message["In-Reply-To"].strip()][0])
        assert list(message.rcpt_tos) == [email.utils.parseaddr(original["From"])[1]]
        assert message.message["In-Reply-To"].strip() in message.message["References"]

    assert imap_env.list_uids("INBOX") == []
    expected_folders = Counter(status for _, (_, status) in sent.items())
    folder_of = {
        "accepted": "mailbot.accepted",
        "needs_correction": "mailbot.needs-correction",
        "late": "mailbot.late",
        "ignored": "mailbot.ignored",
    }
    for status, count in expected_folders.items():
        assert len(imap_env.list_uids(folder_of[status])) == count

    again, again_sent = Daemon(app).once()
    assert (again.new, again.known, again_sent.sent) == (0, 0, 0)
    assert len(smtp_sink.messages) == len(answered)


def test_flag_mode_leaves_mail_and_a_second_run_does_nothing(
    imap_env: Dovecot, smtp_sink: SmtpSink, db_url: str, tmp_path: Path, make_app: AppFactory
) -> None:
    _fill(imap_env)
    values = settings_values(tmp_path, db_url, imap=imap_env, smtp=smtp_sink)
    values["source"]["after"] = "flag"
    app = make_app(values)
    first, _ = Daemon(app).once()
    assert first.new == len(MIXED)
    assert len(imap_env.list_uids("INBOX")) == len(MIXED)
    with imap_env.client() as client:
        client.select_folder("INBOX", readonly=True)
        flags = client.get_flags(client.search("ALL"))
    assert all(b"$MailbotDone" in f and b"\\Seen" not in f for f in flags.values())
    second, sent = Daemon(app).once()
    assert (second.new, sent.sent) == (0, 0)


def test_uidvalidity_change_processes_nothing_twice(
    imap_env: Dovecot, smtp_sink: SmtpSink, db_url: str, tmp_path: Path, make_app: AppFactory
) -> None:
    values = settings_values(tmp_path, db_url, imap=imap_env, smtp=smtp_sink)
    values["source"]["after"] = "flag"
    app = make_app(values)
    raws = [proposal("outlook"), proposal("gmail", "中国科学院微生物研究所", "李娜")]
    for raw in raws:
        imap_env.append("INBOX", raw, july(20))
    Daemon(app).once()
    # The server loses its index: same mails, new UIDVALIDITY, new UIDs.
    imap_env.clear()
    for raw in [*raws, proposal("coremail", "中国科学院大气物理研究所", "王堃")]:
        imap_env.append("INBOX", raw, july(21))
    report, _ = Daemon(app).once()
    assert report.new == 1
    with app.db.transaction() as session:
        assert session.scalar(select(func.count()).select_from(Mail)) == 3
    assert len(smtp_sink.messages) == 3


def test_replies_wait_while_smtp_is_down_and_all_go_out_after(
    imap_env: Dovecot, smtp_sink: SmtpSink, db_url: str, tmp_path: Path, make_app: AppFactory
) -> None:
    sent = _fill(imap_env)
    answered = sum(1 for _, s in sent.values() if s != "ignored")
    values = settings_values(tmp_path, db_url, imap=imap_env, smtp=smtp_sink)
    values["replies"]["backoff_initial"] = "0s"
    app = make_app(values)
    smtp_sink.stop()
    polled, replies = Daemon(app).once()
    assert polled.new == len(MIXED)
    assert replies.sent == 0
    with app.db.transaction() as session:
        waiting = session.scalars(select(Reply)).all()
        assert len(waiting) == answered
        assert all(r.state == "pending" and r.last_error for r in waiting)
    smtp_sink.start()
    Daemon(app).send()
    assert len(smtp_sink.wait_for(answered, timeout=10)) == answered
    with app.db.transaction() as session:
        assert {r.state for r in session.scalars(select(Reply))} == {"sent"}


@pytest.mark.slow  # the whole pipeline, on each database
@pytest.mark.parametrize("in_store", [False, True], ids=["as-judged", "files-in-store"])
def test_resubmission_and_completion_keep_one_reference(
    tmp_path: Path,
    db_url: str,
    in_store: bool,
    monkeypatch: pytest.MonkeyPatch,
    make_app: AppFactory,
) -> None:
    from mailbot.judge import processes as judges
    from mailbot.sources.maildir import deliver

    if in_store:  # as for scans: the judging process leaves every file's bytes in the store
        monkeypatch.setattr(judges, "KEEP_IN_STORE", 0)

    values = settings_values(tmp_path, db_url)
    app = make_app(values)
    maildir = tmp_path / "Maildir"
    deliver(maildir, proposal("foxmail", files="misnamed"), july(20))
    deliver(maildir, proposal("foxmail", files="good"), july(21))
    deliver(
        maildir, proposal("coremail", "中国科学院微生物研究所", "李娜", files="no_pdf"), july(22)
    )
    deliver(
        maildir, proposal("coremail", "中国科学院微生物研究所", "李娜", files="pdf_only"), july(23)
    )
    Daemon(app).once()
    with app.db.transaction() as session:
        subs = {s.pi: s for s in session.scalars(select(Submission))}
        zhang, li = subs["张喆"], subs["李娜"]
        assert zhang.reference == "ANSO2021-0001"
        assert li.reference == "ANSO2021-0002"
        assert [(v.number, v.kind, v.status, v.superseded) for v in zhang.versions] == [
            (1, "new", "needs_correction", True),
            (2, "resubmission", "accepted", False),
        ]
        assert [(v.number, v.kind, v.status) for v in li.versions] == [
            (1, "new", "needs_correction"),
            (2, "completion", "accepted"),
        ]
        roles = {f["role"] for f in li.versions[1].files}
        assert roles == {"word", "pdf", "supporting"}
        assert (zhang.status, li.status) == ("accepted", "accepted")
    replies = sorted((tmp_path / "outbox").glob("*.eml"))
    assert len(replies) == 4
    completion = email.message_from_bytes(replies[-1].read_bytes(), policy=email.policy.default)
    body = completion.get_content()
    assert "ANSO2021-0002" in body
    assert "补" in body or "完整" in body or "complet" in body


def test_run_once_cli_and_the_secretariat_commands(
    imap_env: Dovecot, smtp_sink: SmtpSink, db_url: str, tmp_path: Path
) -> None:
    _fill(imap_env)
    config = tmp_path / "mailbot.toml"
    config.write_text(toml(settings_values(tmp_path, db_url, imap=imap_env, smtp=smtp_sink)))

    def mailbot(*args: str) -> Result:
        # The commands as the command line runs them, in this process: each closes its app.
        # The IMAP password comes from the environment, where imap_env put it.
        return CliRunner().invoke(main, ["--config", str(config), *args], catch_exceptions=False)

    not_ready = mailbot("run", "--once")
    assert not_ready.exit_code == 2
    assert "mailbot init" in not_ready.stderr
    assert mailbot("init").exit_code == 0
    once = mailbot("run", "--once")
    assert once.exit_code == 0, once.stderr
    assert f"{len(MIXED)} new" in once.stdout
    log = mailbot("log")
    assert log.exit_code == 0
    assert "ANSO2021-0001" in log.stdout
    assert "中国科学院植物研究所" in log.stdout
    assert "2 mails without a submission" in log.stdout
    show = mailbot("show", "ANSO2021-0002")
    assert show.exit_code == 0
    assert "attachment_name" in show.stdout
    assert "needs_correction" in show.stdout
    assert mailbot("show", "ANSO2021-9999").exit_code == 2
    for name in ("log.xlsx", "log.csv"):
        assert mailbot("export", str(tmp_path / name)).exit_code == 0
    from openpyxl import load_workbook

    sheet = load_workbook(tmp_path / "log.xlsx").active
    assert sheet is not None
    rows = list(sheet.iter_rows(values_only=True))
    assert len(rows) == 1 + 5
    assert rows[1][0] == "ANSO2021-0001"
    header = dict(zip(rows[0], rows[1], strict=True))
    assert header["项目名称 Title"] == "青藏高原作物耐旱基因资源挖掘与利用"
    assert header["资助领域 Focus area"] == "粮食安全 Food Security"
    assert header["申请经费（万元）Funding (10k CNY)"] == 120
    assert header["执行期限 Period"] == "2022-01–2024-12"
    assert header["合作单位 总/境外/ANSO Partners total/foreign/ANSO"] == "3/2/2"
    assert header["PDF 页数 PDF pages"] == 2
    shown = mailbot("show", "ANSO2021-0001").stdout
    assert "项目名称 Title:      青藏高原作物耐旱基因资源挖掘与利用" in shown
    assert "University of Nairobi (Kenya) ANSO" in shown
    assert (tmp_path / "log.csv").read_text(encoding="utf-8-sig").count("\n") == 6


def test_sigkill_mid_batch_loses_nothing_and_sends_nothing_twice(
    imap_env: Dovecot, smtp_sink: SmtpSink, db_url: str, tmp_path: Path, make_app: AppFactory
) -> None:
    total = 200
    message_ids = []
    for n in range(total):
        raw = proposal(
            ["outlook", "foxmail", "coremail", "gmail"][n % 4],
            f"中国科学院第{n}研究所",
            f"张{n}",
            files=["good", "good", "good", "misnamed"][n % 4],
        )
        imap_env.append("INBOX", raw, july(10 + n % 20, n % 24))
        message_ids.append(email.message_from_bytes(raw)["Message-ID"].strip())
    database = db_url
    values = settings_values(tmp_path, database, imap=imap_env, smtp=smtp_sink)
    # 200 applicants of one domain in one run: a backlog, which no hourly limit is for.
    values["replies"]["per_domain_hourly_limit"] = 0
    app = make_app(values)
    config = tmp_path / "mailbot.toml"
    config.write_text(toml(values))
    env = {PASSWORD_ENV: imap_env.password}

    def recorded() -> int:
        with app.db.transaction() as session:
            return session.scalar(select(func.count()).select_from(Mail)) or 0

    with daemon_process(config, env, tmp_path / "run1.log") as first:
        wait_until(lambda: recorded() >= 60, 120, "a third of the batch")
        first.process.send_signal(signal.SIGKILL)
        first.process.wait()
    killed_at = recorded()
    assert killed_at < total, "the batch finished before the kill: the test proves nothing"
    with daemon_process(config, env, tmp_path / "run2.log") as second:
        wait_until(lambda: recorded() == total, 180, "every mail recorded")
        with app.db.transaction() as session:

            def unsent() -> int:
                with app.db.transaction() as s:
                    return (
                        s.scalar(
                            select(func.count())
                            .select_from(Reply)
                            .where(Reply.state.in_(["pending", "sending", "handed"]))
                        )
                        or 0
                    )

            wait_until(lambda: unsent() == 0, 60, "the outbox to empty")
        second.process.send_signal(signal.SIGTERM)
        assert second.process.wait(timeout=30) == 0
        assert "stopped" in second.text()
    with app.db.transaction() as session:
        locations = session.scalars(select(Mail.location)).all()
        states = Counter(session.scalars(select(Reply.state)).all())
        uncertain = session.scalars(
            select(Mail.message_id).join(Reply.mail).where(Reply.state == "uncertain")
        ).all()
    assert len(locations) == len(set(locations)) == total
    delivered = Counter(m.message["In-Reply-To"].strip() for m in smtp_sink.messages)
    duplicates = sum(1 for c in delivered.values() if c > 1)
    print(
        f"\nkilled after {killed_at} of {total} mails; replies {dict(states)}; "
        f"delivered {len(delivered)}, duplicates {duplicates}"
    )
    # No reply reached the server twice.
    assert duplicates == 0
    # Only a kill between committing "handed" (just before the final dot) and
    # recording the server's 250 leaves a reply uncertain: the server may or may
    # not have it, and it is never sent again but listed for a person. Every
    # other mail's reply is at the server.
    assert states["uncertain"] <= 1
    missing = set(message_ids) - set(delivered)
    with app.db.transaction() as session:
        # What became of a mail whose reply never arrived: its status, its problems, its replies.
        fates = {
            mail.message_id: (mail.status, mail.problems, [r.state for r in mail.replies])
            for mail in session.scalars(select(Mail).where(Mail.message_id.in_(missing)))
        }
    assert missing <= set(uncertain), fates
    assert set(delivered) <= set(message_ids)
    assert states["sent"] + states["uncertain"] == total
    assert all(delivered[message_id] == 1 for message_id in uncertain)
    assert imap_env.list_uids("INBOX") == []


def test_dovecot_restart_during_idle(
    imap_env: Dovecot, smtp_sink: SmtpSink, db_url: str, tmp_path: Path, make_app: AppFactory
) -> None:
    values = settings_values(tmp_path, db_url, imap=imap_env, smtp=smtp_sink)
    values["source"]["poll_interval"] = (
        "60s"  # only IDLE or a reconnect can make it see mail in time
    )
    make_app(values)
    config = tmp_path / "mailbot.toml"
    config.write_text(toml(values))
    with daemon_process(config, {PASSWORD_ENV: imap_env.password}, tmp_path / "run.log") as daemon:
        imap_env.append("INBOX", proposal("outlook"), july(20))
        smtp_sink.wait_for(1, timeout=20)
        imap_env.restart()
        imap_env.append("INBOX", proposal("gmail", "中国科学院微生物研究所", "李娜"), july(21))
        smtp_sink.wait_for(2, timeout=40)
        log = daemon.text()
    assert log.count("cannot fetch mail") <= 1  # the outage is logged once
    assert "reachable again" in log or "cannot fetch mail" not in log
