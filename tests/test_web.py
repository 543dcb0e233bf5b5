"""The intake desk (`mailbot web`): in a real Chromium, and over plain HTTP for each security point."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from sqlalchemy import select

from mailbot.cli import main
from mailbot.store.models import Attachment, AuditEvent, Mail, Reply, Submission, User
from mailbot.web.files import content_disposition, safe_filename
from tests.conftest import ROOT
from tests.web_support import (
    BOUNCED_PI,
    HOSTILE_FILENAME,
    HOSTILE_INSTITUTION,
    HOSTILE_PI,
    HOSTILE_SUBJECT,
    NAME,
    PASSWORD,
    Client,
    RunningDesk,
    running_desk,
)

# Nearly every test here works on a desk filled through the whole pipeline.
pytestmark = pytest.mark.slow

ARTIFACTS = ROOT / "tests" / "artifacts"
LI_NA = ("中国科学院微生物研究所", "李娜")


@pytest.fixture(scope="module")
def desk(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningDesk]:
    with running_desk(tmp_path_factory.mktemp("desk") / "demo") as running:
        yield running


@pytest.fixture
def client(desk: RunningDesk) -> Client:
    return Client(desk.url)


@pytest.fixture
def signed_in(desk: RunningDesk) -> Client:
    client = Client(desk.url)
    assert client.login().status == 303
    return client


def reference_of(desk: RunningDesk, pi: str) -> str:
    with desk.app.db.transaction() as session:
        return str(session.scalar(select(Submission.reference).where(Submission.pi == pi)))


# --------------------------------------------------------------------------- in a real browser


def shoot(page: Any, folder: Path, name: str) -> None:
    """A full-page screenshot under pytest's tmp dir, copied to tests/artifacts/."""
    path = folder / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    ARTIFACTS.mkdir(exist_ok=True)
    shutil.copy(path, ARTIFACTS / path.name)


@pytest.fixture
def page(browser: Any, desk: RunningDesk) -> Iterator[Any]:
    context = browser.new_context(
        base_url=desk.url, viewport={"width": 1400, "height": 1000}, accept_downloads=True
    )
    page = context.new_page()
    page.set_default_timeout(15_000)
    dialogs: list[str] = []

    def dismiss(dialog: Any) -> None:
        dialogs.append(dialog.message)
        dialog.dismiss()

    page.on("dialog", dismiss)
    page.dialogs = dialogs
    yield page
    context.close()
    assert dialogs == [], f"a page ran script: {dialogs}"


def sign_in(page: Any) -> None:
    page.goto("/")
    assert "/login" in page.url
    page.get_by_label("用户名").fill(NAME)
    page.get_by_label("密码").fill(PASSWORD)
    page.get_by_role("button", name="登录 Sign in").click()
    page.wait_for_url(re.compile(r"/$"))


def test_a_newcomer_finds_a_submission_and_its_pdf_within_a_minute(
    page: Any, desk: RunningDesk, screenshots: Path, tmp_path: Path
) -> None:
    institution, pi = LI_NA
    started = time.monotonic()
    sign_in(page)
    with desk.app.db.transaction() as session:
        total = len(session.scalars(select(Submission.id)).all())
    assert page.locator("#total").inner_text() == str(total)
    assert "已截止" in page.locator("#deadline").inner_text()
    shoot(page, screenshots, "overview")

    page.get_by_role("link", name="登记表 Intake log").click()
    page.get_by_label("状态").select_option("needs_correction")
    page.get_by_role("button", name="筛选 Filter").click()
    statuses = page.locator("table.log tbody td[data-column=status]").all_inner_texts()
    assert statuses
    assert all("需要更正" in text for text in statuses)

    page.get_by_role("searchbox", name="查找 Find").fill(pi)
    page.get_by_role("button", name="查找 Find").click()
    rows = page.locator("table.log tbody tr")
    assert rows.count() == 1
    assert institution in rows.first.inner_text()
    rows.first.get_by_role("link").click()
    page.wait_for_url(re.compile(r"/submissions/ANSO2021-\d{4}(\?.*)?$"))
    assert pi in page.locator("h1").inner_text()

    link = page.locator("section.mail").first.locator("a.download[data-role=pdf]")
    sha256 = re.search(r"/files/([0-9a-f]{64})", link.get_attribute("href") or "")
    assert sha256
    with page.expect_download() as download_info:
        link.click()
    download = download_info.value
    saved = tmp_path / "download.pdf"
    download.save_as(saved)
    assert download.suggested_filename == f"{institution}+{pi}.pdf"
    assert saved.read_bytes() == desk.app.blobs.get(sha256.group(1))
    assert time.monotonic() - started < 60
    page.locator("details.reply summary").first.click()  # the reply's text, for the picture
    shoot(page, screenshots, "submission")


def test_accept_by_decision_shows_the_audit_line(
    page: Any, desk: RunningDesk, screenshots: Path
) -> None:
    reference = reference_of(desk, "赵磊")  # needs correction: misnamed subject
    with desk.app.db.transaction() as session:
        before = session.scalar(select(Submission.status).where(Submission.reference == reference))
    sign_in(page)
    page.goto(f"/submissions/{reference}")
    page.locator(".actions").get_by_role("link", name=re.compile("决定受理")).click()
    page.get_by_label("理由 Reason").fill("主题格式有误，但材料齐全；经处长同意受理。")
    page.get_by_role("button", name=re.compile("^确认决定受理")).click()
    page.wait_for_url(re.compile(r"done=accepted"))
    assert "已记录：决定受理" in page.get_by_role("status").inner_text()
    assert "决定受理" in page.locator("#status").inner_text()
    line = page.locator("tr.audit-line").first
    text = line.inner_text()
    assert NAME in text
    assert "主题格式有误" in text
    assert "需要更正 Needs correction → 决定受理" in text
    change = line.locator(".change")
    assert change.get_attribute("data-from") == before
    assert change.get_attribute("data-to") == "accepted_by_decision"
    shoot(page, screenshots, "accepted-by-decision")


def test_hostile_text_shows_as_text_in_the_browser(
    page: Any, desk: RunningDesk, screenshots: Path
) -> None:
    sign_in(page)
    page.goto("/mails?kind=unparseable")
    shoot(page, screenshots, "other-mail")
    subject = page.locator("td.subject", has_text="alert(1)")
    assert subject.inner_text() == HOSTILE_SUBJECT
    subject.get_by_role("link").click()
    assert page.locator("dd.subject").inner_text() == HOSTILE_SUBJECT
    assert HOSTILE_PI in page.locator("dl.facts").inner_text()
    page.goto(f"/log?q={reference_of(desk, HOSTILE_PI)}")
    assert HOSTILE_INSTITUTION in page.locator("table.log").inner_text()
    assert page.locator("table.log img, table.log b").count() == 0


def test_a_bounce_shows_beside_the_reply_it_returns(desk: RunningDesk, signed_in: Client) -> None:
    page = signed_in.get(f"/submissions/{reference_of(desk, BOUNCED_PI)}").text
    assert "退信 Bounced" in page
    assert "Undelivered Mail Returned to Sender" in page
    bounce_id = re.search(r'href="/mails/(\d+)">MAILER-DAEMON', page)
    assert bounce_id
    bounce_page = signed_in.get(f"/mails/{bounce_id.group(1)}").text
    assert "退回的回复" in bounce_page
    assert "wangkun@mail.iap.ac.cn" in bounce_page
    assert "需留意" in signed_in.get("/mails?kind=flagged").text


# --------------------------------------------------------------------------- every page needs a login


def sample_urls(desk: RunningDesk) -> list[tuple[str, str]]:
    """Every route of the desk, as (method, path) with real values filled in."""
    with desk.app.db.transaction() as session:
        sha256 = session.scalars(select(Attachment.sha256)).first()
        mail_id = session.scalars(select(Mail.id)).first()
        reply_id = session.scalars(select(Reply.id)).first()
    values = {
        "reference": reference_of(desk, "张喆"),
        "mail_id": mail_id,
        "reply_id": reply_id,
        "sha256": sha256,
        "suffix": "csv",
        "name": NAME,
    }
    urls = []
    for rule in desk.flask.url_map.iter_rules():
        path = rule.rule
        for name in rule.arguments:
            path = re.sub(rf"<(?:[^<>]*:)?{name}(?:\([^)]*\))?>", str(values[name]), path)
        for method in sorted((rule.methods or set()) - {"HEAD", "OPTIONS"}):
            urls.append((method, path))
    return urls


def test_every_route_but_the_login_needs_a_session(desk: RunningDesk, client: Client) -> None:
    urls = sample_urls(desk)
    assert len(urls) >= 15
    for method, path in urls:
        if path == "/login":
            continue
        answer = client.request(method, path, {} if method == "POST" else None)
        assert answer.status == 303, (method, path, answer.status)
        assert answer.location.startswith("/login"), (method, path)
        assert b"<table" not in answer.body
        assert b"%PDF" not in answer.body
    assert client.get("/no/such/page").status == 303
    assert client.get("/login").status == 200


def test_the_login_returns_to_the_page_asked_for_but_never_to_another_site(
    desk: RunningDesk, client: Client
) -> None:
    assert client.get("/mails").location == "/login?next=/mails"
    page = client.get("/login")
    token = re.search(r'name="csrf_token" value="([^"]+)"', page.text)
    assert token
    for target, landing in (
        ("/mails", "/mails"),
        ("https://evil.example/", "/"),
        ("//evil.example", "/"),
    ):
        fresh = Client(desk.url)
        fresh.get("/login")
        answer = fresh.post(
            "/login",
            {
                "csrf_token": fresh.jar["mailbot_login"],
                "name": NAME,
                "password": PASSWORD,
                "next": target,
            },
        )
        assert answer.status == 303
        assert answer.location == landing


def test_signing_out_ends_the_session(signed_in: Client) -> None:
    cookie = signed_in.jar["mailbot_session"]
    assert signed_in.post("/logout", {"csrf_token": signed_in.token()}).status == 303
    signed_in.jar["mailbot_session"] = cookie  # a copy of the old cookie opens nothing
    assert signed_in.get("/").status == 303


# --------------------------------------------------------------------------- passwords and their limit


def test_a_wrong_password_is_refused_without_a_session(client: Client) -> None:
    answer = client.login(password="not the password at all")
    assert answer.status == 401
    assert "用户名或密码错误" in answer.text
    assert "mailbot_session" not in client.jar
    unknown = Client(client.origin).login(name="nobody", password=PASSWORD)
    assert unknown.status == 401  # an unknown name reads the same as a wrong password


def test_passwords_are_stored_as_argon2_hashes(desk: RunningDesk) -> None:
    with desk.app.db.transaction() as session:
        stored = session.scalar(select(User.password_hash).where(User.name == NAME))
    assert stored is not None
    assert stored.startswith("$argon2id$")
    assert PASSWORD not in stored


# --------------------------------------------------------------------------- cookies and CSRF


def session_cookie(answer_cookies: list[str], name: str) -> str:
    return next(c for c in answer_cookies if c.startswith(name + "="))


def test_session_cookies_are_httponly_and_samesite(desk: RunningDesk) -> None:
    client = Client(desk.url)
    login_form = client.get("/login")
    form_cookie = session_cookie(login_form.cookies(), "mailbot_login")
    assert "HttpOnly" in form_cookie
    assert "SameSite=Strict" in form_cookie
    cookie = session_cookie(client.login().cookies(), "mailbot_session")
    assert "HttpOnly" in cookie
    assert "SameSite=Lax" in cookie
    assert "Path=/" in cookie


def test_behind_https_cookies_are_secure_host_cookies(tmp_path: Path) -> None:
    with running_desk(tmp_path / "demo", secure_cookies=True) as desk:
        client = Client(desk.url)
        page = client.get("/login")
        token = re.search(r'name="csrf_token" value="([^"]+)"', page.text)
        assert token
        answer = client.post(
            "/login", {"csrf_token": token.group(1), "name": NAME, "password": PASSWORD}
        )
        cookie = session_cookie(answer.cookies(), "__Host-mailbot_session")
        assert all(part in cookie for part in ("Secure", "HttpOnly", "SameSite=Lax", "Path=/"))


def test_forms_without_the_csrf_token_are_refused(desk: RunningDesk, signed_in: Client) -> None:
    reference = reference_of(desk, "王堃")
    note = f"/submissions/{reference}/note"
    assert signed_in.post(note, {"reason": "no token"}).status == 403
    assert signed_in.post(note, {"reason": "wrong", "csrf_token": "x" * 43}).status == 403
    other_session = Client(desk.url)
    other_session.login()
    stolen = other_session.token()  # a token is good for its own session only
    assert signed_in.post(note, {"reason": "theirs", "csrf_token": stolen}).status == 403
    token = signed_in.token()
    cross_site = signed_in.post(
        note, {"reason": "cross", "csrf_token": token}, Origin="https://evil.example"
    )
    assert cross_site.status == 403
    assert signed_in.post(note, {"reason": "看过了 seen", "csrf_token": token}).status == 303
    with desk.app.db.transaction() as session:
        reasons = session.scalars(
            select(AuditEvent.reason).where(AuditEvent.action == "note")
        ).all()
    assert "看过了 seen" in reasons
    assert not {"no token", "wrong", "theirs", "cross"} & set(reasons)
    # The sign-in form has a token of its own, bound to its cookie.
    assert Client(desk.url).post("/login", {"name": NAME, "password": PASSWORD}).status == 403


# --------------------------------------------------------------------------- escaping


def test_everything_a_sender_wrote_is_escaped(desk: RunningDesk, signed_in: Client) -> None:
    reference = reference_of(desk, HOSTILE_PI)
    pages = [
        signed_in.get("/mails").text,
        signed_in.get("/log").text,
        signed_in.get(f"/submissions/{reference}").text,
    ]
    with desk.app.db.transaction() as session:
        mail_id = session.scalar(select(Mail.id).where(Mail.subject == HOSTILE_SUBJECT))
    pages.append(signed_in.get(f"/mails/{mail_id}").text)
    for html in pages:
        assert "<script>alert" not in html
        assert "<img src=x" not in html
        assert "<b>Mallory" not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in pages[0]
    assert "&lt;img src=x onerror=alert(2)&gt;研究所" in pages[1]
    assert "&lt;script&gt;alert(&#39;body&#39;)&lt;/script&gt;" in pages[3]  # the mail's text
    assert "evil&#34;name" in pages[2]  # the file name
    policy = signed_in.get("/").headers["Content-Security-Policy"]
    assert "script-src 'none'" in policy
    assert "frame-ancestors 'none'" in policy


# --------------------------------------------------------------------------- downloads


def test_a_download_goes_by_sha256_with_a_safe_name(desk: RunningDesk, signed_in: Client) -> None:
    with desk.app.db.transaction() as session:
        hostile = session.scalar(select(Attachment).where(Attachment.filename == HOSTILE_FILENAME))
        mail = session.scalar(select(Mail).where(Mail.subject == HOSTILE_SUBJECT))
    assert hostile is not None
    assert mail is not None
    answer = signed_in.get(f"/files/{hostile.sha256}")
    assert answer.status == 200
    assert answer.body == desk.app.blobs.get(hostile.sha256)
    disposition = answer.headers["Content-Disposition"]
    assert disposition.startswith("attachment; ")
    assert disposition.isascii()
    assert "\r" not in disposition
    assert "\n" not in disposition
    assert re.fullmatch(
        r"""attachment; filename="[A-Za-z0-9._ +-]+"; filename\*=UTF-8''[A-Za-z0-9%._~-]+""",
        disposition,
    )
    assert "%E2%80%AE" not in disposition  # the right-to-left override is gone
    assert answer.headers["Content-Type"] == "application/pdf"
    assert answer.headers["X-Content-Type-Options"] == "nosniff"
    assert "sandbox" in answer.headers["Content-Security-Policy"]

    raw = signed_in.get(f"/files/{mail.raw_sha256}")
    assert raw.status == 200
    assert raw.headers["Content-Type"] == "message/rfc822"
    assert raw.body == desk.app.blobs.get(mail.raw_sha256)
    assert f'filename="mail-{mail.id}.eml"' in raw.headers["Content-Disposition"]


def test_no_path_reaches_the_store(desk: RunningDesk, signed_in: Client) -> None:
    stray = desk.app.blobs.put(b"not any mail's file")  # in the store, but nobody's attachment
    for path in (
        f"/files/{stray}",
        "/files/../../etc/passwd",
        "/files/..%2F..%2Fetc%2Fpasswd",
        "/files/%2e%2e%2fmailbot.toml",
        "/files/" + "A" * 64,
        "/files/" + "0" * 63,
        "/files/mailbot.sqlite3",
        "/files/store",
    ):
        answer = signed_in.get(path)
        assert answer.status == 404, path
        assert b"root:" not in answer.body
        assert b"SQLite" not in answer.body


@pytest.mark.parametrize(
    ("name", "ascii_name"),
    [
        ('a"b\r\nSet-Cookie: x=1.pdf', "a_bSet-Cookie_ x_1.pdf"),
        ("invoice\u202efdp.exe", "invoicefdp.exe"),
        ("../../etc/passwd", "etc_passwd"),
        ("中国科学院植物研究所+张喆.pdf", "file.pdf"),
        ("\u200b\u0000", "file"),
    ],
)
def test_content_disposition_is_one_safe_header(name: str, ascii_name: str) -> None:
    header = content_disposition(name)
    assert header.isascii()
    assert "\r" not in header
    assert "\n" not in header
    assert header.split('"')[1] == ascii_name
    assert '"' not in safe_filename(name)
    assert "/" not in safe_filename(name)
    assert "\u202e" not in safe_filename(name)


# --------------------------------------------------------------------------- the other acts


def test_withdraw_note_resend_and_write_are_each_in_the_trail(
    desk: RunningDesk, signed_in: Client
) -> None:
    reference = reference_of(desk, "张喆")
    base = f"/submissions/{reference}"
    token = signed_in.token(base)
    refused = signed_in.post(
        f"{base}/withdraw", {"reason": "  ", "csrf_token": token, "confirm": "yes"}
    )
    assert refused.status == 303
    assert "请说明理由" in signed_in.get(refused.location).text

    resend = {"reason": "申请人说没收到", "csrf_token": token, "confirm": "yes"}
    assert signed_in.post(f"{base}/resend", resend).status == 303
    draft = signed_in.get(f"{base}/write?template=reminder")
    assert draft.status == 200
    assert reference in draft.text
    assert "提醒" in draft.text
    sent = signed_in.post(
        f"{base}/write",
        {
            "csrf_token": token,
            "template": "reminder",
            "subject": "提醒 Reminder",
            "body": "请尽快更正。\nPlease correct soon.",
            "reason": "截止前提醒",
            "confirm": "yes",
        },
    )
    assert sent.status == 303
    withdraw = {"reason": "申请人来信撤回", "csrf_token": token, "confirm": "yes"}
    assert signed_in.post(f"{base}/withdraw", withdraw).status == 303
    assert signed_in.get("/mails?kind=nonsense").status == 200

    with desk.app.db.transaction() as session:
        submission = session.scalar(select(Submission).where(Submission.reference == reference))
        assert submission is not None
        assert submission.status == "withdrawn"
        events = session.scalars(
            select(AuditEvent)
            .where(AuditEvent.submission_id == submission.id)
            .order_by(AuditEvent.id)
        ).all()
        assert [e.action for e in events][-3:] == ["resend", "write", "withdraw"]
        assert all(e.actor == NAME for e in events)
        letter = session.get(Reply, events[-2].reply_id)
        resent = session.get(Reply, events[-3].reply_id)
        assert letter is not None
        assert letter.template == "desk/reminder"
        assert letter.state == "pending"
        assert letter.to_address == "zhangzhe@ibcas.ac.cn"
        assert resent is not None
        assert resent.state == "pending"
    page = signed_in.get(base).text
    assert "申请人来信撤回" in page
    assert "截止前提醒" in page
    assert "已撤回" in page
    assert "请尽快更正。" in page  # the letter's text, with its delivery state


# --------------------------------------------------------------------------- the commands


def test_user_add_asks_the_password_twice_and_never_prints_it(desk: RunningDesk) -> None:
    config = str(desk.root / "mailbot.toml")
    runner = CliRunner()
    secret = "a long and secret password"
    result = runner.invoke(
        main, ["--config", config, "user", "add", "chen.jing"], input=f"{secret}\n{secret}\n"
    )
    assert result.exit_code == 0, result.output
    assert secret not in result.output
    assert "account chen.jing created" in result.output
    mismatch = runner.invoke(
        main, ["--config", config, "user", "add", "liu.yang"], input=f"{secret}\nsomething else\n"
    )
    assert mismatch.exit_code != 0
    assert secret not in mismatch.output
    short = runner.invoke(
        main, ["--config", config, "user", "add", "liu.yang"], input="short\nshort\n"
    )
    assert short.exit_code == 2
    assert "at least 10 characters" in short.output
    again = runner.invoke(
        main, ["--config", config, "user", "add", "chen.jing"], input=f"{secret}\n{secret}\n"
    )
    assert again.exit_code == 2
    assert "exists already" in again.output
    assert Client(desk.url).login("chen.jing", secret).status == 303


def test_mailbot_web_serves_the_desk(desk: RunningDesk) -> None:
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "mailbot",
            "--config",
            str(desk.root / "mailbot.toml"),
            "web",
            "--port",
            str(port),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        cwd=ROOT,
    )
    try:
        client = Client(f"http://127.0.0.1:{port}")
        deadline = time.monotonic() + 30
        while True:
            try:
                answer = client.get("/login")
                break
            except ConnectionRefusedError:
                assert time.monotonic() < deadline, "mailbot web did not start"
                time.sleep(0.2)
        assert answer.status == 200
        assert answer.headers["Server"] == "mailbot"
        assert client.login().status == 303
        assert client.get("/log").status == 200
    finally:
        process.terminate()
        output, _ = process.communicate(timeout=20)
    assert PASSWORD.encode() not in output
