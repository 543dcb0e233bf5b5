"""The reply side: templates, the outbox's MIME messages and limits, sending to a real SMTP server."""

from __future__ import annotations

import email
import email.message
import email.policy
import logging
import sqlite3
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy import select

from mailbot.calls import Call
from mailbot.config import ReplySettings, SmtpSettings
from mailbot.judge.verdict import AttachmentRole, Problem, Role, Severity, Status, Verdict
from mailbot.replies.digest import digest_context, queue_digest
from mailbot.replies.outbox import Outgoing, ReplyError, queue_reply
from mailbot.replies.render import Renderer, RenderError, verdict_context
from mailbot.replies.sender import SendReport, recover_interrupted, send_pending
from mailbot.replies.transports import (
    OutboxDirTransport,
    SmtpTransport,
    TransportError,
    TransportUnavailable,
    smtp_data,
)
from mailbot.store.db import Database
from mailbot.store.models import Mail, Reply, Submission, Version
from tests.servers.smtp import SmtpSink

T0 = datetime(2021, 7, 20, 3, 0, 0, tzinfo=UTC)  # 11:00 Beijing time
INSTITUTION = "中国科学院大学"
PI = "张三"
APPLICANT = "zhangsan@ucas.ac.cn"
THEIR_ID = "<20210720110000.abc123@ucas.ac.cn>"
THEIR_REFERENCES = ("<first.0001@ucas.ac.cn>",)
WORD_SHA = "3f" * 32
PDF_SHA = "a7" * 32
SENDER_LOG = "mailbot.replies.sender"
ROOT = Path(__file__).resolve().parents[1]


class Clock:
    """The `now` callable send_pending takes, advanced by hand instead of sleeping."""

    def __init__(self, start: datetime = T0) -> None:
        self.moment = start

    def __call__(self) -> datetime:
        return self.moment

    def advance(self, seconds: float) -> None:
        self.moment += timedelta(seconds=seconds)


@pytest.fixture
def renderer() -> Renderer:
    return Renderer(ROOT / "templates")


@pytest.fixture
def sink(smtp_sink: SmtpSink) -> SmtpSink:
    return smtp_sink


def reply_settings(sink: SmtpSink | None = None, **values: Any) -> ReplySettings:
    smtp = SmtpSettings()
    if sink is not None:
        # The sink offers AUTH without TLS; logging in proves the credentials are used.
        smtp = SmtpSettings(host=sink.host, port=sink.port, security="plain", username=sink.user)
    return ReplySettings(smtp=smtp, **values)


def smtp_transport(sink: SmtpSink) -> SmtpTransport:
    settings = reply_settings(sink).smtp
    return SmtpTransport(settings, sink.password, local_hostname="localhost")


def verdict(status: Status, problems: tuple[Problem, ...] = ()) -> Verdict:
    return Verdict(
        status=status,
        received_at=T0,
        institution=INSTITUTION,
        pi=PI,
        problems=problems,
        attachments=(
            AttachmentRole(f"{INSTITUTION}+{PI}.docx", Role.WORD, 48213, WORD_SHA),
            AttachmentRole(f"{INSTITUTION}+{PI}.pdf", Role.PDF, 1203877, PDF_SHA),
        ),
    )


SUPPORTING_MISSING = Problem(
    "supporting_material_missing",
    Severity.WARNING,
    "未见合作协议或外方参与证明（承诺函、往来邮件等）附件；如已包含在 PDF 中可忽略。",
    "No cooperation agreement or proof of the foreign partners' participation is attached.",
)
MISSING_PDF = Problem(
    "missing_pdf",
    Severity.ERROR,
    f"缺少签字盖章的 PDF 扫描件（.pdf 格式），请附上「{INSTITUTION}+{PI}.pdf」。",
    f'The signed and stamped PDF scan (.pdf) is missing: please attach "{INSTITUTION}+{PI}.pdf".',
)


def accepted_context(call: Call, kind: str = "new") -> dict[str, Any]:
    context = verdict_context(call, verdict(Status.ACCEPTED, (SUPPORTING_MISSING,)))
    return {
        **context,
        "reference": "ANSO2021-0007",
        "version": 2 if kind != "new" else 1,
        "kind": kind,
        "replaces_version": 1 if kind == "resubmission" else None,
        "files_on_record": context["files"],
    }


def add_mail(db: Database, n: int = 1, **values: Any) -> list[int]:
    with db.transaction() as session:
        mails = [
            Mail(
                call_id="anso2021",
                source="test",
                folder="INBOX",
                location=f"1:{i}:{values.get('status', 'accepted')}",
                message_id=f"<mail{i}@example.org>",
                raw_sha256="0" * 64,
                raw_size=100,
                received_at=T0,
                **{"status": "accepted", **values},
            )
            for i in range(n)
        ]
        session.add_all(mails)
        session.flush()
        return [mail.id for mail in mails]


def queue(
    db: Database,
    call: Call,
    settings: ReplySettings,
    *,
    to: str = APPLICANT,
    now: datetime = T0,
    mail_id: int | None = None,
    subject: str = "已受理 / Received",
    body: str = "您好，已受理。\n\nDear applicant, received.\n",
) -> Reply:
    with db.transaction() as session:
        return queue_reply(
            session,
            Outgoing(
                to_address=to,
                template="accepted",
                subject=subject,
                body=body,
                in_reply_to=THEIR_ID,
                references=THEIR_REFERENCES,
                mail_id=mail_id,
            ),
            settings=settings,
            call=call,
            now=now,
        )


def replies(db: Database) -> list[Reply]:
    with db.transaction() as session:
        return list(session.scalars(select(Reply).order_by(Reply.id)))


def parse(raw: bytes) -> email.message.EmailMessage:
    message = email.message_from_bytes(raw, policy=email.policy.default)
    assert isinstance(message, email.message.EmailMessage)
    return message


# --------------------------------------------------------------------------- rendering


def test_accepted_lists_files_sizes_hashes_and_warnings_chinese_first(
    call: Call, renderer: Renderer
) -> None:
    subject, body = renderer.render("accepted", accepted_context(call))

    zh_subject, en_subject = subject.split(" / ")
    assert "ANSO2021-0007" in zh_subject
    assert "已受理" in zh_subject
    assert "ANSO2021-0007" in en_subject
    assert "Received" in en_subject
    assert "\n" not in subject
    assert "\r" not in subject
    for text in (f"{INSTITUTION}+{PI}.docx", "48213", WORD_SHA, "1203877", PDF_SHA):
        assert body.count(text) == 2  # once in Chinese, once in English
    assert "2021-07-20 11:00:00（北京时间）" in body
    assert "2021-07-20 11:00:00 (Beijing time)" in body
    assert SUPPORTING_MISSING.zh in body
    assert SUPPORTING_MISSING.en in body
    assert body.index("受理编号") < body.index("-" * 72) < body.index("Reference number")
    assert "replaces version" not in body
    assert "completes" not in body
    assert "it replaces this one and keeps the reference number ANSO2021-0007" in body


def test_accepted_says_what_a_resubmission_replaces_and_a_completion_holds(
    call: Call, renderer: Renderer
) -> None:
    _, resubmission = renderer.render("accepted", accepted_context(call, "resubmission"))
    assert "this version replaces version 1" in resubmission
    assert "取代第 1 版" in resubmission

    _, completion = renderer.render("accepted", accepted_context(call, "completion"))
    assert "this mail completes your earlier submission" in completion.lower()
    assert "目前登记在案的文件" in completion


def test_needs_correction_names_the_exact_subject_and_files(call: Call, renderer: Renderer) -> None:
    context = verdict_context(call, verdict(Status.NEEDS_CORRECTION, (MISSING_PDF,)))
    subject, body = renderer.render("needs_correction", context)

    assert "\n" not in subject
    assert subject.index("请") < subject.index("Please")
    assert f"合作专项建议书：{INSTITUTION}+{PI}" in body
    assert body.count(f"{INSTITUTION}+{PI}.docx") == 2
    assert MISSING_PDF.zh in body
    assert MISSING_PDF.en in body
    assert "北京时间 2021-07-30 24:00" in body
    assert "2021-07-30 24:00 Beijing time" in body
    assert body.index(MISSING_PDF.zh) < body.index(MISSING_PDF.en)


def test_needs_correction_without_a_readable_subject_shows_placeholders(
    call: Call, renderer: Renderer
) -> None:
    unknown = Verdict(Status.NEEDS_CORRECTION, T0, None, None, (MISSING_PDF,))
    _, body = renderer.render("needs_correction", verdict_context(call, unknown))
    assert "合作专项建议书：项目牵头单位名称+项目负责人姓名" in body


def test_late_gives_deadline_and_receipt_time(call: Call, renderer: Renderer) -> None:
    late = Verdict(Status.LATE, datetime(2021, 7, 30, 16, 0, 5, tzinfo=UTC), INSTITUTION, PI)
    subject, body = renderer.render("late", verdict_context(call, late))
    assert "未能受理" in subject
    assert "Not accepted" in subject
    assert "2021-07-31 00:00:05（北京时间）" in body
    assert "2021-07-30 24:00" in body
    assert "not accepted" in body


def test_subject_newlines_strict_variables_and_language_fallback(tmp_path: Path) -> None:
    (tmp_path / "reply").mkdir()
    (tmp_path / "reply" / "echo.zh.txt.j2").write_text("Subject: 回复：{{ s }}\n\n正文 {{ s }}\n")
    renderer = Renderer(tmp_path)

    # A subject decoded from encoded words can hold a newline; a header must not.
    subject, body = renderer.render("echo", {"s": "第一行\r\n 第二行\n"})
    assert subject == "回复：第一行 第二行"
    assert body.startswith("正文 第一行")
    assert "-" * 72 not in body  # only Chinese exists, so only Chinese is rendered

    with pytest.raises(RenderError, match="'s' is undefined"):
        renderer.render("echo", {})
    with pytest.raises(RenderError, match="no template"):
        renderer.render("missing", {})
    with pytest.raises(RenderError, match="not a reply template name"):
        renderer.render("../echo", {})


def test_digest_from_the_database(
    db: Database, call: Call, renderer: Renderer, sink: SmtpSink
) -> None:
    mail_ids = add_mail(db, 2)
    ignored = add_mail(
        db,
        1,
        status="ignored",
        sender="robot@example.org",
        subject="???",
        problems=[{"code": "unparseable", "severity": "info", "message": "x"}],
    )
    with db.transaction() as session:
        good = Submission(
            call_id="anso2021",
            seq=1,
            reference="ANSO2021-0001",
            institution=INSTITUTION,
            pi=PI,
            institution_key="k1",
            pi_key="p1",
            status="accepted",
            created_at=T0,
        )
        wrong = Submission(
            call_id="anso2021",
            seq=2,
            reference="ANSO2021-0002",
            institution="兰州大学",
            pi="李四",
            institution_key="k2",
            pi_key="p2",
            status="needs_correction",
            created_at=T0,
        )
        session.add_all([good, wrong])
        session.flush()
        session.add(
            Version(
                submission_id=wrong.id,
                number=1,
                mail_id=mail_ids[1],
                kind="new",
                status="needs_correction",
                received_at=T0,
                problems=[MISSING_PDF.as_json(), SUPPORTING_MISSING.as_json()],
            )
        )
    failed = queue(db, call, reply_settings(), mail_id=mail_ids[0])
    with db.transaction() as session:
        session.get_one(Reply, failed.id).state = "failed"
        session.get_one(Reply, failed.id).last_error = "550 no such user"

    with db.transaction() as session:
        context = digest_context(session, call, since=None, now=T0 + timedelta(days=1))
    assert context["counts"] == {"accepted": 2, "ignored": 1}
    assert [s["reference"] for s in context["new_submissions"]] == [
        "ANSO2021-0001",
        "ANSO2021-0002",
    ]
    assert context["open_corrections"] == [
        {
            "reference": "ANSO2021-0002",
            "institution": "兰州大学",
            "pi": "李四",
            "codes": ["missing_pdf"],
        }
    ]
    assert [m["mail_id"] for m in context["unparseable"]] == ignored
    assert [r["reply_id"] for r in context["troubled_replies"]] == [failed.id]

    subject, body = renderer.render("digest", context)
    assert "每日汇总" in subject
    assert "daily digest" in subject
    assert "2021-07-21" in subject
    assert body.index("新增申请") < body.index("New submissions")
    for text in (
        "ANSO2021-0002  兰州大学  李四",
        "missing_pdf",
        "robot@example.org",
        "550 no such user",
    ):
        assert text in body

    # The digest is queued like any reply and goes out like one; the next covers what came since.
    settings = reply_settings(sink)
    with db.transaction() as session:
        digests = queue_digest(
            session,
            settings=settings,
            call=call,
            renderer=renderer,
            to=["secretariat@anso.org.cn"],
            now=T0 + timedelta(days=1),
        )
    assert len(digests) == 1
    report = send_pending(db, smtp_transport(sink), settings, Clock(T0 + timedelta(days=1)))
    assert report.sent == 1
    message = parse(sink.wait_for(1)[0].data)
    assert message["Auto-Submitted"] == "auto-generated"
    assert message["In-Reply-To"] is None
    with db.transaction() as session:
        later = digest_context(
            session, call, since=T0 + timedelta(days=1), now=T0 + timedelta(days=2)
        )
    assert later["new_submissions"] == []
    assert later["since_en"] is not None


# --------------------------------------------------------------------------- the outbox


def test_the_queued_reply_is_threaded_auto_submitted_and_decodes_to_chinese(
    db: Database, call: Call, renderer: Renderer
) -> None:
    (mail_id,) = add_mail(db)
    subject, body = renderer.render("accepted", accepted_context(call))
    settings = reply_settings(from_name="ANSO 秘书处")
    reply = queue(db, call, settings, mail_id=mail_id, subject=subject, body=body)

    assert reply.state == "pending"
    assert reply.next_attempt_at == T0
    assert reply.attempts == 0
    assert reply.raw.isascii()  # encoded words and base64: passes any server
    message = parse(reply.raw)
    assert message["In-Reply-To"] == THEIR_ID
    assert message["References"].split() == [*THEIR_REFERENCES, THEIR_ID]
    assert message["Auto-Submitted"] == "auto-replied"
    assert message["X-Auto-Response-Suppress"] == "All"
    assert message["Message-ID"] == reply.message_id
    assert reply.message_id.startswith("<mailbot.")
    assert reply.message_id.endswith("@anso.org.cn>")
    assert message["From"].addresses[0].display_name == "ANSO 秘书处"
    assert message["From"].addresses[0].addr_spec == "anso2021program@anso.org.cn"
    assert message["To"].addresses[0].addr_spec == APPLICANT
    assert message["Subject"] == subject == reply.subject
    assert message["Date"].datetime == T0
    assert message.get_content_type() == "text/plain"
    assert message.get_content_charset() == "utf-8"
    assert message["Content-Transfer-Encoding"] == "base64"
    text = message.get_content()
    assert "受理编号：ANSO2021-0007" in text
    assert text.index("受理编号") < text.index("Reference")


def test_a_bad_address_fails_at_once_and_a_subject_newline_is_dropped(
    db: Database, call: Call
) -> None:
    injected = queue(db, call, reply_settings(), to="victim@example.org\r\nBcc: all@example.org")
    assert injected.state == "failed"
    assert injected.next_attempt_at is None
    assert injected.last_error is not None
    assert "not a plain e-mail address" in injected.last_error
    assert parse(injected.raw)["To"] is None
    assert b"Bcc" not in injected.raw
    with pytest.raises(ReplyError):
        queue(db, call, reply_settings(from_address="secretariat@anso.org.cn\nBcc: x@y.z"))
    reply = queue(db, call, reply_settings(), subject="第一行\n第二行")
    assert reply.subject == "第一行 第二行"
    assert parse(reply.raw)["Subject"] == "第一行 第二行"


def test_the_sixth_reply_in_an_hour_to_one_address_is_suppressed(db: Database, call: Call) -> None:
    settings = reply_settings()  # the default limit: 5 an hour
    states = [
        queue(db, call, settings, to=to, now=T0 + timedelta(minutes=i)).state
        for i, to in enumerate([APPLICANT] * 4 + [APPLICANT.upper(), APPLICANT])
    ]
    assert states == ["pending"] * 5 + ["suppressed"]
    suppressed = replies(db)[-1]
    assert suppressed.last_error is not None
    assert "5 replies in the hour" in suppressed.last_error
    assert suppressed.next_attempt_at is None

    assert (
        queue(db, call, settings, to="lisi@lzu.edu.cn", now=T0 + timedelta(minutes=6)).state
        == "pending"
    )
    # Suppressed replies do not count; an hour after the first, there is room again.
    later = T0 + timedelta(minutes=60, seconds=1)
    assert queue(db, call, settings, now=later).state == "pending"
    assert queue(db, call, settings, now=later).state == "suppressed"
    unlimited = reply_settings(per_sender_hourly_limit=0)
    assert queue(db, call, unlimited, now=later).state == "pending"


# --------------------------------------------------------------------------- sending


def test_send_pending_delivers_each_reply_once_over_smtp(
    db: Database, call: Call, sink: SmtpSink
) -> None:
    settings = reply_settings(sink)
    queued = [queue(db, call, settings, to=f"applicant{i}@example.org") for i in range(3)]
    clock = Clock(T0 + timedelta(seconds=1))

    assert send_pending(db, smtp_transport(sink), settings, clock) == SendReport(sent=3)
    received = sink.wait_for(3)
    assert [m.rcpt_tos for m in received] == [(r.to_address,) for r in queued]
    assert {m.mail_from for m in received} == {"anso2021program@anso.org.cn"}
    assert {m.auth_user for m in received} == {sink.user}
    assert [parse(m.data)["Message-ID"] for m in received] == [r.message_id for r in queued]
    assert [(r.state, r.attempts, r.sent_at) for r in replies(db)] == [("sent", 1, clock())] * 3

    clock.advance(3600)
    assert send_pending(db, smtp_transport(sink), settings, clock) == SendReport()
    assert len(sink.messages) == 3


def test_with_the_server_down_replies_wait_back_off_and_all_go_out_after(
    db: Database, call: Call, sink: SmtpSink, caplog: pytest.LogCaptureFixture
) -> None:
    settings = reply_settings(sink, backoff_initial=30, backoff_max=100)
    for i in range(3):
        queue(db, call, settings, to=f"applicant{i}@example.org")
    sink.stop()
    clock = Clock()

    # One connection attempt and one log line; every due reply records it and backs off.
    with caplog.at_level(logging.INFO, logger=SENDER_LOG):
        assert send_pending(db, smtp_transport(sink), settings, clock) == SendReport(deferred=3)
    assert len(caplog.records) == 1
    assert "cannot reach the SMTP server" in caplog.text
    assert "3 replies wait in the outbox" in caplog.text
    for reply in replies(db):
        assert (reply.state, reply.attempts) == ("pending", 1)
        assert reply.last_error is not None
        assert "cannot reach the SMTP server" in reply.last_error
        assert "Connection refused" in reply.last_error
        assert reply.next_attempt_at == T0 + timedelta(seconds=30)

    # Nothing is due before the backoff runs out; then the wait doubles, up to the cap.
    caplog.clear()
    clock.advance(29)
    with caplog.at_level(logging.INFO, logger=SENDER_LOG):
        assert send_pending(db, smtp_transport(sink), settings, clock) == SendReport()
    assert caplog.records == []
    for attempts, wait in ((2, 60), (3, 100), (4, 100)):
        clock.moment = replies(db)[0].next_attempt_at or T0
        assert send_pending(db, smtp_transport(sink), settings, clock) == SendReport(deferred=3)
        assert {(r.attempts, r.next_attempt_at) for r in replies(db)} == {
            (attempts, clock() + timedelta(seconds=wait))
        }

    sink.start()
    clock.advance(100)
    assert send_pending(db, smtp_transport(sink), settings, clock) == SendReport(sent=3)
    assert sorted(m.rcpt_tos[0] for m in sink.wait_for(3)) == [
        f"applicant{i}@example.org" for i in range(3)
    ]
    assert [r.state for r in replies(db)] == ["sent"] * 3
    clock.advance(3600)
    assert send_pending(db, smtp_transport(sink), settings, clock) == SendReport()
    assert len(sink.messages) == 3


def test_after_max_attempts_a_reply_fails_and_is_never_sent(
    db: Database, call: Call, sink: SmtpSink
) -> None:
    settings = reply_settings(sink, max_attempts=2, backoff_initial=10)
    queue(db, call, settings)
    sink.stop()
    clock = Clock()
    assert send_pending(db, smtp_transport(sink), settings, clock).deferred == 1
    clock.advance(10)
    assert send_pending(db, smtp_transport(sink), settings, clock) == SendReport(failed=1)
    (reply,) = replies(db)
    assert (reply.state, reply.attempts, reply.next_attempt_at) == ("failed", 2, None)

    sink.start()
    clock.advance(86400)
    assert send_pending(db, smtp_transport(sink), settings, clock) == SendReport()
    assert sink.messages == []


def test_a_wrong_password_stops_the_batch_without_naming_the_password(
    db: Database, call: Call, sink: SmtpSink, caplog: pytest.LogCaptureFixture
) -> None:
    settings = reply_settings(sink)
    queue(db, call, settings)
    queue(db, call, settings)
    wrong = SmtpTransport(settings.smtp, "not-the-password", local_hostname="localhost")
    with caplog.at_level(logging.WARNING, logger=SENDER_LOG):
        assert send_pending(db, wrong, settings, Clock()) == SendReport(deferred=2)
    assert len(caplog.records) == 1
    for reply in replies(db):
        assert (reply.state, reply.attempts) == ("pending", 1)
        assert reply.last_error is not None
        assert "refused the login" in reply.last_error
        assert "not-the-password" not in reply.last_error + caplog.text
    assert sink.messages == []


class FussyTransport:
    """A transport of our own protocol that refuses one address and breaks on another."""

    def __init__(self, down: bool = False) -> None:
        self.down = down
        self.calls = 0
        self.sent: list[str] = []

    def send(
        self,
        raw: bytes,
        sender: str,
        recipients: list[str],
        *,
        reply_id: int | None = None,
        handover: Callable[[], None] | None = None,
    ) -> None:
        self.calls += 1
        if self.down:
            raise TransportUnavailable("cannot reach the test server")
        if recipients == ["refused@example.org"]:
            raise TransportError("550 5.1.1 no such user")
        if recipients == ["bug@example.org"]:
            raise RuntimeError("a bug")
        if handover is not None:
            handover()
        self.sent.extend(recipients)

    def close(self) -> None:
        pass


def test_one_reply_refused_does_not_hold_up_the_others(
    db: Database, call: Call, caplog: pytest.LogCaptureFixture
) -> None:
    settings = reply_settings()
    for to in ("refused@example.org", "bug@example.org", APPLICANT):
        queue(db, call, settings, to=to)
    transport = FussyTransport()
    with caplog.at_level(logging.CRITICAL, logger=SENDER_LOG):
        report = send_pending(db, transport, settings, Clock())
    assert report == SendReport(sent=1, failed=1, deferred=1)
    assert transport.sent == [APPLICANT]
    refused, bug, sent = replies(db)
    assert (refused.state, refused.attempts, refused.last_error) == (
        "pending",
        1,
        "550 5.1.1 no such user",
    )
    assert bug.state == "failed"
    assert "RuntimeError: a bug" in (bug.last_error or "")
    assert sent.state == "sent"


def test_an_unreachable_server_is_asked_once_per_run(db: Database, call: Call) -> None:
    settings = reply_settings()
    for i in range(5):
        queue(db, call, settings, to=f"applicant{i}@example.org")
    transport = FussyTransport(down=True)
    assert send_pending(db, transport, settings, Clock()) == SendReport(deferred=5)
    assert transport.calls == 1
    assert {(r.state, r.attempts, r.last_error) for r in replies(db)} == {
        ("pending", 1, "cannot reach the test server")
    }


def test_a_reply_killed_before_its_handover_is_sent_again_and_arrives_once(
    db: Database, call: Call, sink: SmtpSink
) -> None:
    settings = reply_settings(sink)
    interrupted = queue(db, call, settings, to="interrupted@example.org")
    queue(db, call, settings)
    with db.transaction() as session:
        session.get_one(Reply, interrupted.id).state = "sending"

    # "sending" means the final dot never left: the server has nothing, so no uncertainty.
    assert recover_interrupted(db) == 0
    assert [r.state for r in replies(db)] == ["pending", "pending"]
    assert send_pending(db, smtp_transport(sink), settings, Clock()) == SendReport(sent=2)
    received = sink.wait_for(2)
    assert sorted(m.rcpt_tos for m in received) == [("interrupted@example.org",), (APPLICANT,)]
    assert [r.state for r in replies(db)] == ["sent", "sent"]
    assert send_pending(db, smtp_transport(sink), settings, Clock(T0 + timedelta(days=1))) == (
        SendReport()
    )
    assert len(sink.messages) == 2


def test_a_reply_killed_after_its_handover_becomes_uncertain_and_is_never_sent(
    db: Database, call: Call, sink: SmtpSink
) -> None:
    settings = reply_settings(sink)
    interrupted = queue(db, call, settings, to="interrupted@example.org")
    queue(db, call, settings)
    with db.transaction() as session:
        session.get_one(Reply, interrupted.id).state = "handed"

    assert recover_interrupted(db) == 1
    assert recover_interrupted(db) == 0
    assert send_pending(db, smtp_transport(sink), settings, Clock()) == SendReport(sent=1)
    assert [m.rcpt_tos for m in sink.wait_for(1)] == [(APPLICANT,)]
    first, second = replies(db)
    assert (first.state, first.attempts, first.next_attempt_at) == ("uncertain", 0, None)
    assert first.last_error is not None
    assert "almost surely arrived" in first.last_error
    assert second.state == "sent"


def test_a_handover_that_raises_leaves_the_server_without_the_message(
    db: Database, call: Call, sink: SmtpSink
) -> None:
    settings = reply_settings(sink)
    first = queue(db, call, settings, to="first@example.org")
    second = queue(db, call, settings, to="second@example.org")
    transport = smtp_transport(sink)

    def refuse() -> None:
        raise LookupError("not now")

    # The whole message is on the wire, only the final dot is missing.
    with pytest.raises(LookupError, match="not now"):
        transport.send(
            first.raw, "anso2021program@anso.org.cn", [first.to_address], handover=refuse
        )
    transport.send(second.raw, "anso2021program@anso.org.cn", [second.to_address])
    transport.close()
    assert [m.rcpt_tos for m in sink.wait_for(1)] == [("second@example.org",)]
    assert len(sink.messages) == 1


def test_a_failed_handover_record_sends_nothing_and_the_reply_is_retried(
    db: Database, call: Call, sink: SmtpSink, caplog: pytest.LogCaptureFixture
) -> None:
    settings = reply_settings(sink, backoff_initial=30)
    queue(db, call, settings)
    locked: list[str] = []

    def lock_once(
        conn: Any, cursor: Any, statement: str, parameters: Any, context: Any, many: bool
    ) -> None:
        if not locked and "handed" in repr(parameters):
            locked.append(statement)
            raise sqlite3.OperationalError("database is locked")

    sa.event.listen(db.engine, "before_cursor_execute", lock_once)
    clock = Clock()
    with caplog.at_level(logging.CRITICAL, logger=SENDER_LOG):
        assert send_pending(db, smtp_transport(sink), settings, clock) == SendReport(deferred=1)
    assert locked
    (reply,) = replies(db)
    assert (reply.state, reply.attempts) == ("pending", 1)
    assert reply.last_error is not None
    assert "database is locked" in reply.last_error
    assert sink.messages == []

    clock.advance(30)
    assert send_pending(db, smtp_transport(sink), settings, clock) == SendReport(sent=1)
    assert len(sink.wait_for(1)) == 1
    assert [r.state for r in replies(db)] == ["sent"]


class Interloper:
    """Our SMTP transport, and a second mailbot starting up just before the handover."""

    def __init__(self, db: Database, transport: SmtpTransport) -> None:
        self.db = db
        self.transport = transport

    def send(
        self,
        raw: bytes,
        sender: str,
        recipients: list[str],
        *,
        reply_id: int | None = None,
        handover: Callable[[], None] | None = None,
    ) -> None:
        def recover_then_hand_over() -> None:
            recover_interrupted(self.db)
            assert handover is not None
            handover()

        self.transport.send(raw, sender, recipients, handover=recover_then_hand_over)

    def close(self) -> None:
        self.transport.close()


def test_a_reply_requeued_by_another_mailbot_mid_send_goes_out_once(
    db: Database, call: Call, sink: SmtpSink, caplog: pytest.LogCaptureFixture
) -> None:
    settings = reply_settings(sink)
    queue(db, call, settings)
    # The newcomer puts the reply back to pending, so the first sender must not deliver it.
    with caplog.at_level(logging.WARNING, logger=SENDER_LOG):
        assert send_pending(db, Interloper(db, smtp_transport(sink)), settings, Clock()) == (
            SendReport()
        )
    assert "no longer ours to send" in caplog.text
    assert [r.state for r in replies(db)] == ["pending"]
    assert sink.messages == []

    assert send_pending(db, smtp_transport(sink), settings, Clock()) == SendReport(sent=1)
    assert len(sink.wait_for(1)) == 1


def test_a_server_gone_between_the_final_dot_and_its_answer_leaves_the_reply_uncertain(
    db: Database, call: Call, sink: SmtpSink
) -> None:
    settings = reply_settings(sink)
    queue(db, call, settings)

    class Vanishing(SmtpTransport):
        def send(
            self,
            raw: bytes,
            sender: str,
            recipients: list[str],
            *,
            reply_id: int | None = None,
            handover: Callable[[], None] | None = None,
        ) -> None:
            def hand_over_then_vanish() -> None:
                assert handover is not None
                handover()
                sink.stop()

            super().send(raw, sender, recipients, handover=hand_over_then_vanish)

    transport = Vanishing(settings.smtp, sink.password, local_hostname="localhost")
    assert send_pending(db, transport, settings, Clock()) == SendReport(uncertain=1)
    (reply,) = replies(db)
    assert (reply.state, reply.next_attempt_at) == ("uncertain", None)
    assert reply.last_error is not None
    assert "may have been delivered" in reply.last_error

    sink.start()
    assert send_pending(db, smtp_transport(sink), settings, Clock(T0 + timedelta(days=1))) == (
        SendReport()
    )
    assert sink.messages == []


def test_dot_stuffing_and_line_ends_reach_the_server_as_written(sink: SmtpSink) -> None:
    raw = (
        b"From: anso2021program@anso.org.cn\nTo: zhangsan@ucas.ac.cn\nSubject: dots\n\n"
        b".starts with a dot\n.\n..two dots\r\nlast line without an end"
    )
    assert smtp_data(raw).endswith(b"\r\n...two dots\r\nlast line without an end\r\n")
    transport = smtp_transport(sink)
    transport.send(raw, "anso2021program@anso.org.cn", [APPLICANT])
    transport.close()
    (received,) = sink.wait_for(1)
    assert received.data.replace(b"\r\n", b"\n").rstrip(b"\n") == raw.replace(b"\r\n", b"\n")


def test_outbox_dir_transport_writes_parseable_eml_files(
    db: Database, call: Call, renderer: Renderer, tmp_path: Path
) -> None:
    settings = reply_settings()
    subject, body = renderer.render("accepted", accepted_context(call))
    first = queue(db, call, settings, subject=subject, body=body)
    second = queue(db, call, settings, to="li.si+anso@lzu.edu.cn")
    outbox = tmp_path / "outbox"

    assert send_pending(db, OutboxDirTransport(outbox), settings, Clock()) == SendReport(sent=2)
    assert sorted(p.name for p in outbox.iterdir()) == [
        f"{first.id:06d}-{APPLICANT}.eml",
        f"{second.id:06d}-li.si+anso@lzu.edu.cn.eml",
    ]
    message = parse((outbox / f"{first.id:06d}-{APPLICANT}.eml").read_bytes())
    assert message["Subject"] == subject
    assert message["In-Reply-To"] == THEIR_ID
    assert "受理编号：ANSO2021-0007" in message.get_content()


def test_outbox_dir_resend_replaces_the_same_file(db: Database, call: Call, tmp_path: Path) -> None:
    settings = reply_settings()
    reply = queue(db, call, settings)
    outbox = tmp_path / "outbox"
    transport = OutboxDirTransport(outbox)
    name = f"{reply.id:06d}-{APPLICANT}.eml"

    def refuse() -> None:
        raise LookupError("not now")

    # A handover that raises leaves neither the .eml file nor a half-written one.
    with pytest.raises(LookupError):
        transport.send(reply.raw, "x@example.org", [APPLICANT], reply_id=reply.id, handover=refuse)
    assert list(outbox.iterdir()) == []

    assert send_pending(db, transport, settings, Clock()) == SendReport(sent=1)
    # Killed before the handover was recorded: sent again, into the same file.
    with db.transaction() as session:
        session.get_one(Reply, reply.id).state = "sending"
    assert recover_interrupted(db) == 0
    assert send_pending(db, transport, settings, Clock()) == SendReport(sent=1)
    assert [p.name for p in outbox.iterdir()] == [name]
    assert (outbox / name).read_bytes() == reply.raw


def test_a_chinese_address_goes_out_with_smtputf8(db: Database, call: Call, sink: SmtpSink) -> None:
    settings = reply_settings(sink)
    queue(db, call, settings, to="张三@例子.中国")
    assert send_pending(db, smtp_transport(sink), settings, Clock()) == SendReport(sent=1)
    (received,) = sink.wait_for(1)
    assert received.rcpt_tos == ("张三@例子.中国",)
    # Raw UTF-8 headers (RFC 6532): read as text, the address comes back whole.
    message = email.message_from_string(received.data.decode(), policy=email.policy.default)
    assert message["To"].addresses[0].addr_spec == "张三@例子.中国"
    assert message["Subject"] == "已受理 / Received"
