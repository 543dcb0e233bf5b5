"""Every mail dealt with: other mail attached, answered or marked handled; the outbox page."""

from __future__ import annotations

import email
import email.policy
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select

from mailbot.ledger.attention import unmatched_mails
from mailbot.replies.outbox import reply_body
from mailbot.service.daemon import Daemon
from mailbot.sources.maildir import deliver
from mailbot.store.models import AuditEvent, Mail, Reply, Submission
from mailbot.web.actions import Acting
from mailbot.web.auth import Actor, add_user
from mailbot.web.dealing import (
    AttachTo,
    answer_names,
    answer_renderer,
    attach,
    draft_answer,
    mark_handled,
)
from mailbot.web.outbox_desk import mark_dealt_with, outbox_page, resend
from tests.daemon_support import july, proposal, settings_values
from tests.fixtures import AppFactory
from tests.test_web import shoot, sign_in
from tests.web_support import HOSTILE_SUBJECT, NAME, Client, RunningDesk, running_desk

# Nearly every test here works on a desk filled through the whole pipeline.
pytestmark = pytest.mark.slow

LI_NA = ("中国科学院微生物研究所", "李娜")
UNREADABLE_SUBJECT = "建议书，请查收"


@pytest.fixture(scope="module")
def desk(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningDesk]:
    with running_desk(tmp_path_factory.mktemp("dealing") / "demo") as running:
        # 李娜's files, misnamed, under a subject that names nobody: tied to no submission.
        raw = proposal("outlook", *LI_NA, files="misnamed", subject=UNREADABLE_SUBJECT)
        deliver(running.root / "Maildir", raw, july(26, 9))
        Daemon(running.app).once()
        yield running


@pytest.fixture
def signed_in(desk: RunningDesk) -> Client:
    client = Client(desk.url)
    assert client.login().status == 303
    return client


def open_ids(client: Client, query: str = "") -> list[int]:
    page = client.get(f"/mails{query}")
    assert page.status == 200
    return [int(i) for i in re.findall(r'<tr data-mail="(\d+)"', page.text)]


def other_mail(desk: RunningDesk, subject: str) -> Mail:
    with desk.app.db.transaction() as session:
        mail = session.scalar(
            select(Mail).where(Mail.subject == subject, Mail.submission_id.is_(None))
        )
        assert mail is not None, subject
        session.expunge(mail)
        return mail


def reference_of(desk: RunningDesk, pi: str) -> str:
    with desk.app.db.transaction() as session:
        return str(session.scalar(select(Submission.reference).where(Submission.pi == pi)))


def overview_count(client: Client, kind: str) -> int:
    match = re.search(rf'href="/mails\?kind={kind}">(\d+)</a>', client.get("/").text)
    assert match, kind
    return int(match.group(1))


def events_of(desk: RunningDesk, mail_id: int) -> list[AuditEvent]:
    with desk.app.db.transaction() as session:
        events = session.scalars(
            select(AuditEvent).where(AuditEvent.mail_id == mail_id).order_by(AuditEvent.id)
        ).all()
        session.expunge_all()
        return list(events)


# --------------------------------------------------------------------------- why


def test_why_the_other_mail_list_shrinks_once_a_mail_is_handled(
    desk: RunningDesk, signed_in: Client
) -> None:
    """Issue 12: "Other mail cannot be ... marked handled: the list never shrinks"."""
    mail = other_mail(desk, HOSTILE_SUBJECT)
    before = open_ids(signed_in)
    unparseable = overview_count(signed_in, "unparseable")
    assert mail.id in before
    token = signed_in.token(f"/mails/{mail.id}")
    done = signed_in.post(
        f"/mails/{mail.id}/handled",
        {"csrf_token": token, "reason": "测试邮件，无需回复", "confirm": "yes"},
    )
    assert done.status == 303
    assert "done=handled" in done.location
    after = open_ids(signed_in)
    assert mail.id not in after
    assert len(after) == len(before) - 1
    assert overview_count(signed_in, "unparseable") == unparseable - 1
    assert mail.id in open_ids(signed_in, "?show=all")  # nothing lost: a filter shows it
    page = signed_in.get(f"/mails/{mail.id}").text
    assert "测试邮件，无需回复" in page
    assert NAME in page
    [event] = [e for e in events_of(desk, mail.id) if e.action == "mail_handled"]
    assert event.actor == NAME
    assert event.reason == "测试邮件，无需回复"


def test_why_there_is_an_outbox_view(desk: RunningDesk, signed_in: Client) -> None:
    """Issue 12: "No outbox view (waiting, failed, uncertain letters)"."""
    with desk.app.db.transaction() as session:
        reply = session.scalars(select(Reply).order_by(Reply.id)).first()
        assert reply is not None
        reply.state, reply.last_error = "failed", "550 5.1.1 mailbox unknown"
        reply_id, to_address = reply.id, reply.to_address
    overview = signed_in.get("/").text
    assert 'href="/outbox"' in overview  # in the desk's navigation
    page = signed_in.get("/outbox?state=failed")
    assert page.status == 200
    assert f'data-reply="{reply_id}"' in page.text
    assert to_address in page.text
    assert "550 5.1.1 mailbox unknown" in page.text


# --------------------------------------------------------------------------- other mail


def test_a_refused_act_changes_nothing_and_says_why_in_both_languages(
    desk: RunningDesk, signed_in: Client
) -> None:
    mail = other_mail(desk, UNREADABLE_SUBJECT)
    token = signed_in.token(f"/mails/{mail.id}")
    unconfirmed = signed_in.post(
        f"/mails/{mail.id}/handled", {"csrf_token": token, "reason": "spam"}
    )
    assert unconfirmed.status == 400
    assert "请先勾选确认" in unconfirmed.text
    assert "please tick the confirmation first" in unconfirmed.text
    nowhere = signed_in.post(
        f"/mails/{mail.id}/attach",
        {"csrf_token": token, "reference": "ANSO2021-9999", "as": "supporting"}
        | {"reason": "x", "confirm": "yes"},
    )
    assert nowhere.status == 400
    assert "there is no submission ANSO2021-9999" in nowhere.text
    gone = {"csrf_token": token, "reason": "x", "confirm": "yes"}
    assert signed_in.post("/mails/99999999/handled", gone).status == 404
    assert signed_in.post(f"/mails/{2**64}/handled", gone).status == 404  # beyond 64 bits
    assert signed_in.get(f"/mails/{2**64}/answer?template=message").status == 404
    assert mail.id in open_ids(signed_in)
    assert events_of(desk, mail.id) == []


def test_an_other_mail_attached_as_a_version_is_judged_as_that_submission(
    desk: RunningDesk, signed_in: Client
) -> None:
    mail = other_mail(desk, UNREADABLE_SUBJECT)
    reference = reference_of(desk, LI_NA[1])
    with desk.app.db.transaction() as session:
        submission = session.scalar(select(Submission).where(Submission.reference == reference))
        assert submission is not None
        versions_before, status_before = submission.current_version, submission.status
    assert status_before == "accepted"  # the demo's 李娜 corrected her files
    with desk.app.db.transaction() as session:
        replies_before = session.scalar(select(func.max(Reply.id))) or 0
    token = signed_in.token(f"/mails/{mail.id}")
    done = signed_in.post(
        f"/mails/{mail.id}/attach",
        {"csrf_token": token, "reference": reference.lower(), "as": "version", "tell": "yes"}
        | {"reason": "主题未写单位和负责人，附件正确", "confirm": "yes"},
    )
    assert done.status == 303, done.text
    with desk.app.db.transaction() as session:
        told = session.scalars(
            select(Reply).where(Reply.mail_id == mail.id).order_by(Reply.id.desc())
        ).first()
        assert told is not None
        # The daemon's reply to a version, to the applicant.
        assert told.template == "needs_correction"
        assert told.id > replies_before
        # It names the files as that submission's: 中国科学院微生物研究所+李娜.docx.
        assert f"{LI_NA[0]}+{LI_NA[1]}.docx" in reply_body(told.raw)
        assert told.to_address == mail.sender
        assert told.state == "pending"
    assert mail.id not in open_ids(signed_in)
    with desk.app.db.transaction() as session:
        submission = session.scalar(select(Submission).where(Submission.reference == reference))
        assert submission is not None
        assert submission.current_version == versions_before + 1
        # Judged as 微生物研究所+李娜's mail: the subject no longer counts against it,
        # the file names are held to that submission's names.
        assert submission.status == "needs_correction"
        stored = session.get(Mail, mail.id)
        assert stored is not None
        assert stored.submission_id == submission.id
        codes = {p["code"] for p in stored.problems}
        assert "subject_format" not in codes
        assert "attachment_name" in codes
        version = submission.versions[-1]
        assert version.mail_id == mail.id
        assert version.kind == "resubmission"
    page = signed_in.get(f"/submissions/{reference}").text
    assert "关联为新版本" in page
    assert "主题未写单位和负责人" in page
    assert f"version {versions_before + 1}" in page  # the trail says which version it made
    [event] = events_of(desk, mail.id)
    assert event.action == "attach_version"
    assert event.previous_status == "needs_correction"
    assert event.detail["version"] == versions_before + 1


def test_an_other_mail_attached_as_supporting_mail_adds_no_version(
    desk: RunningDesk, signed_in: Client
) -> None:
    mail = other_mail(desk, "Undelivered Mail Returned to Sender")
    reference = reference_of(desk, "张喆")
    with desk.app.db.transaction() as session:
        versions = session.scalar(
            select(Submission.current_version).where(Submission.reference == reference)
        )
    token = signed_in.token(f"/mails/{mail.id}")
    done = signed_in.post(
        f"/mails/{mail.id}/attach",
        {"csrf_token": token, "reference": reference, "as": "supporting"}
        | {"reason": "退信与此建议书有关", "confirm": "yes"},
    )
    assert done.status == 303
    with desk.app.db.transaction() as session:
        submission = session.scalar(select(Submission).where(Submission.reference == reference))
        assert submission is not None
        assert submission.current_version == versions
        assert mail.id in [m.id for m in submission.mails]
    assert mail.id not in open_ids(signed_in)
    assert mail.id not in open_ids(signed_in, "?show=all")
    assert f"/mails/{mail.id}" in signed_in.get(f"/submissions/{reference}").text
    assert [e.action for e in events_of(desk, mail.id)] == ["attach_supporting"]
    # Attached, it is no other mail any more: no second attachment, no answer from here.
    token = signed_in.token(f"/mails/{mail.id}")
    form = {"csrf_token": token, "reference": reference, "as": "supporting", "confirm": "yes"}
    twice = signed_in.post(f"/mails/{mail.id}/attach", form | {"reason": "again"})
    assert twice.status == 400
    assert "already belongs to ANSO2021-" in twice.text
    # Answering it is done from its submission's letter page.
    answer = signed_in.get(f"/mails/{mail.id}/answer?template=message")
    assert answer.status == 303
    assert answer.location.endswith(f"/submissions/{reference}/write")


def test_an_other_mail_answered_from_a_template_is_queued_in_its_thread(
    desk: RunningDesk, signed_in: Client
) -> None:
    with desk.app.db.transaction() as session:
        mail = session.scalars(
            select(Mail)
            .where(
                Mail.submission_id.is_(None), Mail.handled_at.is_(None), Mail.sender.is_not(None)
            )
            .where(Mail.message_id.is_not(None), ~Mail.sender.ilike("mailer-daemon%"))
            .order_by(Mail.id)
        ).first()
        assert mail is not None
        mail_id, sender, message_id = mail.id, mail.reply_to or mail.sender, mail.message_id
    draft = signed_in.get(f"/mails/{mail_id}/answer?template=please_resend")
    assert draft.status == 200
    assert "合作专项建议书" in draft.text  # the subject the call asks for, spelled out
    assert "None" not in draft.text
    assert signed_in.get(f"/mails/{mail_id}/answer?template=nonesuch").status == 404
    token = signed_in.token(f"/mails/{mail_id}")
    sent = signed_in.post(
        f"/mails/{mail_id}/answer",
        {
            "csrf_token": token,
            "template": "please_resend",
            "subject": "关于您的邮件 About your mail",
            "body": "请按要求重新发送。\nPlease send it again.",
            "reason": "请其重发",
            "confirm": "yes",
        },
    )
    assert sent.status == 303
    assert "done=answered" in sent.location
    assert mail_id not in open_ids(signed_in)
    with desk.app.db.transaction() as session:
        reply = session.scalars(
            select(Reply).where(Reply.mail_id == mail_id).order_by(Reply.id.desc())
        ).first()
        assert reply is not None
        assert reply.state == "pending"
        assert reply.to_address == sender
        assert reply.template == "desk/please_resend"
        message = email.message_from_bytes(reply.raw, policy=email.policy.default)
        assert message["In-Reply-To"] == message_id
        # A person's letter: no mail client may file it as an automatic reply.
        assert message["Auto-Submitted"] is None
        assert message["X-Auto-Response-Suppress"] is not None
        stored = session.get(Mail, mail_id)
        assert stored is not None
        assert stored.handled_by == NAME
        assert stored.handled_reason == "请其重发"
    [event] = events_of(desk, mail_id)
    assert event.action == "answer_mail"
    assert event.reply_id == reply.id


def test_every_answer_template_reads_whole_for_every_other_mail(desk: RunningDesk) -> None:
    """No None, no empty name, no internal code in a letter to a sender, whatever came."""
    answers = answer_renderer(desk.app.settings.templates_path() / "web")
    answers.environment.finalize = _whole
    names = answer_names(answers)
    assert names[0] == "please_resend"
    assert "message" in names
    with desk.app.db.transaction() as session:
        mails = [*unmatched_mails(session, desk.app.call, handled=True)]
        mails.append(Mail(sender_name="", subject="", received_at=july(25, 23, 59)))
        for mail in mails:
            for name in names:
                subject, body = draft_answer(desk.app, answers, mail, name)
                assert subject.strip()
                assert body.strip()
                text = subject + body
                assert "None" not in text, name
                assert "_" not in text.replace(desk.app.call.id, ""), name
    assert "Dear applicant" in body
    assert "申请人您好" in body


def _whole(value: Any) -> Any:
    if value is None:
        raise ValueError("a template printed None")
    if isinstance(value, str) and not value.strip():
        raise ValueError("a template printed an empty value")
    return value


def test_a_handled_mail_can_be_reopened(desk: RunningDesk, signed_in: Client) -> None:
    with desk.app.db.transaction() as session:
        mail_id = session.scalar(
            select(func.min(Mail.id)).where(Mail.submission_id.is_(None), Mail.handled_at.is_(None))
        )
    assert mail_id is not None
    token = signed_in.token(f"/mails/{mail_id}")
    form = {"csrf_token": token, "confirm": "yes"}
    signed_in.post(f"/mails/{mail_id}/handled", form | {"reason": "垃圾邮件"})
    assert mail_id not in open_ids(signed_in)
    again = signed_in.post(f"/mails/{mail_id}/handled", form | {"reason": "again"})
    assert again.status == 400
    assert "handled already" in again.text
    assert signed_in.post(f"/mails/{mail_id}/reopen", form | {"reason": "误判"}).status == 303
    assert mail_id in open_ids(signed_in)
    actions = [e.action for e in events_of(desk, mail_id)]
    assert actions == ["mail_handled", "mail_reopened"]


# --------------------------------------------------------------------------- the outbox


STATES = ("pending", "sending", "sent", "failed", "uncertain", "bounced", "suppressed")


@pytest.fixture(scope="module")
def letters(desk: RunningDesk) -> dict[str, int]:
    """One letter in each outbox state: the demo's sent replies, set as the sender sets them."""
    with desk.app.db.transaction() as session:
        replies = session.scalars(
            select(Reply).where(Reply.state == "sent").order_by(Reply.id.desc())
        ).all()
        assert len(replies) >= len(STATES)
        chosen = {}
        for state, reply in zip(STATES, replies, strict=False):
            reply.state = state
            reply.attempts = 0 if state == "pending" else 1
            if state in ("failed", "uncertain", "bounced", "suppressed"):
                reply.last_error = f"{state}: 451 try later"
            chosen[state] = reply.id
        return chosen


def test_the_outbox_lists_each_state_with_its_details(
    desk: RunningDesk, signed_in: Client, letters: dict[str, int]
) -> None:
    everything = signed_in.get("/outbox").text
    for state, reply_id in letters.items():
        assert f'data-reply="{reply_id}" data-state="{state}"' in everything
    groups = {
        "waiting": ("pending", "sending"),
        "sent": ("sent",),
        "failed": ("failed",),
        "uncertain": ("uncertain",),
        "bounced": ("bounced",),
        "suppressed": ("suppressed",),
    }
    for group, states in groups.items():
        page = signed_in.get(f"/outbox?state={group}").text
        shown = set(re.findall(r'data-reply="\d+" data-state="(\w+)"', page))
        assert shown, group
        assert shown <= set(states), group
        for state in states:
            assert f'data-reply="{letters[state]}"' in page
    failed = signed_in.get("/outbox?state=failed").text
    assert "failed: 451 try later" in failed
    with desk.app.db.transaction() as session:
        reply = session.get(Reply, letters["failed"])
        assert reply is not None
        reference = session.scalar(
            select(Submission.reference).where(Submission.id == reply.submission_id)
        )
    assert reference
    assert f'href="/submissions/{reference}"' in failed


def test_resend_queues_a_new_letter_and_keeps_the_old(
    desk: RunningDesk, signed_in: Client, letters: dict[str, int]
) -> None:
    token = signed_in.token("/outbox")
    form = {"csrf_token": token, "reason": "服务器已恢复", "confirm": "yes"}
    sent = signed_in.post(f"/outbox/{letters['sent']}/resend", form)
    assert sent.status == 400
    assert "only a failed, uncertain or bounced" in sent.text
    with desk.app.db.transaction() as session:
        before = session.scalar(select(func.count(Reply.id))) or 0
    done = signed_in.post(f"/outbox/{letters['bounced']}/resend", form | {"state": "bounced"})
    assert done.status == 303
    assert "state=bounced" in done.location
    with desk.app.db.transaction() as session:
        assert session.scalar(select(func.count(Reply.id))) == before + 1
        old = session.get(Reply, letters["bounced"])
        new = session.scalars(select(Reply).order_by(Reply.id.desc())).first()
        assert old is not None
        assert new is not None
        assert old.state == "bounced"
        assert new.state == "pending"
        assert new.message_id != old.message_id
        assert (new.to_address, new.subject, new.template) == (
            old.to_address,
            old.subject,
            old.template,
        )
        event = session.scalar(select(AuditEvent).where(AuditEvent.reply_id == new.id))
        assert event is not None
        assert event.action == "outbox_resend"
        assert event.detail["resent_reply_id"] == old.id
        assert event.actor == NAME
        new_id = new.id
    page = signed_in.get("/outbox?state=bounced").text
    assert f'href="#r{new_id}"' in page  # the old row says what it was resent as


def test_mark_dealt_with_records_the_reason(
    desk: RunningDesk, signed_in: Client, letters: dict[str, int]
) -> None:
    token = signed_in.token("/outbox")
    reply_id = letters["uncertain"]
    form = {"csrf_token": token, "reason": "已电话确认收到", "confirm": "yes"}
    assert signed_in.post(f"/outbox/{reply_id}/dealt", form).status == 303
    again = signed_in.post(f"/outbox/{reply_id}/dealt", form)
    assert again.status == 400
    assert "dealt with already" in again.text
    assert signed_in.post("/outbox/99999999/dealt", form).status == 404
    assert signed_in.post(f"/outbox/{2**64}/resend", form).status == 404  # beyond 64 bits
    page = signed_in.get("/outbox?state=uncertain").text
    assert "已电话确认收到" in page
    with desk.app.db.transaction() as session:
        event = session.scalar(
            select(AuditEvent).where(
                AuditEvent.reply_id == reply_id, AuditEvent.action == "letter_dealt_with"
            )
        )
        assert event is not None
        assert event.actor == NAME
        assert event.reason == "已电话确认收到"
        reply = session.get(Reply, reply_id)
        assert reply is not None
        assert reply.state == "uncertain"  # the outbox is left as it was


# --------------------------------------------------------------------------- in a real browser


@pytest.mark.parametrize("width", [1366, 390])
def test_other_mail_and_outbox_in_chromium(
    browser: Any,
    desk: RunningDesk,
    screenshots: Path,
    letters: dict[str, int],
    width: int,
) -> None:
    subject = f"请查收（{width}）"  # a mail of its own to deal with, whatever ran before
    raw = proposal("outlook", *LI_NA, files="misnamed", subject=subject)
    deliver(desk.root / "Maildir", raw, july(27, 8 + width % 7))
    Daemon(desk.app).once()
    context = browser.new_context(base_url=desk.url, viewport={"width": width, "height": 900})
    page = context.new_page()
    page.set_default_timeout(15_000)
    try:
        sign_in(page)
        page.get_by_role("link", name="其他邮件 Other mail").click()
        page.wait_for_url(re.compile(r"/mails$"))
        shoot(page, screenshots, f"other-mail-{width}")
        rows = page.locator("table.mails tbody tr.open")
        count = rows.count()
        assert count > 0
        page.get_by_role("link", name=subject).click()
        page.wait_for_url(re.compile(r"/mails/\d+$"))
        shoot(page, screenshots, f"other-mail-one-{width}")
        form = page.locator("form", has=page.get_by_role("button", name="已处理 Mark handled"))
        form.get_by_label("已处理的理由 Reason it is handled").fill(f"浏览器测试 {width}")
        form.get_by_role("button", name="已处理 Mark handled").click()
        assert "done=" not in page.url  # the unticked box stops the form in the browser
        form.get_by_label("确认 Confirm").check()
        form.get_by_role("button", name="已处理 Mark handled").click()
        page.wait_for_url(re.compile(r"done=handled"))
        assert "已标记为已处理" in page.get_by_role("status").inner_text()
        page.goto("/mails")
        assert page.locator("table.mails tbody tr.open").count() == count - 1

        page.get_by_role("link", name="发件箱 Outbox").click()
        page.wait_for_url(re.compile(r"/outbox$"))
        shoot(page, screenshots, f"outbox-{width}")
        page.goto("/outbox?state=failed")
        row = page.locator(f"tr#r{letters['failed']}")
        if row.locator("div.resent").count() == 0:
            row.locator("details.acts summary").click()
            row.get_by_label(f"重发的理由 Reason: Send again #{letters['failed']}").fill("重试")
            row.get_by_label(f"确认重发 Confirm: Send again #{letters['failed']}").check()
            row.get_by_role("button", name="重发 Send again").click()
            page.wait_for_url(re.compile(r"done=outbox_resent"))
            assert "放入发件箱" in page.get_by_role("status").inner_text()
        assert page.locator(f"tr#r{letters['failed']} div.resent").count() == 1
        if width == 390:  # usable on a telephone: nothing wider than the screen
            for path in ("/mails", "/outbox"):
                page.goto(path)
                assert page.evaluate("document.documentElement.scrollWidth") <= width, path
                widest = (
                    "Math.max(...[...document.querySelectorAll('table')].map(t => t.scrollWidth))"
                )
                assert page.evaluate(widest) <= width, path
    finally:
        context.close()


# --------------------------------------------------------------------------- on both databases


def test_other_mail_and_the_outbox_on_sqlite_and_postgresql(
    tmp_path: Path, db_url: str, make_app: AppFactory
) -> None:
    """The desk's queries and acts for other mail and the outbox, without the browser."""
    app = make_app(settings_values(tmp_path, db_url))
    maildir = tmp_path / "Maildir"
    deliver(maildir, proposal("foxmail", *LI_NA, files="good"), july(20))
    deliver(maildir, proposal("foxmail", *LI_NA, files="misnamed", subject="请查收"), july(21))
    deliver(maildir, proposal("qqmail", *LI_NA, files="none", subject="补充"), july(21, 12))
    Daemon(app).once()
    now = july(22)
    with app.db.transaction() as session:
        user = add_user(session, NAME, "a long enough password")
        session.flush()
        actor = Actor(user.id, user.name)
        call = app.call
        assert len(unmatched_mails(session, call)) == 2
        reference = session.scalars(select(Submission.reference)).one()
    with app.db.transaction() as session:
        mails = sorted(unmatched_mails(session, app.call), key=lambda m: m.id)
        attach(
            session, app, mails[0], AttachTo(reference, as_version=True), Acting(actor, "r", now)
        )
        mark_handled(session, mails[1], Acting(actor, "已电话说明", now))
        assert unmatched_mails(session, app.call) == []
        assert [m.id for m in unmatched_mails(session, app.call, handled=True)] == [mails[1].id]
        submission = session.scalars(select(Submission)).one()
        assert submission.current_version == 2
        assert mails[0].attached_as == "version"
        first = session.scalars(select(Reply).order_by(Reply.id)).first()
        assert first is not None
        first.state = "failed"
        failed_id = first.id
    with app.db.transaction() as session:
        again = resend(session, app, failed_id, Acting(actor, "再试", now))
        mark_dealt_with(session, app, failed_id, Acting(actor, "已电话通知", now))
        page = outbox_page(session, app.call.id, "failed", 1)
        assert [letter.reply.id for letter in page.letters] == [failed_id]
        [letter] = page.letters
        assert letter.reference == reference
        assert letter.resent_as == again.id
        assert letter.dealt_with is not None
        assert letter.dealt_with.reason == "已电话通知"
        assert page.counts["failed"] == 1
        assert page.counts["waiting"] >= 1
