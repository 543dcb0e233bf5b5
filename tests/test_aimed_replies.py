"""Replies nobody can aim: the hourly limits per address and per domain, and no sender text.

A reply goes to Reply-To, else From, so a stranger can aim it at anyone. The
attacker here writes from ``victim+N@example.org`` variants and sets Reply-To
to third parties of that domain, with a subject and file names that carry
text of their choosing. Through ``mailbot run --once`` on a Maildir and on
Dovecot with an SMTP server, at most the configured number of replies reach
each address and the domain in the hour, none carries the attacker's text,
and each suppression is one log line and a count in the outbox line and in
the digest.
"""

from __future__ import annotations

import email
import email.policy
import io
import logging
import os
import subprocess
import sys
import zipfile
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from mailbot.calls import Call
from mailbot.config import ReplySettings
from mailbot.judge.verdict import AttachmentRole, Problem, Role, Severity, Status, Verdict
from mailbot.replies.digest import digest_context
from mailbot.replies.limits import normalised
from mailbot.replies.outbox import Outgoing, queue_reply
from mailbot.replies.render import Renderer, verdict_context
from mailbot.service.daemon import Daemon
from mailbot.sources.maildir import deliver
from mailbot.store.db import Database
from mailbot.store.models import Mail, Reply, Submission
from mailbot.web.letters import letter_context
from tests.conftest import ROOT
from tests.daemon_support import (
    INST,
    PASSWORD_ENV,
    PI,
    july,
    settings_values,
    toml,
)
from tests.docfactory import Form, form_docx
from tests.fixtures import AppFactory
from tests.mailfactory import build_mail
from tests.mailfactory.base import Att
from tests.mailfactory.documents import pdf_bytes
from tests.servers.dovecot import Dovecot
from tests.servers.smtp import SmtpSink

# What the attacker wants delivered; "Wire-USD" never appears in our own words.
PAYLOAD = "URGENT Wire-USD 5000 to evil.example today"
PER_ADDRESS = 5
PER_DOMAIN = 8
VICTIMS = 10  # mails from victim+N@example.org variants
THIRD_PARTIES = 6  # mails from evil.test with Reply-To: someone at example.org
SUPPRESSED = VICTIMS + THIRD_PARTIES - PER_DOMAIN
TEMPLATES = ROOT / "templates"


def _zip(name: str) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr(name, pdf_bytes())
    return buffer.getvalue()


def attack() -> Iterator[tuple[bytes, datetime]]:
    """The attacker's mails and the legitimate applicant's, a minute apart in July 2021."""
    files = [
        Att(f"{PAYLOAD}.docx", form_docx()),
        Att(f"{PAYLOAD} scan.pdf", pdf_bytes()),
        Att("材料.zip", _zip(f"{PAYLOAD} agreement.pdf")),
    ]
    minute = 0
    for n in range(VICTIMS):
        local = f"victim+{n}" if n % 2 else f"Victim+{n}"
        domain = "example.org" if n % 3 else "EXAMPLE.ORG"
        raw = build_mail(
            ["foxmail", "outlook", "gmail"][n % 3],
            subject=f"{PAYLOAD} #{n}",
            sender=("Victim", f"{local}@{domain}"),
            attachments=files,
        )
        yield raw, july(20, 10, minute)
        minute += 1
    for n in range(THIRD_PARTIES):
        raw = build_mail(
            ["coremail", "qqmail"][n % 2],
            subject=f"合作专项建议书：{PAYLOAD}",
            sender=("Mallory", f"mallory{n}@evil.test"),
            reply_to=f"third{n}@example.org",
            attachments=files,
        )
        yield raw, july(20, 10, minute)
        minute += 1
    # A secretary sends for the PI: the reply goes to the PI (Reply-To), as before.
    stem = f"{INST}+{PI}"
    good = [
        Att(f"{stem}.docx", form_docx(Form(institution=INST, pi=PI))),
        Att(f"{stem}.pdf", pdf_bytes(2)),
        Att("合作协议.pdf", pdf_bytes(1)),
    ]
    secretary = build_mail(
        "outlook",
        subject=f"合作专项建议书：{stem}",
        sender=("秘书", "mishu@ibcas.ac.cn"),
        reply_to="zhangzhe@ibcas.ac.cn",
        attachments=good,
    )
    yield secretary, july(20, 11)


@dataclass
class Outcome:
    stdout: str
    stderr: str
    replies: list[email.message.EmailMessage]


def _run_once(config: Path, env: dict[str, str]) -> tuple[str, str]:
    def mailbot(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "mailbot", "--config", str(config), *args],
            capture_output=True,
            text=True,
            env={**os.environ, **env},
            cwd=ROOT,
            timeout=300,
            check=False,
        )

    assert mailbot("init").returncode == 0
    once = mailbot("run", "--once")
    assert once.returncode == 0, once.stderr
    return once.stdout, once.stderr


def _limits() -> dict[str, int]:
    return {"per_sender_hourly_limit": PER_ADDRESS, "per_domain_hourly_limit": PER_DOMAIN}


def _text(letter: email.message.EmailMessage) -> str:
    body = letter.get_body(preferencelist=("plain",))
    assert body is not None
    headers = "\n".join(f"{k}: {v}" for k, v in letter.items())
    return headers + "\n" + str(body.get_content())


def _assert_unaimed(make_app: AppFactory, outcome: Outcome, values: dict[str, Any]) -> None:
    recipients = [normalised(str(r["To"].addresses[0].addr_spec)) for r in outcome.replies]
    per_address = Counter(recipients)
    per_domain = Counter(str(r).rpartition("@")[2] for r in recipients)
    assert per_domain["example.org"] == PER_DOMAIN
    assert max(n for a, n in per_address.items() if a != "zhangzhe@ibcas.ac.cn") <= PER_ADDRESS
    assert per_address["victim@example.org"] <= PER_ADDRESS
    assert per_address["zhangzhe@ibcas.ac.cn"] == 1  # the PI, by Reply-To; never the secretary
    assert "mishu@ibcas.ac.cn" not in per_address
    assert len(outcome.replies) == PER_DOMAIN + 1
    for letter in outcome.replies:
        text = _text(letter)
        assert "Wire-USD" not in text, text
        assert "evil.example" not in text, text
    # The secretariat still reads what was sent: the subject, in the judge's own words.
    app = make_app(values)
    with app.db.transaction() as session:
        stored = " ".join(str(m.problems) for m in session.scalars(select(Mail)))
        assert "Wire-USD" in stored
        held = list(session.scalars(select(Reply).where(Reply.state == "suppressed")))
        assert len(held) == SUPPRESSED
        assert all("replies in the hour" in (r.last_error or "") for r in held)
        digest = digest_context(
            session, app.call, since=None, now=datetime(2021, 7, 21, tzinfo=UTC)
        )
    assert digest["suppressed_replies"] == SUPPRESSED
    _subject, body = app.renderer.render("digest", digest)
    assert f"超出每小时限额而未发送的回复：{SUPPRESSED} 封" in body
    assert f"over the hourly limits: {SUPPRESSED};" in body
    # One log line per suppression, and the count in the outbox line.
    lines = [line for line in outcome.stderr.splitlines() if "reply is suppressed" in line]
    assert len(lines) == SUPPRESSED
    assert f"{SUPPRESSED} suppressed (over the hourly limits)" in outcome.stdout


@pytest.mark.slow  # `mailbot run --once` in its own process
def test_an_attacker_on_a_maildir_gets_no_more_than_the_limits_and_none_of_their_text(
    make_app: AppFactory, tmp_path: Path
) -> None:
    db_url = f"sqlite:///{tmp_path / 'mailbot.sqlite3'}"
    values = settings_values(tmp_path, db_url, replies=_limits())
    config = tmp_path / "mailbot.toml"
    config.write_text(toml(values), encoding="utf-8")
    for raw, when in attack():
        deliver(tmp_path / "Maildir", raw, when)
    stdout, stderr = _run_once(config, {})
    replies = [
        email.message_from_bytes(path.read_bytes(), policy=email.policy.default)
        for path in sorted((tmp_path / "outbox").glob("*.eml"))
    ]
    assert all(isinstance(r, email.message.EmailMessage) for r in replies)
    _assert_unaimed(make_app, Outcome(stdout, stderr, replies), values)


def test_an_attacker_on_dovecot_gets_no_more_than_the_limits_and_none_of_their_text(
    make_app: AppFactory, mailbox: Dovecot, smtp_sink: SmtpSink, tmp_path: Path
) -> None:
    db_url = f"sqlite:///{tmp_path / 'mailbot.sqlite3'}"
    values = settings_values(tmp_path, db_url, imap=mailbox, smtp=smtp_sink)
    values["replies"].update(_limits())
    config = tmp_path / "mailbot.toml"
    config.write_text(toml(values), encoding="utf-8")
    for raw, when in attack():
        mailbox.append("INBOX", raw, when)
    smtp_sink.clear()
    stdout, stderr = _run_once(config, {PASSWORD_ENV: mailbox.password})
    received = smtp_sink.messages
    # The envelope says the same as the To header: nothing else was delivered.
    assert sorted(r.rcpt_tos[0].lower() for r in received) == sorted(
        str(r.message["To"].addresses[0].addr_spec).lower() for r in received
    )
    _assert_unaimed(make_app, Outcome(stdout, stderr, [r.message for r in received]), values)


# ------------------------------------------------------------------ the limits, one by one

T0 = datetime(2021, 7, 20, 3, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("address", "expected"),
    [
        ("Victim+1@Example.ORG", "victim@example.org"),
        ("victim+a+b@example.org.", "victim@example.org"),
        ('"victim+x"@example.org', "victim@example.org"),
        ("张三@例子.中国", "张三@xn--fsqu00a.xn--fiqs8s"),
        ("zhang.san@ucas.ac.cn", "zhang.san@ucas.ac.cn"),
        ("not an address", None),
        ("+Tag@example.org", "+tag@example.org"),
        ("@example.org", None),
    ],
)
def test_addresses_count_normalised(address: str, expected: str | None) -> None:
    assert normalised(address) == expected


def _answer(
    db: Database, call: Call, settings: ReplySettings, sender: str, reply_to: str | None, at: int
) -> str:
    """Record a mail from ``sender`` and queue its answer (to Reply-To, else From): the state."""
    now = T0 + timedelta(minutes=at)
    with db.transaction() as session:
        mail = Mail(
            call_id=call.id,
            source="test",
            folder="INBOX",
            location=f"m{at}",
            raw_sha256=f"{at:064x}",
            content_sha256=f"{at:064x}",
            raw_size=1,
            sender=sender,
            sender_name="",
            reply_to=reply_to,
            subject="s",
            received_at=now,
            status="needs_correction",
        )
        session.add(mail)
        session.flush()
        reply = queue_reply(
            session,
            Outgoing(
                to_address=reply_to or sender,
                template="needs_correction",
                subject="s",
                body="b",
                mail_id=mail.id,
            ),
            settings=settings,
            call=call,
            now=now,
        )
        return str(reply.state)


def test_a_mail_counts_against_its_from_and_its_reply_to(db: Database, call: Call) -> None:
    settings = ReplySettings(per_sender_hourly_limit=2, per_domain_hourly_limit=0)
    # Two replies to the PI, aimed there by a stranger's Reply-To...
    assert _answer(db, call, settings, "a@evil.test", "pi@ucas.ac.cn", 0) == "pending"
    assert _answer(db, call, settings, "b@evil.test", "PI+x@ucas.ac.cn", 1) == "pending"
    # ...use up the PI's own hour: the limit counts the address, wherever the reply went.
    assert _answer(db, call, settings, "pi@ucas.ac.cn", None, 2) == "suppressed"
    # And a sender whose mails were answered at a Reply-To is counted too.
    assert _answer(db, call, settings, "c@evil.test", "x1@other.cn", 3) == "pending"
    assert _answer(db, call, settings, "c@evil.test", "x2@other.cn", 4) == "pending"
    assert _answer(db, call, settings, "c@evil.test", "x3@other.cn", 5) == "suppressed"
    # An hour after the first, there is room again.
    assert _answer(db, call, settings, "pi@ucas.ac.cn", None, 61) == "pending"


def test_the_domain_limit_counts_every_address_of_a_domain(db: Database, call: Call) -> None:
    settings = ReplySettings(per_sender_hourly_limit=0, per_domain_hourly_limit=3)
    states = [_answer(db, call, settings, f"p{n}@ucas.ac.cn", None, n) for n in range(5)]
    assert states == ["pending"] * 3 + ["suppressed"] * 2
    assert _answer(db, call, settings, "p9@lzu.edu.cn", None, 6) == "pending"
    with db.transaction() as session:
        last = session.scalars(select(Reply).order_by(Reply.id.desc())).first()
        held = session.scalars(select(Reply).where(Reply.state == "suppressed")).first()
        assert last is not None
        assert held is not None
        assert "the domain ucas.ac.cn already had 3 replies" in (held.last_error or "")
        assert "replies.per_domain_hourly_limit" in (held.last_error or "")


# ------------------------------------------------------------- what a letter shows of the sender


def test_a_letter_shows_institution_and_pi_cut_and_without_hidden_characters(call: Call) -> None:
    institution = "中国科学院\u202e植物研究所" + "X" * 300
    verdict = Verdict(
        Status.ACCEPTED,
        T0,
        institution,
        "张\u200b三\x1b",
        (
            Problem(
                "attachment_name_suffix",
                Severity.WARNING,
                f"quoted {PAYLOAD}",
                "quoted",
                letter=("我们的话", "our words"),
            ),
        ),
        (AttachmentRole(f"{PAYLOAD}.pdf", Role.SUPPORTING, 10, "ab" * 32),),
    )
    context = verdict_context(call, verdict)
    context.update(
        reference="ANSO2021-0001",
        version=1,
        kind="new",
        replaces_version=None,
        files_on_record=context["files"],
    )
    _subject, body = Renderer(TEMPLATES).render("accepted", context)
    assert "\u202e" not in body
    assert "\u200b" not in body
    assert "\x1b" not in body
    assert "X" * 100 not in body
    assert "…" in body
    assert "张三 您好" in body
    assert "Dear 张三," in body
    assert "Wire-USD" not in body
    assert "our words" in body
    assert "我们的话" in body
    assert "PDF 文件（文件名不在回复中重复）" in body
    assert "a PDF file (its name is not repeated in replies)" in body


def test_the_desks_reminder_draft_uses_the_letter_words_stored_with_the_mail(
    make_app: AppFactory,
    tmp_path: Path,
) -> None:
    app = make_app(settings_values(tmp_path, f"sqlite:///{tmp_path / 'mailbot.sqlite3'}"))
    misnamed = [Att(f"{PAYLOAD}.docx", form_docx()), Att(f"{PAYLOAD}.pdf", pdf_bytes())]
    raw = build_mail("foxmail", subject=f"合作专项建议书：{INST}+{PI}", attachments=misnamed)
    deliver(tmp_path / "Maildir", raw, july(20))
    Daemon(app).once()
    with app.db.transaction() as session:
        submission = session.scalars(select(Submission)).one()
        context = letter_context(app, submission)
        stored = str(session.scalars(select(Mail)).one().problems)
    assert "Wire-USD" in stored  # the judge's words keep the names, for the secretariat
    words = " ".join(p["zh"] + p["en"] for p in context["problems"])
    assert "attachment_name" in [p["code"] for p in context["problems"]]
    assert "Wire-USD" not in words
    assert f"「{INST}+{PI}.docx」" in words


def test_a_suppressed_digest_is_logged_and_counted_in_the_next_outbox_line(
    make_app: AppFactory, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    values = settings_values(
        tmp_path,
        f"sqlite:///{tmp_path / 'mailbot.sqlite3'}",
        replies={"per_domain_hourly_limit": 1},
        digest={"to": ["a@anso.org.cn", "b@anso.org.cn"]},
    )
    daemon = Daemon(make_app(values))
    assert daemon.outbox.acquire()  # the daemon that sends the call's replies writes its digest
    with caplog.at_level(logging.WARNING, logger="mailbot.service.daemon"):
        daemon._digest_job()
    lines = [r.getMessage() for r in caplog.records if "digest is suppressed" in r.getMessage()]
    assert len(lines) == 1
    assert "the domain anso.org.cn already had 1 replies" in lines[0]
    report = daemon.send()
    assert (report.sent, report.suppressed) == (1, 1)
    assert str(report).endswith("1 suppressed (over the hourly limits)")
    assert daemon.send().suppressed == 0  # told once
