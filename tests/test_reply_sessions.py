"""One SMTP session per outbox run: one connection, one EHLO and one login carry every reply.

Against the real aiosmtpd sink, which counts connections, EHLOs and logins:
a refusal of one reply keeps the session for the others, a connection the
server closed between two replies is opened again once (nothing sent twice),
and no run leaves a connection open behind it, in `run --once` as in the
daemon waiting in IDLE between mails.
"""

from __future__ import annotations

import logging
from collections import Counter
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from mailbot.calls import Call
from mailbot.replies.sender import SendReport, send_pending
from mailbot.replies.transports import SmtpTransport
from mailbot.service.daemon import Daemon
from mailbot.store.db import Database
from tests.daemon_support import (
    PASSWORD_ENV,
    SMTP_PASSWORD_ENV,
    daemon_process,
    july,
    proposal,
    settings_values,
    toml,
)
from tests.fixtures import AppFactory
from tests.servers.dovecot import Dovecot
from tests.servers.smtp import SmtpSink
from tests.test_replies import T0, Clock, parse, queue, replies, reply_settings, smtp_transport

TRANSPORT_LOG = "mailbot.replies.transports"
INSTITUTES = [
    ("中国科学院植物研究所", "张喆"),
    ("中国科学院微生物研究所", "李娜"),
    ("中国科学院大气物理研究所", "王堃"),
    ("中国科学院昆明动物研究所", "赵磊"),
]


def queue_many(db: Database, call: Call, sink: SmtpSink, n: int, **values: Any) -> list[str]:
    """Queue n replies to n applicants; their Message-IDs, in the order they are due."""
    settings = reply_settings(sink, **values)
    return [queue(db, call, settings, to=f"applicant{i}@example.org").message_id for i in range(n)]


def delivered(sink: SmtpSink) -> Counter[str]:
    """How often each Message-ID reached the sink."""
    return Counter(str(parse(m.data)["Message-ID"]) for m in sink.messages)


def test_a_run_of_replies_goes_out_over_one_connection_with_one_login(
    db: Database, call: Call, smtp_sink: SmtpSink
) -> None:
    sink = smtp_sink
    ids = queue_many(db, call, sink, 12)
    settings = reply_settings(sink)

    report = send_pending(db, smtp_transport(sink), settings, Clock(T0 + timedelta(seconds=1)))

    assert report == SendReport(sent=12)
    assert [str(parse(m.data)["Message-ID"]) for m in sink.wait_for(12)] == ids
    assert (sink.connections, sink.ehlos, sink.logins) == (1, 1, 1)
    assert {m.connection for m in sink.messages} == {1}
    # The run ends its session (QUIT): nothing is left open for a server to time out.
    sink.wait_closed()
    assert sink.open_connections == 0


@pytest.mark.parametrize(
    ("where", "answer"),
    [
        ("recipient", "550 5.1.1 <applicant2@example.org>: no such user"),
        ("message", "554 5.7.1 message refused by policy"),
        ("message", "451 4.3.0 try again later"),
    ],
    ids=["recipient-550", "message-554", "message-451"],
)
def test_a_refused_reply_backs_off_and_the_others_keep_the_session(
    db: Database, call: Call, smtp_sink: SmtpSink, where: str, answer: str
) -> None:
    sink = smtp_sink
    ids = queue_many(db, call, sink, 6, backoff_initial=30)
    settings = reply_settings(sink, backoff_initial=30)
    refusals = sink.refuse_recipients if where == "recipient" else sink.refuse_messages
    refusals["applicant2@example.org"] = answer
    clock = Clock()

    assert send_pending(db, smtp_transport(sink), settings, clock) == SendReport(sent=5, deferred=1)
    assert delivered(sink) == Counter(ids[:2] + ids[3:])
    assert (sink.connections, sink.logins) == (1, 1)
    refused = replies(db)[2]
    assert (refused.state, refused.attempts) == ("pending", 1)
    assert refused.next_attempt_at == T0 + timedelta(seconds=30)
    assert answer.split()[0] in (refused.last_error or "")

    # The server takes it at the next try after the backoff: once, in a session of its own.
    refusals.clear()
    clock.advance(30)
    assert send_pending(db, smtp_transport(sink), settings, clock) == SendReport(sent=1)
    assert delivered(sink) == Counter(ids)
    assert (sink.connections, sink.logins) == (2, 2)


def test_a_reply_over_the_servers_size_limit_waits_and_the_others_go(
    db: Database, call: Call
) -> None:
    with SmtpSink(size_limit=20_000) as sink:
        settings = reply_settings(sink, backoff_initial=30)
        ids = [
            queue(db, call, settings, to=f"applicant{i}@example.org").message_id for i in range(3)
        ]
        big = queue(db, call, settings, to="big@example.org", body="很长的信。\n" * 4000)
        ids += [queue(db, call, settings, to="last@example.org").message_id]

        # The server refuses the MAIL FROM of that one reply (552, its SIZE): the sender is fine.
        report = send_pending(db, smtp_transport(sink), settings, Clock())
        assert report == SendReport(sent=4, deferred=1)
        assert delivered(sink) == Counter(ids)
        assert (sink.connections, sink.logins) == (1, 1)
    (waiting,) = [r for r in replies(db) if r.id == big.id]
    assert (waiting.state, waiting.attempts) == ("pending", 1)
    assert (waiting.last_error or "").startswith("552")


@pytest.mark.parametrize("say_421", [False, True], ids=["closed-silently", "closed-with-421"])
def test_a_connection_the_server_closed_mid_run_is_opened_again_and_nothing_goes_twice(
    db: Database,
    call: Call,
    smtp_sink: SmtpSink,
    say_421: bool,
    caplog: pytest.LogCaptureFixture,
) -> None:
    sink = smtp_sink
    ids = queue_many(db, call, sink, 10)
    settings = reply_settings(sink)
    # Four messages a connection, then the server closes it, as after an idle timeout or
    # at a limit of messages per connection.
    sink.close_after, sink.say_421 = 4, say_421

    with caplog.at_level(logging.INFO, logger=TRANSPORT_LOG):
        report = send_pending(db, smtp_transport(sink), settings, Clock())

    assert report == SendReport(sent=10)
    assert delivered(sink) == Counter(ids)  # each once
    assert [m.connection for m in sink.messages] == [1] * 4 + [2] * 4 + [3] * 2
    assert (sink.connections, sink.logins) == (3, 3)
    assert [r.state for r in replies(db)] == ["sent"] * 10
    reopened = [
        r.getMessage() for r in caplog.records if "opening a new connection" in r.getMessage()
    ]
    assert len(reopened) == 2
    closed = "421 4.7.0 Too many messages" if say_421 else "broke off"
    assert all(closed in line for line in reopened), reopened
    sink.wait_closed()


def test_a_server_gone_between_two_replies_is_tried_once_more_then_the_rest_wait(
    db: Database, call: Call, smtp_sink: SmtpSink
) -> None:
    sink = smtp_sink
    ids = queue_many(db, call, sink, 5, backoff_initial=30)
    settings = reply_settings(sink, backoff_initial=30)

    class StopsTheServerAfterTwo(SmtpTransport):
        def send(self, raw: bytes, *args: Any, **kwargs: Any) -> None:
            super().send(raw, *args, **kwargs)
            if len(sink.messages) == 2:
                sink.stop()

    transport = StopsTheServerAfterTwo(settings.smtp, sink.password, local_hostname="localhost")
    clock = Clock()
    assert send_pending(db, transport, settings, clock) == SendReport(sent=2, deferred=3)
    assert delivered(sink) == Counter(ids[:2])
    waiting = replies(db)[2:]
    assert {(r.state, r.attempts) for r in waiting} == {("pending", 1)}
    assert "cannot reach the SMTP server" in (waiting[0].last_error or "")

    sink.start()
    clock.advance(30)
    assert send_pending(db, smtp_transport(sink), settings, clock) == SendReport(sent=3)
    assert delivered(sink) == Counter(ids)


def smtp_login(values: dict[str, Any], sink: SmtpSink) -> dict[str, Any]:
    """The settings with a login to the sink, so that its logins can be counted."""
    values["replies"]["smtp"] |= {"username": sink.user, "password_env": SMTP_PASSWORD_ENV}
    return values


def test_run_once_answers_every_mail_in_one_session(
    imap_env: Dovecot,
    smtp_sink: SmtpSink,
    tmp_path: Path,
    make_app: AppFactory,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv(SMTP_PASSWORD_ENV, smtp_sink.password)
    for day, (inst, pi) in enumerate(INSTITUTES, start=20):
        imap_env.append("INBOX", proposal("outlook", inst, pi), july(day))
    url = f"sqlite:///{tmp_path / 'mailbot.sqlite3'}"
    app = make_app(
        smtp_login(settings_values(tmp_path, url, imap=imap_env, smtp=smtp_sink), smtp_sink)
    )

    polled, sent = Daemon(app).once()

    assert (polled.new, sent.sent) == (len(INSTITUTES), len(INSTITUTES))
    received = smtp_sink.wait_for(len(INSTITUTES))
    assert {m.auth_user for m in received} == {smtp_sink.user}
    assert (smtp_sink.connections, smtp_sink.ehlos, smtp_sink.logins) == (1, 1, 1)
    smtp_sink.wait_closed()


def test_the_daemon_in_idle_closes_its_session_after_each_run(
    imap_env: Dovecot, smtp_sink: SmtpSink, tmp_path: Path, make_app: AppFactory
) -> None:
    url = f"sqlite:///{tmp_path / 'mailbot.sqlite3'}"
    values = smtp_login(settings_values(tmp_path, url, imap=imap_env, smtp=smtp_sink), smtp_sink)
    values["source"]["poll_interval"] = "10m"  # only IDLE makes it see a mail in time
    values["replies"]["send_interval"] = "10m"  # only a fetch's kick sends
    make_app(values)
    config = tmp_path / "mailbot.toml"
    config.write_text(toml(values))
    env = {PASSWORD_ENV: imap_env.password, SMTP_PASSWORD_ENV: smtp_sink.password}
    with daemon_process(config, env, tmp_path / "run.log"):
        for n, (inst, pi) in enumerate(INSTITUTES[:3], start=1):
            imap_env.append("INBOX", proposal("foxmail", inst, pi), july(19 + n))
            assert len(smtp_sink.wait_for(n, timeout=60)) == n
            # The run that sent it ended its session: no connection waits for the next mail.
            smtp_sink.wait_closed(timeout=30)
            assert smtp_sink.logins == smtp_sink.connections
    assert smtp_sink.connections == 3  # one session per run, one run per arriving mail
    assert set(delivered(smtp_sink).values()) == {1}
