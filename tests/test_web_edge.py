"""The desk's edge: body limits, ids, names that cannot reorder a page, phones, refusals in two languages."""

from __future__ import annotations

import re
import socket
from collections.abc import Iterator
from email.message import EmailMessage
from email.utils import format_datetime, make_msgid
from typing import Any

import pytest
from sqlalchemy import select

from mailbot.ledger.attention import UNMATCHED_KINDS
from mailbot.service.daemon import Daemon
from mailbot.sources.maildir import deliver
from mailbot.store.models import Attachment, Mail, Submission
from mailbot.web.app import create_app
from mailbot.web.edge import MAX_BODY, MAX_FORM, MAX_LOGIN_FORM
from mailbot.web.server import BackgroundServer
from tests.conftest import ROOT
from tests.daemon_support import july
from tests.proxy_support import DeskProcess
from tests.web_support import (
    HOSTILE_FILENAME,
    HOSTILE_PI,
    NAME,
    PASSWORD,
    Client,
    Clock,
    RunningDesk,
    filled_app,
    form_token,
)

# Every test here works on a desk filled through the whole pipeline.
pytestmark = pytest.mark.slow

RLO = "\u202e"  # RIGHT-TO-LEFT OVERRIDE: "gpj.exe" reads "exe.jpg"
ARTIFACTS = ROOT / "tests" / "artifacts"


def reversed_names_mail() -> bytes:
    """Mail tied to no submission whose sender name, subject and file name hold U+202E."""
    mail = EmailMessage()
    mail["From"] = f'"{RLO}gnaw.gnaw" <rtl@example.org>'
    mail["To"] = "anso2021program@anso.org.cn"
    mail["Subject"] = f"材料 {RLO}fdp.exe"
    mail["Date"] = format_datetime(july(26, 9))
    mail["Message-ID"] = make_msgid(domain="example.org")
    mail.set_content("见附件。")
    mail.add_attachment(
        b"MZ not a pdf", maintype="application", subtype="octet-stream", filename=f"cv{RLO}fdp.exe"
    )
    return mail.as_bytes()


@pytest.fixture(scope="module")
def desk(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningDesk]:
    root = tmp_path_factory.mktemp("edge") / "demo"
    app = filled_app(root)
    deliver(root / "Maildir", reversed_names_mail(), july(26, 9))
    Daemon(app).once()
    clock = Clock()
    flask = create_app(app, clock=clock)
    try:
        with BackgroundServer(flask) as server:
            yield RunningDesk(app, flask, server.url, clock, root)
    finally:
        app.close()


@pytest.fixture
def signed_in(desk: RunningDesk) -> Client:
    client = Client(desk.url)
    assert client.login().status == 303
    return client


def hostile_reference(desk: RunningDesk) -> str:
    with desk.app.db.transaction() as session:
        return str(
            session.scalar(
                select(Submission.reference)
                .join(Submission.mails)
                .join(Mail.attachments)
                .where(Attachment.filename == HOSTILE_FILENAME)
            )
        )


# --------------------------------------------------------------------------- bodies


def test_waitress_refuses_a_huge_body_before_reading_it(desk: RunningDesk) -> None:
    with (
        DeskProcess(desk.root / "mailbot.toml") as process,
        socket.create_connection(("127.0.0.1", process.port), timeout=30) as connection,
    ):
        # Eight megabytes announced, none sent: the answer comes at once (waitress by default
        # accepts up to 1 GB and would wait for them all).
        connection.sendall(
            b"POST /login HTTP/1.1\r\nHost: 127.0.0.1\r\n"
            b"Content-Type: application/x-www-form-urlencoded\r\n"
            b"Content-Length: 8388608\r\n\r\n"
        )
        head = connection.recv(4096)
    assert head.startswith(b"HTTP/1.1 413"), head[:200]
    assert MAX_BODY < 8388608


def test_a_sign_in_form_over_64_kb_is_refused_in_both_languages(desk: RunningDesk) -> None:
    client = Client(desk.url)
    token = form_token(client.get("/login").text)
    padding = "x" * MAX_LOGIN_FORM
    answer = client.post("/login", {"csrf_token": token, "name": NAME, "password": padding})
    assert answer.status == 413
    assert "内容过大" in answer.text
    assert "Too large" in answer.text
    assert client.login().status == 303  # a form of ordinary size still signs in


def test_a_form_over_the_limit_is_refused_once_signed_in(
    desk: RunningDesk, signed_in: Client
) -> None:
    reference = hostile_reference(desk)
    token = signed_in.token()
    note = {"csrf_token": token, "reason": "长" * MAX_FORM}
    answer = signed_in.post(f"/submissions/{reference}/note", note)
    assert answer.status == 413
    assert "内容过大" in answer.text
    # Past the sign-in's limit but under the desk's: the form is read (and judged on its merits).
    ordinary = {"csrf_token": token, "reason": "x" * (MAX_LOGIN_FORM + 1)}
    assert signed_in.post(f"/submissions/{reference}/note", ordinary).status != 413


# --------------------------------------------------------------------------- ids


@pytest.mark.parametrize(
    "path",
    [
        "/mails/99999999999999999999",
        "/mails/9223372036854775808",
        "/mails/0",
        "/mails/-1",
        "/mails/abc",
        "/mails/%EF%BC%91%EF%BC%92",  # full-width digits
        "/files/{sha256}?version=99999999999999999999",
        "/files/{sha256}?mail=18446744073709551616",
        "/files/{sha256}?version=abc",
    ],
)
def test_an_id_that_cannot_be_one_is_not_found(
    desk: RunningDesk, signed_in: Client, path: str
) -> None:
    with desk.app.db.transaction() as session:
        sha256 = session.scalars(select(Attachment.sha256)).first()
    answer = signed_in.get(path.format(sha256=sha256))
    assert answer.status == 404, (path, answer.status)
    assert "找不到" in answer.text
    assert "Not found" in answer.text


def test_a_post_to_an_id_past_64_bits_is_not_found(signed_in: Client) -> None:
    token = signed_in.token()
    answer = signed_in.post(
        "/mails/99999999999999999999/note", {"csrf_token": token, "reason": "x"}
    )
    assert answer.status == 404


# --------------------------------------------------------------------------- names


def every_page(desk: RunningDesk) -> list[str]:
    """Every page a person can open: each submission, each mail, each list, a letter, a 404."""
    with desk.app.db.transaction() as session:
        references = list(session.scalars(select(Submission.reference)))
        mail_ids = list(session.scalars(select(Mail.id)))
    hostile = hostile_reference(desk)
    return [
        "/",
        "/log",
        f"/log?q={hostile}",
        "/mails",
        *(f"/mails?kind={kind}" for kind in UNMATCHED_KINDS),
        *(f"/submissions/{reference}" for reference in references),
        f"/submissions/{hostile}/write?template=message",
        *(f"/mails/{mail_id}" for mail_id in mail_ids),
        "/no/such/page",
    ]


def test_no_page_shows_a_raw_right_to_left_override(desk: RunningDesk, signed_in: Client) -> None:
    pages = every_page(desk)
    assert len(pages) > 20
    escaped = []
    for path in pages:
        answer = signed_in.get(path)
        assert answer.status in (200, 404), (path, answer.status)
        assert RLO not in answer.text, path
        if "\\u202e" in answer.text:
            escaped.append(path)
    # The names are there, escaped: the submission with the file, and the mail tied to none.
    assert f"/submissions/{hostile_reference(desk)}" in escaped
    assert any(path.startswith("/mails/") for path in escaped)
    assert "cv\\u202efdp.exe" in signed_in.get(f"/mails/{reversed_mail_id(desk)}").text


def reversed_mail_id(desk: RunningDesk) -> int:
    with desk.app.db.transaction() as session:
        mail_id = session.scalar(select(Mail.id).where(Mail.sender == "rtl@example.org"))
    assert mail_id is not None
    return mail_id


# --------------------------------------------------------------------------- refusals


def test_refusals_say_what_happened_in_chinese_then_english(
    desk: RunningDesk, signed_in: Client
) -> None:
    token = signed_in.token()
    reference = hostile_reference(desk)
    forbidden = signed_in.post(f"/submissions/{reference}/note", {"csrf_token": "x" * 43})
    not_found = signed_in.get("/submissions/ANSO2021-9999")
    cases = {
        403: (forbidden, "表单已过期", "The form expired"),
        404: (not_found, "没有这个页面", "There is no such page"),
    }
    for code, (answer, zh, en) in cases.items():
        assert answer.status == code
        assert zh in answer.text
        assert en in answer.text
        assert answer.text.index(zh) < answer.text.index(en)
    assert "CSRF token missing" not in forbidden.text
    assert signed_in.post(f"/submissions/{reference}/note", {"csrf_token": token}).status != 403


# --------------------------------------------------------------------------- a phone


@pytest.mark.parametrize("width", [390, 1366])
def test_overview_mail_and_submission_pages_fit_the_screen(
    browser: Any, desk: RunningDesk, width: int
) -> None:
    context = browser.new_context(base_url=desk.url, viewport={"width": width, "height": 844})
    page = context.new_page()
    page.set_default_timeout(15_000)
    try:
        page.goto("/login")
        page.get_by_label("用户名").fill(NAME)
        page.get_by_label("密码").fill(PASSWORD)
        page.get_by_role("button", name="登录 Sign in").click()
        page.wait_for_url(re.compile(r"/$"))
        with desk.app.db.transaction() as session:
            references = list(session.scalars(select(Submission.reference)))
        ARTIFACTS.mkdir(exist_ok=True)
        mail = f"/mails/{reversed_mail_id(desk)}"
        for path in ["/", mail, *(f"/submissions/{reference}" for reference in references)]:
            page.goto(path)
            scroll_width = page.evaluate("document.documentElement.scrollWidth")
            assert scroll_width <= width, (path, scroll_width)
        page.goto("/")
        page.screenshot(path=str(ARTIFACTS / f"overview-{width}.png"), full_page=True)
        page.goto(mail)
        page.screenshot(path=str(ARTIFACTS / f"mail-{width}.png"), full_page=True)
        page.goto("/mails/99999999999999999999")
        page.screenshot(path=str(ARTIFACTS / f"not-found-{width}.png"), full_page=True)
        page.goto(f"/submissions/{hostile_reference(desk)}")
        page.screenshot(path=str(ARTIFACTS / f"submission-{width}.png"), full_page=True)
        assert HOSTILE_PI in page.locator("h1").inner_text()
    finally:
        context.close()
