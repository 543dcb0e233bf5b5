"""Duplicates and concurrency: a mail the mailbox got twice, two daemons on one mailbox,
several daemons for several mailboxes and calls on one PostgreSQL database."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from mailbot.cli.report import show
from mailbot.service.daemon import Daemon
from mailbot.sources.maildir import deliver
from mailbot.store.content import content_sha256
from mailbot.store.leases import Lease, LeaseHeld, LeaseLost, holder_name
from mailbot.store.models import Lease as LeaseRow
from mailbot.store.models import Mail, Reply
from tests.conftest import ROOT, RULES, write_rules
from tests.daemon_support import (
    PASSWORD_ENV,
    count_mails,
    daemon_process,
    july,
    message_id,
    proposal,
    settings_values,
    toml,
    unsent_replies,
    wait_until,
    with_trace,
)
from tests.fixtures import AppFactory
from tests.servers.dovecot import Dovecot
from tests.servers.smtp import SmtpSink

MAILBOX = "anso2021program@anso.org.cn"


def applicant(n: int, client: str = "outlook") -> bytes:
    return proposal(client, f"中国科学院第{n}研究所", f"王{n}")


# --------------------------------------------------------------------------- the content hash


def test_the_content_hash_leaves_out_the_trace_headers_and_nothing_else() -> None:
    raw = applicant(1)
    via_cc, via_alias = with_trace(raw, MAILBOX, "cc"), with_trace(raw, MAILBOX, "alias")
    assert len({raw, via_cc, via_alias}) == 3
    assert content_sha256(via_cc) == content_sha256(via_alias) == content_sha256(raw)
    # Line endings and the newlines at the very end are the transport's, not the sender's.
    assert content_sha256(raw.replace(b"\r\n", b"\n") + b"\n") == content_sha256(raw)
    # Whatever the sender wrote tells two mails apart.
    for changed in (
        raw.replace(b"Subject:", b"Subject: Re:", 1),
        raw.replace(b"Message-ID: <", b"Message-ID: <x", 1),
        raw.replace(b"Date:", b"Date: ", 1),
        raw[:-40] + b"A" * 40,
    ):
        assert changed != raw
        assert content_sha256(changed) != content_sha256(raw)
    assert content_sha256(applicant(2)) != content_sha256(raw)


# --------------------------------------------------------------------------- one mailbox


def test_a_mail_delivered_twice_is_recorded_once_and_answered_once(
    imap_env: Dovecot, smtp_sink: SmtpSink, db_url: str, tmp_path: Path, make_app: AppFactory
) -> None:
    again, cc, other = applicant(1), applicant(2, "foxmail"), applicant(3, "coremail")
    # The same bytes twice; one mail by way of the mailbox and of a cc address; another mail.
    copies = [again, again, with_trace(cc, MAILBOX, "inbox"), with_trace(cc, MAILBOX, "cc"), other]
    for raw in copies:
        imap_env.append("INBOX", raw, july(20))
    app = make_app(settings_values(tmp_path, db_url, imap=imap_env, smtp=smtp_sink))
    report, sent = Daemon(app).once()
    assert report.failed == 0
    assert report.duplicates == 1

    with app.db.transaction() as session:
        rows = session.scalars(select(Mail).order_by(Mail.id)).all()
        by_id = Counter(m.message_id for m in rows)
        # The same bytes again are the same delivery: its record moved, no second row.
        assert by_id == {message_id(again): 1, message_id(cc): 2, message_id(other): 1}
        first, second = [m for m in rows if m.message_id == message_id(cc)]
        assert (first.duplicate_of_id, second.duplicate_of_id) == (None, first.id)
        assert second.status == "ignored"
        assert second.submission_id is None
        assert [p["code"] for p in second.problems] == ["duplicate"]
        assert first.content_sha256 == second.content_sha256
        assert first.raw_sha256 != second.raw_sha256
        assert app.blobs.get(second.raw_sha256) == with_trace(cc, MAILBOX, "cc")
        assert first.submission is not None
        shown = show(session, app.call, first.submission.reference)
    assert f"Another copy: mail {second.id}" in shown

    delivered = Counter(m.message["In-Reply-To"].strip() for m in smtp_sink.wait_for(3))
    assert delivered == Counter([message_id(again), message_id(cc), message_id(other)])
    assert sent.sent == 3
    # Every copy left the inbox for its folder: none is left behind, none is lost.
    assert imap_env.list_uids("INBOX") == []
    filed = sum(
        len(imap_env.list_uids(folder)) for folder in ("mailbot.accepted", "mailbot.ignored")
    )
    assert filed == len(copies)

    # A third copy of a mail long answered, a day later: recorded, not answered.
    imap_env.append("INBOX", with_trace(cc, MAILBOX, "late"), july(21))
    report, sent = Daemon(app).once()
    assert (report.new, report.duplicates, sent.sent) == (1, 1, 0)
    time.sleep(0.5)
    assert len(smtp_sink.messages) == 3


def test_the_database_keeps_one_original_per_mail(
    tmp_path: Path, db_url: str, make_app: AppFactory
) -> None:
    """What settles two daemons racing on two copies: a second original cannot be written."""
    app = make_app(settings_values(tmp_path, db_url))

    def row(location: str, duplicate_of: int | None = None) -> Mail:
        return Mail(
            call_id=app.call.id,
            source="maildir:/x",
            folder="INBOX",
            location=location,
            raw_sha256="0" * 64,
            content_sha256="c" * 64,
            duplicate_of_id=duplicate_of,
            raw_size=1,
            received_at=july(20),
            status="accepted",
        )

    with app.db.transaction() as session:
        original = row("a")
        session.add(original)
        session.flush()
        session.add(row("b", duplicate_of=original.id))
    with pytest.raises(IntegrityError), app.db.transaction() as session:
        session.add(row("c"))


def test_two_mailboxes_of_one_call_racing_on_copies_answer_each_mail_once(
    tmp_path: Path, database_url: str, make_app: AppFactory
) -> None:
    """The applicant wrote to the call's mailbox and cc'd a second mailbox of the call,
    served by a second daemon: whichever records a mail first, the other's copy is
    its duplicate, and the applicant hears from the call once."""
    mails = [applicant(n, ["outlook", "gmail", "qqmail"][n % 3]) for n in range(8)]
    configs = []
    for name in ("main", "cc"):
        values = settings_values(tmp_path, database_url)
        values["source"]["maildir"]["path"] = str(tmp_path / name)
        for n, raw in enumerate(mails):
            deliver(tmp_path / name, with_trace(raw, MAILBOX, name), july(20, 9, n))
        config = tmp_path / f"{name}.toml"
        config.write_text(toml(values))
        configs.append(config)
    app = make_app(settings_values(tmp_path, database_url))
    runs = [
        subprocess.Popen(
            [sys.executable, "-m", "mailbot", "--config", str(c), "run", "--once"],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            cwd=ROOT,
        )
        for c in configs
    ]
    outputs = [run.communicate(timeout=120)[0].decode() for run in runs]
    assert [run.returncode for run in runs] == [0, 0], outputs
    Daemon(app).send()  # what was committed after the other's round of sending
    with app.db.transaction() as session:
        rows = session.scalars(select(Mail)).all()
        originals = Counter(m.message_id for m in rows if m.duplicate_of_id is None)
        copies = Counter(m.message_id for m in rows if m.duplicate_of_id is not None)
        replies = Counter(r.mail.message_id for r in session.scalars(select(Reply)) if r.mail)
    everyone = Counter(message_id(raw) for raw in mails)
    print(
        f"\ntwo mailboxes, one call: {sum(originals.values())} originals, "
        f"{sum(copies.values())} duplicates, {sum(replies.values())} replies"
    )
    assert originals == copies == replies == everyone
    written = Counter(p.name.split("-", 1)[1] for p in (tmp_path / "outbox").glob("*.eml"))
    assert sum(written.values()) == len(mails)


# --------------------------------------------------------------------------- leases


def test_a_second_daemon_on_the_same_mailbox_waits_and_takes_over(
    imap_env: Dovecot, smtp_sink: SmtpSink, tmp_path: Path, make_app: AppFactory
) -> None:
    values = settings_values(
        tmp_path, f"sqlite:///{tmp_path / 'db.sqlite3'}", imap=imap_env, smtp=smtp_sink
    )
    app = make_app(values)
    config = tmp_path / "mailbot.toml"
    config.write_text(toml(values))
    env = {PASSWORD_ENV: imap_env.password}
    batch = [applicant(n, ["outlook", "foxmail", "gmail", "coremail"][n % 4]) for n in range(12)]
    for raw in batch:
        imap_env.append("INBOX", raw, july(20))
    with (
        daemon_process(config, env, tmp_path / "first.log") as first,
        daemon_process(config, env, tmp_path / "second.log") as second,
    ):
        wait_until(
            lambda: count_mails(app) == len(batch) and unsent_replies(app) == 0,
            90,
            "the batch recorded and answered",
        )
        # One daemon did all the work; the other judged, recorded and sent nothing.
        working = [d for d in (first, second) if "mailbot.intake.record" in d.text()]
        assert len(working) == 1, "both daemons processed mail"
        serving = working[0]
        waiting = second if serving is first else first
        assert "is served by another mailbot" in waiting.text()
        assert "sent to" not in waiting.text()
        serving.process.send_signal(signal.SIGTERM)
        assert serving.process.wait(timeout=30) == 0
        wait_until(lambda: "took over the lease" in waiting.text(), 30, "the takeover")
        late = applicant(99)
        imap_env.append("INBOX", late, july(21))
        wait_until(
            lambda: count_mails(app) == len(batch) + 1 and unsent_replies(app) == 0,
            60,
            "the waiting daemon to serve the mailbox",
        )
    logs = first.text() + second.text()
    assert waiting.text().count("is served by another mailbot") == 1  # one line, then it waits
    assert "recorded elsewhere" not in logs
    assert "Traceback" not in logs
    delivered = Counter(m.message["In-Reply-To"].strip() for m in smtp_sink.messages)
    assert delivered == Counter(message_id(raw) for raw in [*batch, late])
    with app.db.transaction() as session:
        assert session.scalars(select(LeaseRow)).all() == []  # released on a clean exit


def test_run_once_refuses_a_mailbox_another_daemon_serves(
    tmp_path: Path, make_app: AppFactory
) -> None:
    app = make_app(settings_values(tmp_path, f"sqlite:///{tmp_path / 'db.sqlite3'}"))
    deliver(tmp_path / "Maildir", applicant(1), july(20))
    other = Lease(app.db, app.open_mailbox().name, "elsewhere pid 1 ns 1 #abcd")
    assert other.acquire()
    with pytest.raises(LeaseHeld, match="served by another mailbot, elsewhere pid 1"):
        Daemon(app).once()
    assert count_mails(app) == 0
    other.release()
    report, _ = Daemon(app).once()
    assert report.new == 1


class Clock:
    def __init__(self) -> None:
        self.moment = datetime(2021, 7, 20, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.moment


def test_a_lease_is_taken_over_when_it_runs_out_or_its_process_is_gone(
    tmp_path: Path, make_app: AppFactory
) -> None:
    app = make_app(settings_values(tmp_path, f"sqlite:///{tmp_path / 'db.sqlite3'}"))
    clock = Clock()
    elsewhere = Lease(app.db, "imap://a@b:993", "otherhost pid 7 ns 1 #aaaa", ttl=60, clock=clock)
    here = Lease(app.db, "imap://a@b:993", holder_name(), ttl=60, clock=clock)
    assert elsewhere.acquire()
    assert not here.acquire()
    assert "otherhost pid 7" in here.describe_other()
    clock.moment += timedelta(seconds=59)
    assert not here.acquire()
    assert elsewhere.renew()  # renewed: another 60 s
    clock.moment += timedelta(seconds=59)
    assert not here.acquire()
    clock.moment += timedelta(seconds=2)  # it died on its host: nothing renews it
    assert here.acquire()
    assert not elsewhere.renew()
    with pytest.raises(LeaseLost), app.db.transaction() as session:
        elsewhere.confirm(session)

    # A daemon of this host whose process is gone leaves its lease at once.
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    name = holder_name().split(" pid ")[0]
    namespace = holder_name().split(" ns ")[1].split(" #")[0]
    crashed = Lease(
        app.db, "maildir:/m", f"{name} pid {dead.pid} ns {namespace} #bbbb", clock=clock
    )
    assert crashed.acquire()
    alive = Lease(app.db, "maildir:/m", holder_name(), clock=clock)
    assert alive.acquire()  # the holder's process is gone: no need to wait 60 s
    assert not Lease(app.db, "maildir:/m", holder_name(), clock=clock).acquire()  # alive here


def test_several_daemons_serve_several_calls_on_postgresql(
    tmp_path: Path, database_url: str, make_app: AppFactory
) -> None:
    second_rules = write_rules(
        tmp_path,
        RULES.read_text(encoding="utf-8")
        .replace('id = "anso2021"', 'id = "anso2022"')
        .replace('reference_prefix = "ANSO2021"', 'reference_prefix = "ANSO2022"')
        .replace("anso2021program@", "anso2022program@"),
        "anso2022.toml",
    )
    daemons = []
    for call, rules in (("anso2021", RULES), ("anso2022", second_rules)):
        values = settings_values(tmp_path, database_url, rules=str(rules))
        values["source"]["maildir"]["path"] = str(tmp_path / call / "Maildir")
        values["replies"]["outbox_dir"] = str(tmp_path / call / "outbox")
        for n in range(4):
            deliver(tmp_path / call / "Maildir", applicant(n), july(20, 10, n))
        config = tmp_path / f"{call}-mailbot.toml"
        config.write_text(toml(values))
        daemons.append((call, make_app(values), config))
    apps = [app for _, app, _ in daemons]
    with (
        daemon_process(daemons[0][2], {}, tmp_path / "2021.log") as one,
        daemon_process(daemons[1][2], {}, tmp_path / "2022.log") as two,
    ):
        wait_until(
            lambda: count_mails(apps[0]) == 8 and unsent_replies(apps[0]) == 0,
            90,
            "both calls' mail recorded and answered",
        )
        with apps[0].db.transaction() as session:
            held = sorted(session.scalars(select(LeaseRow.source)))
    assert held == sorted(
        [f"maildir:{tmp_path / c / 'Maildir'}" for c in ("anso2021", "anso2022")]
        + ["outbox:anso2021", "outbox:anso2022"]
    )
    assert "served by another" not in one.text() + two.text()
    with apps[0].db.transaction() as session:
        calls = Counter(
            (m.call_id, m.source.rsplit("/", 2)[1]) for m in session.scalars(select(Mail))
        )
        references = sorted(r.subject for r in session.scalars(select(Reply)))
    assert calls == {("anso2021", "anso2021"): 4, ("anso2022", "anso2022"): 4}
    assert (
        sum("ANSO2021-" in s for s in references) == sum("ANSO2022-" in s for s in references) == 4
    )
    for call in ("anso2021", "anso2022"):
        # Each call's replies went out through its own daemon's transport.
        bodies = [p.read_bytes() for p in (tmp_path / call / "outbox").glob("*.eml")]
        assert len(bodies) == 4
        assert all(f"{call}program@".encode() in body for body in bodies)
