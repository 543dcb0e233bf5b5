"""Bounces of our own replies: the reply is marked bounced, and the secretariat is told."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import select

from mailbot.app import App
from mailbot.cli.report import show
from mailbot.replies.digest import digest_context
from mailbot.service.daemon import Daemon
from mailbot.sources.maildir import deliver
from mailbot.store.models import Mail, Reply
from tests.daemon_support import july, proposal, settings_values
from tests.fixtures import AppFactory

# Every test here runs the whole pipeline twice.
pytestmark = pytest.mark.slow

MAILBOX = "anso2021program@anso.org.cn"


def dsn(reply: Reply, quoting: str, action: str = "failed") -> bytes:
    """A bounce as Postfix (text/rfc822-headers), Exchange (message/rfc822), qmail (the
    headers quoted in plain text) or a terse server (the address alone) writes it."""
    status = "4.4.1" if action == "delayed" else "5.1.1"
    diagnostic = (
        f"smtp; 550 5.1.1 <{reply.to_address}>: Recipient address\n"
        "    rejected: User unknown in local recipient table"
    )
    quoted_headers = (
        f"From: ANSO Secretariat <{MAILBOX}>\nTo: {reply.to_address}\n"
        f"Subject: {reply.subject.encode('ascii', 'replace').decode()}\n"
        f"Message-ID: {reply.message_id}\n"
        "References: <mailbot.ffffffffffffffffffffffffffffffff@anso.org.cn> <a@b>\n"
    )
    head = (
        "Return-Path: <>\n"
        "From: Mail Delivery System <MAILER-DAEMON@mx.example.ac.cn>\n"
        f"To: {MAILBOX}\n"
        "Subject: Undelivered Mail Returned to Sender\n"
        "Message-ID: <bounce.%s@mx.example.ac.cn>\n"
        "Date: Tue, 20 Jul 2021 12:00:00 +0800\n"
        "MIME-Version: 1.0\n" % quoting
    )
    if quoting == "qmail":
        return (
            head.replace("Undelivered Mail Returned to Sender", "failure notice")
            + "Content-Type: text/plain\n\n"
            + f"Hi. This is the qmail-send program at mx.example.ac.cn.\n\n<{reply.to_address}>:\n"
            + "Sorry, no mailbox here by that name. (#5.1.1)\n\n"
            + "--- Below this line is a copy of the message.\n\n"
            + quoted_headers
            + "\nbody\n"
        ).encode()
    parts = [
        "Content-Type: text/plain; charset=us-ascii\n\n"
        "This is the mail system at host mx.example.ac.cn. Your message could not be delivered.\n",
        "Content-Type: message/delivery-status\n\n"
        "Reporting-MTA: dns; mx.example.ac.cn\n\n"
        f"Final-Recipient: rfc822; {reply.to_address}\n"
        f"Original-Recipient: rfc822;{reply.to_address}\n"
        f"Action: {action}\nStatus: {status}\nDiagnostic-Code: {diagnostic}\n",
    ]
    if quoting == "headers":
        parts.append("Content-Type: text/rfc822-headers\n\n" + quoted_headers)
    elif quoting == "message":
        parts.append("Content-Type: message/rfc822\n\n" + quoted_headers + "\nbody\n")
    body = "".join(f"--BB\n{part}\n" for part in parts) + "--BB--\n"
    return (
        head
        + 'Content-Type: multipart/report; report-type=delivery-status; boundary="BB"\n\n'
        + body
    ).encode()


def answered(make_app: AppFactory, tmp_path: Path) -> tuple[App, Reply]:
    app = make_app(settings_values(tmp_path, f"sqlite:///{tmp_path / 'db.sqlite3'}"))
    deliver(tmp_path / "Maildir", proposal("outlook"), july(20))
    _, sent = Daemon(app).once()
    assert sent.sent == 1
    with app.db.transaction() as session:
        reply = session.scalars(select(Reply)).one()
    return app, reply


@pytest.mark.parametrize("quoting", ["headers", "message", "qmail", "address"])
def test_a_bounce_of_our_reply_marks_it_bounced(
    tmp_path: Path, quoting: str, make_app: AppFactory
) -> None:
    app, reply = answered(make_app, tmp_path)
    deliver(tmp_path / "Maildir", dsn(reply, quoting), july(20, 12))
    report, sent = Daemon(app).once()
    assert (report.new, sent.sent) == (1, 0)  # the bounce is recorded and never answered
    with app.db.transaction() as session:
        bounce = session.scalars(select(Mail).order_by(Mail.id.desc())).first()
        assert bounce is not None
        assert bounce.status == "ignored"
        assert "bounce" in [p["code"] for p in bounce.problems]
        again = session.get_one(Reply, reply.id)
        assert again.state == "bounced"
        assert again.last_error is not None
        assert f"mail {bounce.id}" in again.last_error
        assert "5.1.1" in again.last_error
        if quoting != "qmail":
            assert "User unknown" in again.last_error
        assert again.mail is not None
        assert again.mail.submission is not None
        shown = show(session, app.call, again.mail.submission.reference)
        digest = digest_context(session, app.call, since=None, now=datetime.now(UTC))
    assert "Bounced replies" in shown
    assert reply.to_address in shown
    assert [r["state"] for r in digest["troubled_replies"]] == ["bounced"]
    _, body = app.renderer.render("digest", digest)
    assert "bounced: reach the applicant another way" in body
    assert "被退信" in body
    assert len(list((tmp_path / "outbox").glob("*.eml"))) == 1


def test_a_delay_notice_marks_nothing(tmp_path: Path, make_app: AppFactory) -> None:
    app, reply = answered(make_app, tmp_path)
    deliver(tmp_path / "Maildir", dsn(reply, "headers", action="delayed"), july(20, 12))
    Daemon(app).once()
    with app.db.transaction() as session:
        assert session.get_one(Reply, reply.id).state == "sent"
