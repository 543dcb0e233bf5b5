"""Decisions and letters at the desk that cannot contradict: what resend sends, which buttons
show, confirmation and Post/Redirect/Get, refusals in both languages, letter titles, a
person's letter as a person's mail, a draft that outlives its session, one status per card.
"""

from __future__ import annotations

import email
import email.message
import email.policy
import html
import re
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select

from mailbot.service.daemon import Daemon
from mailbot.store.models import AuditEvent, DeskDraft, Mail, Reply, Submission
from mailbot.web.auth import SESSION_IDLE, add_user
from tests.test_web import shoot, sign_in
from tests.web_support import NAME, PASSWORD, Client, RunningDesk, form_token, running_desk

# Every test here works on a desk filled through the whole pipeline.
pytestmark = pytest.mark.slow

OTHER, OTHER_PASSWORD = "li.ming", "another correct horse battery"


@pytest.fixture(scope="module")
def desk(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningDesk]:
    with running_desk(tmp_path_factory.mktemp("letters") / "demo") as running:
        with running.app.db.transaction() as session:
            add_user(session, OTHER, OTHER_PASSWORD)
        yield running


@pytest.fixture
def signed_in(desk: RunningDesk) -> Client:
    client = Client(desk.url)
    assert client.login().status == 303
    return client


@pytest.fixture
def page(browser: Any, desk: RunningDesk) -> Iterator[Any]:
    context = browser.new_context(base_url=desk.url, viewport={"width": 1366, "height": 900})
    page = context.new_page()
    page.set_default_timeout(15_000)
    yield page
    context.close()


def reference_of(desk: RunningDesk, pi: str) -> str:
    with desk.app.db.transaction() as session:
        return str(session.scalar(select(Submission.reference).where(Submission.pi == pi)))


def replies_to(desk: RunningDesk, reference: str) -> list[tuple[int, str]]:
    with desk.app.db.transaction() as session:
        submission = session.scalar(select(Submission).where(Submission.reference == reference))
        assert submission is not None
        rows = session.execute(
            select(Reply.id, Reply.template)
            .where(Reply.submission_id == submission.id)
            .order_by(Reply.id)
        )
        return [(reply_id, template) for reply_id, template in rows]


def status_of(desk: RunningDesk, reference: str) -> str:
    with desk.app.db.transaction() as session:
        return str(
            session.scalar(select(Submission.status).where(Submission.reference == reference))
        )


def confirm(client: Client, reference: str, act: str, reason: str) -> str:
    """Take a confirmed act the way the confirmation page posts it; the redirect's target."""
    token = client.token(f"/submissions/{reference}")
    answer = client.post(
        f"/submissions/{reference}/{act}",
        {"csrf_token": token, "reason": reason, "confirm": "yes"},
    )
    assert answer.status == 303, answer.text
    return answer.location


def write(client: Client, reference: str, template: str, body: str) -> str:
    page = client.get(f"/submissions/{reference}/write?template={template}").text
    subject = re.search(r'name="subject" value="([^"]*)"', page)
    draft = re.search(r'name="draft" value="([^"]+)"', page)
    assert subject
    assert draft
    answer = client.post(
        f"/submissions/{reference}/write",
        {
            "csrf_token": form_token(page),
            "template": template,
            "draft": draft.group(1),
            "subject": html.unescape(subject.group(1)),
            "body": body,
            "reason": "秘书处决定后通知申请人",
            "confirm": "yes",
        },
    )
    assert answer.status == 303, answer.text
    return answer.location


# --------------------------------------------------------------------------- resend


def test_after_a_decision_resend_sends_the_decisions_letter_never_the_old_verdict(
    desk: RunningDesk, signed_in: Client
) -> None:
    reference = reference_of(desk, "赵磊")  # needs correction: told so by mailbot's reply
    assert [t for _, t in replies_to(desk, reference)] == ["needs_correction"]
    confirm(signed_in, reference, "accept", "材料齐全，经处长同意受理。")
    assert status_of(desk, reference) == "accepted_by_decision"

    # No letter has told the decision yet: resend refuses rather than resend the old verdict.
    landing = confirm(signed_in, reference, "resend", "申请人说没收到")
    assert "refused=no_letter" in landing
    refused = signed_in.get(landing).text
    assert "尚未给申请人发过与当前状态" in refused
    assert "write one first" in refused
    assert 'value="yes"' not in refused  # no confirm button to press
    assert len(replies_to(desk, reference)) == 1
    page = signed_in.get(f"/submissions/{reference}").text
    assert "起草「受理决定通知」" in page  # the desk offers the letter that tells the decision

    write(signed_in, reference, "decision_accepted", "经秘书处审核，您的建议书已予受理。")
    confirm(signed_in, reference, "resend", "申请人说没收到")
    templates = [t for _, t in replies_to(desk, reference)]
    assert templates == ["needs_correction", "desk/decision_accepted", "desk/decision_accepted"]
    with desk.app.db.transaction() as session:
        resent = session.scalars(select(Reply).order_by(Reply.id.desc())).first()
        assert resent is not None
        letter = email.message_from_bytes(resent.raw, policy=email.policy.default)
        assert isinstance(letter, email.message.EmailMessage)
        body = letter.get_body()
        assert body is not None
        assert "已予受理" in body.get_content()


# --------------------------------------------------------------------------- buttons and confirmation


def test_buttons_follow_the_status_and_every_decision_asks_to_confirm(
    page: Any, desk: RunningDesk, screenshots: Path
) -> None:
    sign_in(page)
    page.goto(f"/submissions/{reference_of(desk, '张喆')}")  # accepted
    actions = page.locator(".actions")
    assert actions.get_by_role("link", name=re.compile("决定受理")).count() == 0
    assert actions.get_by_role("link", name=re.compile("撤回")).count() == 1

    reference = reference_of(desk, "<b>Mallory</b>")  # needs correction
    page.goto(f"/submissions/{reference}")
    shoot_both(page, screenshots)
    accept = page.locator(".actions").get_by_role("link", name=re.compile("决定受理"))
    assert "quiet" not in (accept.get_attribute("class") or "")  # the main act for this status
    accept.click()
    page.wait_for_url(re.compile(rf"/submissions/{reference}/accept$"))
    assert status_of(desk, reference) == "needs_correction"  # nothing done before confirming
    assert "→" in page.locator("#status").inner_text()
    page.get_by_label("理由 Reason").fill("经处长同意受理。")
    page.get_by_role("button", name=re.compile("^确认")).click()
    page.wait_for_url(re.compile(r"done=accepted"))
    assert status_of(desk, reference) == "accepted_by_decision"
    with desk.app.db.transaction() as session:
        before = session.scalar(select(func.count(AuditEvent.id)))
    page.reload()  # Post/Redirect/Get: a refresh sends nothing again
    with desk.app.db.transaction() as session:
        assert session.scalar(select(func.count(AuditEvent.id))) == before
    actions = page.locator(".actions")
    assert actions.get_by_role("link", name=re.compile("决定受理")).count() == 0


def shoot_both(page: Any, folder: Path) -> None:
    """The submission page at a laptop's width and a phone's, for the artifacts."""
    shoot(page, folder, "submission-1366")
    page.set_viewport_size({"width": 390, "height": 844})
    shoot(page, folder, "submission-390")
    page.set_viewport_size({"width": 1366, "height": 900})


def test_a_refused_act_redirects_and_says_why_in_both_languages(
    desk: RunningDesk, signed_in: Client
) -> None:
    accepted = reference_of(desk, "张喆")
    landing = confirm(signed_in, accepted, "accept", "再受理一次")
    assert "refused=not_now" in landing
    assert status_of(desk, accepted) == "accepted"
    text = html.unescape(signed_in.get(landing).text)
    assert "不能决定受理" in text
    assert "you cannot accept by decision" in text
    assert "已受理" in text
    assert "accepted_by_decision" not in text.split("<main>")[1]

    late = reference_of(desk, "陈镕")
    landing = confirm(signed_in, late, "withdraw", "   ")
    assert "refused=no_reason" in landing
    assert status_of(desk, late) == "late"
    text = signed_in.get(landing).text
    assert "请说明理由" in text
    assert "please give a reason" in text

    expired = Client(desk.url)  # a form sent after the session ended: back to its page
    assert expired.post(f"/submissions/{late}/withdraw", {"reason": "撤回"}).location == (
        f"/login?next=/submissions/{late}/withdraw"
    )
    token = signed_in.token(f"/submissions/{late}")
    unconfirmed = signed_in.post(
        f"/submissions/{late}/withdraw", {"csrf_token": token, "reason": "撤回"}
    )
    assert unconfirmed.status == 303
    assert unconfirmed.location.endswith(f"/{late}/withdraw")
    assert status_of(desk, late) == "late"  # a form without the confirmation only asks


# --------------------------------------------------------------------------- letters


def test_the_template_picker_shows_titles_not_code_names(
    desk: RunningDesk, signed_in: Client
) -> None:
    page = signed_in.get(f"/submissions/{reference_of(desk, '李娜')}").text
    picker = re.search(r'<select name="template".*?</select>', page, re.S)
    assert picker
    options = dict(re.findall(r'<option value="(\w+)"[^>]*>([^<]+)</option>', picker.group(0)))
    assert options["decision_accepted"] == "受理决定通知 Decision: accepted"
    assert options["message"] == "自由撰写的信件 A letter of your own"
    for name, title in options.items():
        assert name not in title
    summaries = re.findall(r"<summary>回复.*?</summary>", page, re.S)
    assert summaries
    assert all("needs_correction" not in s for s in summaries)


def test_a_letter_a_person_writes_goes_out_as_a_persons_mail_in_the_thread(
    desk: RunningDesk, signed_in: Client
) -> None:
    reference = reference_of(desk, "李娜")
    write(signed_in, reference, "message", "李老师您好：\n\n请补充合作协议的中文译本。\n")
    with desk.app.db.transaction() as session:
        letter = session.scalars(
            select(Reply).where(Reply.template == "desk/message").order_by(Reply.id.desc())
        ).first()
        assert letter is not None
        assert letter.state == "pending"
        submission = session.scalar(select(Submission).where(Submission.reference == reference))
        assert submission is not None
        latest = session.scalars(
            select(Mail).where(Mail.submission_id == submission.id).order_by(Mail.id.desc())
        ).first()
        assert latest is not None
        message_id, applicant = latest.message_id, latest.sender
    trail = signed_in.get(f"/submissions/{reference}").text.split('id="audit"')[1]
    assert "自由撰写的信件 <" in trail or "自由撰写的信件</span>" in trail
    assert "desk/message" not in trail
    Daemon(desk.app).once()  # the daemon sends it, through the outbox like any reply
    with desk.app.db.transaction() as session:
        sent = session.get(Reply, letter.id)
        assert sent is not None
        assert sent.state == "sent"
    delivered = [
        email.message_from_bytes(path.read_bytes(), policy=email.policy.default)
        for path in desk.app.outbox_dir.glob("*.eml")
    ]
    (out,) = [m for m in delivered if m["Message-ID"] == letter.message_id]
    assert out["To"] == applicant
    assert out["Auto-Submitted"] is None  # a person's mail, not an automatic one
    assert out["X-Auto-Response-Suppress"] == "All"
    assert out["In-Reply-To"] == message_id
    assert message_id in out["References"].split()
    # mailbot's own replies stay automatic
    auto = [m for m in delivered if m["To"] == applicant and m["Message-ID"] != letter.message_id]
    assert auto
    assert all(m["Auto-Submitted"] == "auto-replied" for m in auto)


def test_a_letter_typed_while_the_session_expired_is_restored_after_sign_in(
    page: Any, desk: RunningDesk
) -> None:
    reference = reference_of(desk, "王堃")
    text = "王老师您好：\n\n这封信写了很久，会话已过期，但一个字也不应丢失。\n"
    sign_in(page)
    page.goto(f"/submissions/{reference}/write?template=message")
    page.get_by_role("textbox", name="正文 Text").fill(text)
    page.get_by_role("textbox", name=re.compile("^理由")).fill("提醒补充材料")
    page.get_by_role("checkbox", name=re.compile("已核对")).check()
    desk.clock.offset += SESSION_IDLE + timedelta(minutes=1)
    try:
        page.get_by_role("button", name=re.compile("放入发件箱")).click()
        page.wait_for_url(re.compile(r"/login"))
        assert [t for _, t in replies_to(desk, reference) if t == "desk/message"] == []

        other = Client(desk.url)  # a colleague signing in does not see it
        assert other.login(OTHER, OTHER_PASSWORD).status == 303
        theirs = other.get(f"/submissions/{reference}/write?template=message").text
        assert "一个字也不应丢失" not in theirs

        page.get_by_label("用户名").fill(NAME)
        page.get_by_label("密码").fill(PASSWORD)
        page.get_by_role("button", name="登录 Sign in").click()
        page.wait_for_url(re.compile(rf"/submissions/{reference}/write"))
        assert page.get_by_role("textbox", name="正文 Text").input_value() == text
        assert page.get_by_role("textbox", name=re.compile("^理由")).input_value() == "提醒补充材料"
        assert "已恢复您未发送的信件" in page.get_by_role("status").inner_text()
        page.get_by_role("checkbox", name=re.compile("已核对")).check()
        page.get_by_role("button", name=re.compile("放入发件箱")).click()
        page.wait_for_url(re.compile(r"done=written"))
    finally:
        desk.clock.offset -= SESSION_IDLE + timedelta(minutes=1)
    assert [t for _, t in replies_to(desk, reference)][-1] == "desk/message"
    with desk.app.db.transaction() as session:
        assert (
            session.scalar(select(func.count(DeskDraft.id)).where(DeskDraft.kept_at.is_not(None)))
            == 0
        )


# --------------------------------------------------------------------------- one card, one status


def test_each_card_shows_one_status(desk: RunningDesk, signed_in: Client) -> None:
    page = signed_in.get(f"/submissions/{reference_of(desk, '王堃')}").text
    cards = re.findall(r'<section class="card mail[^"]*".*?</section>', page, re.S)
    assert len(cards) == 2
    for card in cards:
        shown = set(re.findall(r'<span class="status s-(\w+)"', card))
        assert len(shown) == 1, shown
    # The completion: its own mail lacked the Word file, the version (both mails' files) is whole.
    assert "s-accepted" in cards[0]
    assert "与上一版本的文件合并判定" in cards[0]
    top = re.search(r'<dd id="status">.*?</dd>', page, re.S)
    assert top
    assert "申请状态" in page
    assert "s-accepted" in top.group(0)


def test_after_a_withdrawal_the_desk_offers_the_withdrawal_letter(
    desk: RunningDesk, signed_in: Client
) -> None:
    reference = reference_of(desk, "陈镕")  # late: told so by mailbot's reply
    confirm(signed_in, reference, "withdraw", "申请人来信撤回")
    assert status_of(desk, reference) == "withdrawn"
    page = signed_in.get(f"/submissions/{reference}").text
    assert "起草「撤回确认」" in page
    assert '<option value="withdrawal_confirmed" selected>' in page
    assert 'href="/submissions/' + reference + '/resend"' not in page  # the late letter is past
    assert "撤回… Withdraw…" not in page
    assert "决定受理… Accept by decision…" in page
