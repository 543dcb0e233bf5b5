"""Integration tests proving the real-server helpers in tests/servers/ work."""

from __future__ import annotations

import smtplib
import socket
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pytest
import sqlalchemy as sa
from imapclient.exceptions import (  # type: ignore[import-untyped]
    IMAPClientAbortError,
    LoginError,
)

from tests.servers import common
from tests.servers import postgres as postgres_module
from tests.servers.common import MissingDependencyError
from tests.servers.dovecot import Dovecot
from tests.servers.postgres import Postgres
from tests.servers.smtp import SmtpSink

CEST = timezone(timedelta(hours=2))

# Receipt times in July 2021, deliberately in a non-UTC zone and out of order.
RECEIPT_TIMES = [
    datetime(2021, 7, 14, 9, 30, 0, tzinfo=CEST),
    datetime(2021, 7, 1, 23, 59, 59, tzinfo=UTC),
    datetime(2021, 7, 31, 0, 0, 1, tzinfo=CEST),
]


def make_mail(n: int) -> bytes:
    # CRLF line ends, as on the wire, so BODY[] must return the bytes unchanged.
    return (
        f"From: sender{n}@example.invalid\r\n"
        f"To: mailbot@example.invalid\r\n"
        f"Subject: test mail {n}\r\n"
        f"Message-ID: <test-{n}@example.invalid>\r\n"
        f"Date: Wed, 14 Jul 2021 09:30:00 +0200\r\n"
        f"\r\n"
        f"Body of mail {n}.\r\n"
    ).encode()


def connection_refused(host: str, port: int) -> bool:
    try:
        socket.create_connection((host, port), timeout=2).close()
    except ConnectionRefusedError:
        return True
    return False


# ---------------------------------------------------------------------- Dovecot


def test_dovecot_append_keeps_internaldate_bytes_and_unseen(mailbox: Dovecot) -> None:
    mails = [make_mail(n) for n in range(3)]
    uids = [
        mailbox.append("INBOX", raw, when) for raw, when in zip(mails, RECEIPT_TIMES, strict=True)
    ]

    assert mailbox.list_uids("INBOX") == uids
    assert mailbox.fetch_all("INBOX") == mails
    with mailbox.client() as client:
        # Read-write select: a read-only one could not set \Seen, proving nothing.
        client.select_folder("INBOX")
        data = client.fetch(uids, ["BODY.PEEK[]", "INTERNALDATE", "FLAGS"])
        after = client.fetch(uids, ["FLAGS"])
    for uid, raw, when in zip(uids, mails, RECEIPT_TIMES, strict=True):
        assert data[uid][b"BODY[]"] == raw
        assert data[uid][b"INTERNALDATE"] == when
        assert data[uid][b"INTERNALDATE"].tzinfo is not None
        assert b"\\Seen" not in data[uid][b"FLAGS"]
        assert b"\\Seen" not in after[uid][b"FLAGS"]


def test_dovecot_append_with_flags(mailbox: Dovecot) -> None:
    mailbox.create_folder("Archive")
    mailbox.create_folder("Archive")  # idempotent
    uid = mailbox.append("Archive", make_mail(1), RECEIPT_TIMES[0], flags=["\\Seen"])
    with mailbox.client() as client:
        client.select_folder("Archive", readonly=True)
        assert b"\\Seen" in client.get_flags([uid])[uid]


def test_dovecot_capabilities_idle_and_move(mailbox: Dovecot) -> None:
    mailbox.create_folder("Processed")
    uid = mailbox.append("INBOX", make_mail(1), RECEIPT_TIMES[0])
    with mailbox.client() as client:
        capabilities = set(client.capabilities())
        assert {b"IDLE", b"MOVE", b"UIDPLUS"} <= capabilities

        client.select_folder("INBOX")
        client.move([uid], "Processed")
        assert client.search("ALL") == []

        client.idle()
        try:
            mailbox.append("INBOX", make_mail(2), RECEIPT_TIMES[1])
            responses = client.idle_check(timeout=5)
        finally:
            client.idle_done()
        assert any(r[1] == b"EXISTS" for r in responses), responses
    assert len(mailbox.list_uids("Processed")) == 1


def test_dovecot_rejects_wrong_password(dovecot: Dovecot) -> None:
    dovecot.password, real = "wrong-" + dovecot.password, dovecot.password
    try:
        with pytest.raises(LoginError):
            dovecot.client()
    finally:
        dovecot.password = real


def test_dovecot_restart_keeps_port_and_mail(mailbox: Dovecot) -> None:
    port = mailbox.port
    mailbox.append("INBOX", make_mail(1), RECEIPT_TIMES[0])
    stale = mailbox.client()
    try:
        mailbox.restart()
        # The restart must really drop sessions, as a crashing server would.
        with pytest.raises((IMAPClientAbortError, OSError)):
            stale.noop()
    finally:
        stale.shutdown()

    assert mailbox.port == port
    with mailbox.client() as client:
        client.noop()
    assert mailbox.fetch_all("INBOX") == [make_mail(1)]


# ------------------------------------------------------------------------- SMTP


def send(sink: SmtpSink, body: str, *, login: bool = False) -> None:
    # local_hostname avoids smtplib's socket.getfqdn(), a DNS lookup off-host.
    with smtplib.SMTP(sink.host, sink.port, local_hostname="localhost", timeout=5) as smtp:
        if login:
            smtp.login(sink.user, sink.password)
        smtp.sendmail(
            "bot@example.invalid",
            ["a@example.invalid", "b@example.invalid"],
            f"Subject: hi\r\n\r\n{body}\r\n",
        )


def test_smtp_sink_receives(smtp_sink: SmtpSink) -> None:
    send(smtp_sink, "first")
    send(smtp_sink, "second", login=True)

    first, second = smtp_sink.wait_for(2, timeout=5)
    assert first.mail_from == "bot@example.invalid"
    assert first.rcpt_tos == ("a@example.invalid", "b@example.invalid")
    assert first.data == b"Subject: hi\r\n\r\nfirst\r\n"
    assert first.auth_user is None
    assert second.message["Subject"] == "hi"
    assert second.auth_user == smtp_sink.user


def test_smtp_sink_rejects_wrong_login(smtp_sink: SmtpSink) -> None:
    with (
        smtplib.SMTP(smtp_sink.host, smtp_sink.port, local_hostname="localhost", timeout=5) as smtp,
        pytest.raises(smtplib.SMTPAuthenticationError),
    ):
        smtp.login(smtp_sink.user, "wrong")


def test_smtp_sink_stop_refuses_and_restart_reuses_port(smtp_sink: SmtpSink) -> None:
    port = smtp_sink.port
    send(smtp_sink, "before")
    smtp_sink.stop()

    assert connection_refused(smtp_sink.host, port)
    with pytest.raises(ConnectionRefusedError):
        send(smtp_sink, "while stopped")

    smtp_sink.start()
    assert smtp_sink.port == port
    send(smtp_sink, "after")
    assert [m.data for m in smtp_sink.wait_for(2)] == [
        b"Subject: hi\r\n\r\nbefore\r\n",
        b"Subject: hi\r\n\r\nafter\r\n",
    ]

    smtp_sink.restart()
    send(smtp_sink, "after restart")
    assert len(smtp_sink.wait_for(3)) == 3


def test_smtp_sink_wait_for_times_out(smtp_sink: SmtpSink) -> None:
    with pytest.raises(TimeoutError):
        smtp_sink.wait_for(1, timeout=0.1)


# ------------------------------------------------------------------- PostgreSQL


def test_postgres_roundtrip(database_url: str) -> None:
    assert database_url.startswith("postgresql+psycopg://mailbot:")
    metadata = sa.MetaData()
    mails = sa.Table(
        "mails",
        metadata,
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("subject", sa.Text, nullable=False),
        sa.Column("received", sa.DateTime(timezone=True), nullable=False),
    )
    engine = sa.create_engine(database_url)
    try:
        metadata.create_all(engine)
        with engine.begin() as conn:
            conn.execute(
                mails.insert(),
                [{"subject": f"mail {n}", "received": t} for n, t in enumerate(RECEIPT_TIMES)],
            )
        with engine.connect() as conn:
            rows = conn.execute(sa.select(mails.c.subject, mails.c.received).order_by(mails.c.id))
            assert [(s, r) for s, r in rows] == [
                (f"mail {n}", t) for n, t in enumerate(RECEIPT_TIMES)
            ]
    finally:
        engine.dispose()


def test_postgres_databases_are_isolated(postgres: Postgres) -> None:
    first, second = postgres.create_database(), postgres.create_database()
    assert first != second
    engine_a, engine_b = sa.create_engine(first), sa.create_engine(second)
    try:
        with engine_a.begin() as conn:
            conn.execute(sa.text("CREATE TABLE only_here (x int)"))
        assert sa.inspect(engine_b).get_table_names() == []
    finally:
        engine_a.dispose()
        engine_b.dispose()


def test_postgres_default_database(postgres: Postgres) -> None:
    engine = sa.create_engine(postgres.url)
    try:
        with engine.connect() as conn:
            assert conn.execute(sa.text("SELECT current_user, current_database()")).one() == (
                postgres.user,
                postgres.dbname,
            )
    finally:
        engine.dispose()


# ------------------------------------------------------------ missing binaries


def test_missing_dovecot_names_debian_package(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(common, "SEARCH_PATH", str(tmp_path))
    with pytest.raises(MissingDependencyError, match="dovecot-imapd"):
        Dovecot()


def test_missing_postgres_names_debian_package(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(common, "SEARCH_PATH", str(tmp_path))
    monkeypatch.setattr(postgres_module, "PG_BINDIR_GLOB", str(tmp_path / "*" / "bin"))
    with pytest.raises(MissingDependencyError, match="'postgresql'"):
        Postgres()


def test_postgres_restart_keeps_data(postgres: Postgres, database_url: str) -> None:
    engine = sa.create_engine(database_url)
    try:
        with engine.begin() as conn:
            conn.execute(sa.text("CREATE TABLE survivors (x int)"))
            conn.execute(sa.text("INSERT INTO survivors VALUES (42)"))
        postgres.restart()
        # The pool still holds connections the restart killed; start afresh.
        engine.dispose()
        with engine.connect() as conn:
            assert conn.execute(sa.text("SELECT x FROM survivors")).scalar_one() == 42
    finally:
        engine.dispose()
