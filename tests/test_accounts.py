"""Accounts of the desk: roles, the users page, one's own password, and sign-in limits that lock no one out."""

from __future__ import annotations

import re
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from click.testing import CliRunner
from sqlalchemy import select

from mailbot.cli import main
from mailbot.store.db import Database
from mailbot.store.models import AuditEvent, User, utcnow
from mailbot.web.auth import add_user
from mailbot.web.throttle import FREE_TRIES, LOCK_AFTER, MAX_FAILURES_PER_ADDRESS
from tests.fixtures import DATABASES
from tests.test_web import sample_urls, shoot
from tests.web_support import NAME, PASSWORD, Client, RunningDesk, form_token, running_desk

# Nearly every test here works on a desk filled through the whole pipeline, and hashes passwords.
pytestmark = pytest.mark.slow

ADMIN, ADMIN_PASSWORD = "li.admin", "the admin's long password"
VIEWER, VIEWER_PASSWORD = "zhou.viewer", "a viewer reads only"
WRONG = "not the password, a guess"
VIEWER_REFUSED = "只读账户不能操作"
OTHER_ADDRESS = "127.0.0.2"  # another client on the loopback net, to the desk on 127.0.0.1


@pytest.fixture(scope="module")
def desk(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningDesk]:
    with running_desk(tmp_path_factory.mktemp("accounts") / "demo") as running:
        with running.app.db.transaction() as session:
            add_user(session, ADMIN, ADMIN_PASSWORD, "admin")
            add_user(session, VIEWER, VIEWER_PASSWORD, "viewer")
        yield running


@pytest.fixture(autouse=True)
def still_clock(desk: RunningDesk) -> Iterator[None]:
    """Time stands still unless the test moves it; each test starts a day after the last."""
    desk.clock.stopped = utcnow()
    yield
    desk.clock.offset += timedelta(days=2)


def new_account(desk: RunningDesk, name: str, role: str = "editor") -> str:
    password = f"{name}'s own long password"
    with desk.app.db.transaction() as session:
        add_user(session, name, password, role)
    return password


def signed_in(desk: RunningDesk, name: str, password: str, source: str | None = None) -> Client:
    client = Client(desk.url, source)
    answer = client.login(name, password)
    assert answer.status == 303, answer.text
    return client


def cli(desk: RunningDesk, *args: str) -> Any:
    return CliRunner().invoke(main, ["--config", str(desk.root / "mailbot.toml"), "user", *args])


# --------------------------------------------------------------------------- roles


def test_a_viewer_reads_every_page_and_every_form_is_refused_in_both_languages(
    desk: RunningDesk,
) -> None:
    viewer = signed_in(desk, VIEWER, VIEWER_PASSWORD)
    token = viewer.token()
    assert "只读 Read only" in viewer.get("/").text
    editor = signed_in(desk, NAME, PASSWORD)
    assert "只读 Read only" not in editor.get("/").text
    # A viewer is shown no action it would be refused; an editor sees them.
    pages = [path for method, path in sample_urls(desk) if method == "GET"]
    submission = next(p for p in pages if p.startswith("/submissions/") and p.count("/") == 2)
    assert 'id="actions"' in editor.get(submission).text
    assert 'id="actions"' not in viewer.get(submission).text
    outbox = viewer.get("/outbox?state=all").text
    assert "/resend" not in outbox
    assert "/dealt" not in outbox
    acts = 0
    for method, path in sample_urls(desk):
        if path in ("/login", "/logout", "/account") or path.startswith("/users"):
            continue
        if method == "GET":
            # 404: a sample id, no such page; 303: read elsewhere (an attached mail's answer).
            assert viewer.get(path).status in (200, 303, 404), path
            continue
        answer = viewer.post(path, {"csrf_token": token, "reason": "看看 just looking"})
        assert answer.status == 403, (path, answer.status)
        assert VIEWER_REFUSED in answer.text
        assert "reads only" in answer.text
        acts += 1
    assert acts >= 5
    with desk.app.db.transaction() as session:
        assert session.scalar(select(AuditEvent.id).where(AuditEvent.actor == VIEWER)) is None
    # Signing out stays open to a viewer.
    assert viewer.post("/logout", {"csrf_token": token}).status == 303


def test_only_an_admin_manages_accounts(desk: RunningDesk) -> None:
    editor = signed_in(desk, NAME, PASSWORD)
    assert "账户 Accounts" not in editor.get("/").text
    assert editor.get("/users").status == 403
    refused = editor.post(
        "/users",
        {"csrf_token": editor.token(), "name": "mallory", "role": "admin", "password": "x" * 12},
    )
    assert refused.status == 403
    assert "Only an admin manages accounts" in refused.text
    admin = signed_in(desk, ADMIN, ADMIN_PASSWORD)
    assert "账户 Accounts" in admin.get("/").text
    assert admin.get("/users").status == 200
    with desk.app.db.transaction() as session:
        assert session.scalar(select(User).where(User.name == "mallory")) is None


def test_the_migration_makes_every_existing_account_an_admin(tmp_path: Path) -> None:
    db = Database(f"sqlite:///{tmp_path / 'old.sqlite3'}")
    try:
        from alembic import command

        command.upgrade(db.alembic_config(), "0007_reply_due")
        with db.engine.begin() as connection:
            connection.execute(
                sa.text(
                    "INSERT INTO users (name, password_hash, active, created_at) "
                    "VALUES ('wang.fang', 'x', 1, '2021-07-01 00:00:00')"
                )
            )
        db.upgrade()
        with db.transaction() as session:
            assert session.scalar(select(User.role).where(User.name == "wang.fang")) == "admin"
            added = add_user(session, "new.one", "a new long password")
            assert added.role == "editor"  # a new account acts but does not manage
    finally:
        db.dispose()


# --------------------------------------------------------------------------- disabling an account


def test_a_disabled_colleague_is_signed_out_at_once_and_cannot_sign_in(desk: RunningDesk) -> None:
    password = new_account(desk, "left.office")
    colleague = signed_in(desk, "left.office", password)
    assert colleague.get("/log").status == 200
    admin = signed_in(desk, ADMIN, ADMIN_PASSWORD)
    unticked = admin.post("/users/left.office/disable", {"csrf_token": admin.token()})
    assert unticked.status == 400
    assert "Tick the box" in unticked.text
    answer = admin.post(
        "/users/left.office/disable", {"csrf_token": admin.token(), "confirm": "yes"}
    )
    assert answer.status == 303
    assert "done=disabled" in answer.location
    assert colleague.get("/log").status == 303  # the open session ended
    assert Client(desk.url).login("left.office", password).status == 401
    assert "已停用" in admin.get("/users").text
    with desk.app.db.transaction() as session:
        user = session.scalar(select(User).where(User.name == "left.office"))
        assert user is not None
        assert user.active is False
    # The admin cannot disable themselves, nor leave the desk without an admin.
    own = admin.post(f"/users/{ADMIN}/disable", {"csrf_token": admin.token(), "confirm": "yes"})
    assert own.status == 400
    assert "cannot disable your own account" in own.text
    result = cli(desk, "enable", "left.office")
    assert result.exit_code == 0
    assert "enabled" in result.output
    assert Client(desk.url).login("left.office", password).status == 303


def test_mailbot_user_list_and_disable(desk: RunningDesk) -> None:
    new_account(desk, "sun.li", "viewer")
    listed = cli(desk, "list")
    assert listed.exit_code == 0, listed.output
    line = next(text for text in listed.output.splitlines() if text.startswith("sun.li "))
    assert "viewer" in line
    assert "active" in line
    assert "never" in line
    assert cli(desk, "disable", "sun.li").exit_code == 0
    assert re.search(r"^sun\.li +viewer +disabled", cli(desk, "list").output, re.M)
    missing = cli(desk, "disable", "nobody.here")
    assert missing.exit_code == 2
    assert missing.output.startswith("mailbot: no account nobody.here")
    again = cli(desk, "disable", "sun.li")
    assert again.exit_code == 2
    assert "already" in again.output


def test_the_last_admin_cannot_be_disabled_or_demoted(tmp_path: Path) -> None:
    from mailbot.web.accounts import COMMAND_LINE, set_active, set_role
    from mailbot.web.auth import AccountError

    db = Database(f"sqlite:///{tmp_path / 'one.sqlite3'}")
    try:
        db.upgrade()
        with db.transaction() as session:
            add_user(session, "only.admin", "the only admin's password", "admin")
            with pytest.raises(AccountError, match="only active admin"):
                set_active(session, COMMAND_LINE, "only.admin", False, utcnow())
            with pytest.raises(AccountError, match="only active admin"):
                set_role(session, COMMAND_LINE, "only.admin", "editor", utcnow())
    finally:
        db.dispose()


# --------------------------------------------------------------------------- passwords


def test_everyone_changes_their_own_password_given_the_current_one(desk: RunningDesk) -> None:
    password = new_account(desk, "he.ping", "viewer")  # a viewer may too
    here = signed_in(desk, "he.ping", password)
    elsewhere = signed_in(desk, "he.ping", password)
    new = "he.ping's brand new password"
    form = {"csrf_token": here.token("/account"), "password": new, "again": new}
    wrong = here.post("/account", {**form, "current": WRONG})
    assert wrong.status == 400
    assert "当前密码不对" in wrong.text
    assert "is wrong" in wrong.text
    differ = here.post("/account", {**form, "current": password, "again": new + "!"})
    assert differ.status == 400
    assert "differ" in differ.text
    short = here.post(
        "/account", {**form, "current": password, "password": "short", "again": "short"}
    )
    assert short.status == 400
    assert "at least 10 characters" in short.text
    done = here.post("/account", {**form, "current": password})
    assert done.status == 303
    assert done.location.endswith("/account?done=password")
    assert "您的密码已更改" in here.get(done.location).text  # this session goes on
    assert elsewhere.get("/").status == 303  # the other one ended
    assert Client(desk.url).login("he.ping", password).status == 401
    assert Client(desk.url).login("he.ping", new).status == 303


def test_an_admin_resets_a_password_and_the_old_sessions_end(desk: RunningDesk) -> None:
    password = new_account(desk, "forgot.it")
    forgetful = signed_in(desk, "forgot.it", password)
    admin = signed_in(desk, ADMIN, ADMIN_PASSWORD)
    new = "a password given by the admin"
    answer = admin.post(
        "/users/forgot.it/password", {"csrf_token": admin.token(), "password": new, "again": new}
    )
    assert answer.status == 303
    assert forgetful.get("/").status == 303
    assert Client(desk.url).login("forgot.it", new).status == 303
    assert admin.post("/users/no.such.one/unlock", {"csrf_token": admin.token()}).status == 404


# --------------------------------------------------------------------------- failed sign-ins


def test_failed_tries_for_a_name_wait_twice_as_long_each_time_then_lock(
    desk: RunningDesk,
) -> None:
    password = new_account(desk, "zhao.min")
    attacker = Client(desk.url)
    for _ in range(FREE_TRIES):
        assert attacker.login("zhao.min", WRONG).status == 401
    waits = []
    for _ in range(FREE_TRIES, LOCK_AFTER):
        early = attacker.login("zhao.min", password)  # even the right password is not looked at
        assert early.status == 429
        assert "mailbot_session" not in attacker.jar
        assert "登录失败次数过多" in early.text
        assert "try again in" in early.text
        waits.append(int(early.headers["Retry-After"]))
        desk.clock.offset += timedelta(seconds=waits[-1])
        assert attacker.login("zhao.min", WRONG).status == 401
    assert waits == [2 * 2**n for n in range(LOCK_AFTER - FREE_TRIES)]
    assert Client(desk.url).login().status == 303  # another account is not slowed
    desk.clock.offset += timedelta(days=1)
    locked = attacker.login("zhao.min", password)
    assert locked.status == 429
    assert "Retry-After" not in locked.headers
    assert "此用户名已锁定" in locked.text
    assert "until an admin unlocks it" in locked.text
    assert re.search(r"^zhao\.min +editor +locked +failed 10", cli(desk, "list").output, re.M)

    result = cli(desk, "unlock", "zhao.min")
    assert result.exit_code == 0
    assert "account zhao.min unlocked" in result.output
    assert Client(desk.url).login("zhao.min", password).status == 303
    assert "was not locked" in cli(desk, "unlock", "zhao.min").output


def test_tries_sent_at_once_pass_the_delay_one_at_most(desk: RunningDesk) -> None:
    new_account(desk, "qian.bo")
    client = Client(desk.url)
    for _ in range(FREE_TRIES):
        assert client.login("qian.bo", WRONG).status == 401
    desk.clock.offset += timedelta(seconds=2)  # the next try is due: one, not eight
    page = Client(desk.url)
    token = form_token(page.get("/login").text)

    def try_once(_: int) -> int:
        burst = Client(desk.url)
        burst.jar = dict(page.jar)
        form = {"csrf_token": token, "name": "qian.bo", "password": WRONG}
        return burst.post("/login", form).status

    with ThreadPoolExecutor(max_workers=8) as pool:
        answers = sorted(pool.map(try_once, range(8)))
    assert answers == [401] + [429] * 7


def test_a_lock_does_not_keep_the_owner_out_of_a_browser_they_signed_in_from(
    desk: RunningDesk,
) -> None:
    password = new_account(desk, "wu.hao")
    own_browser = signed_in(desk, "wu.hao", password)
    own_browser.post("/logout", {"csrf_token": own_browser.token()})
    attacker = Client(desk.url)
    for _ in range(LOCK_AFTER):
        attacker.login("wu.hao", WRONG)
        desk.clock.offset += timedelta(hours=1)
    assert attacker.login("wu.hao", password).status == 429  # locked
    assert own_browser.login("wu.hao", password).status == 303
    # A wrong password from the trusted browser, and it is a stranger again.
    own_browser.post("/logout", {"csrf_token": own_browser.token()})
    assert own_browser.login("wu.hao", WRONG).status == 401
    assert own_browser.login("wu.hao", password).status == 429


def test_an_admin_unlocks_a_name_in_the_browser(desk: RunningDesk) -> None:
    password = new_account(desk, "zheng.yu")
    attacker = Client(desk.url)
    for _ in range(LOCK_AFTER):
        attacker.login("zheng.yu", WRONG)
        desk.clock.offset += timedelta(hours=1)
    admin = signed_in(desk, ADMIN, ADMIN_PASSWORD)
    listing = admin.get("/users").text
    card = listing[listing.index('data-user="zheng.yu"') :]
    assert "已锁定" in card.split("</section>")[0]
    answer = admin.post("/users/zheng.yu/unlock", {"csrf_token": admin.token()})
    assert answer.status == 303
    assert "done=unlocked" in answer.location
    assert "账户已解锁" in admin.get(answer.location).text
    assert Client(desk.url).login("zheng.yu", password).status == 303
    with desk.app.db.transaction() as session:
        event = session.scalar(
            select(AuditEvent)
            .where(AuditEvent.action == "account_unlock")
            .order_by(AuditEvent.id.desc())
        )
        assert event is not None
        assert event.actor == ADMIN
        assert event.detail == {"account": "zheng.yu"}


def test_mailbot_user_passwd_sets_a_new_password_and_lifts_the_lock(desk: RunningDesk) -> None:
    new_account(desk, "lu.qing")
    attacker = Client(desk.url)
    for _ in range(LOCK_AFTER):
        attacker.login("lu.qing", WRONG)
        desk.clock.offset += timedelta(hours=1)
    new = "lu.qing's password from the admin"
    result = CliRunner().invoke(
        main,
        ["--config", str(desk.root / "mailbot.toml"), "user", "passwd", "lu.qing"],
        input=f"{new}\n{new}\n",
    )
    assert result.exit_code == 0
    assert new not in result.output
    assert Client(desk.url).login("lu.qing", new).status == 303
    with desk.app.db.transaction() as session:
        event = session.scalar(
            select(AuditEvent)
            .where(AuditEvent.action == "account_password")
            .order_by(AuditEvent.id.desc())
        )
    assert event is not None
    assert event.actor == "command line"
    assert event.detail == {"account": "lu.qing"}


def test_failures_from_one_address_lock_no_colleague_out(desk: RunningDesk) -> None:
    office = OTHER_ADDRESS  # the attacker and the colleague share the office's address
    password = new_account(desk, "feng.jie")
    colleague = signed_in(desk, "feng.jie", password, source=office)
    colleague.post("/logout", {"csrf_token": colleague.token()})
    attacker = Client(desk.url, source=office)
    for number in range(MAX_FAILURES_PER_ADDRESS):
        assert attacker.login(f"guess{number}", WRONG).status == 401
    refused = attacker.login("guess-more", WRONG)
    assert refused.status == 429
    assert "此地址" in refused.text
    assert "from this address" in refused.text
    assert 0 < int(refused.headers["Retry-After"]) <= 900
    assert colleague.login("feng.jie", password).status == 303  # from the same address
    assert Client(desk.url).login().status == 303  # from another address


@pytest.fixture(params=DATABASES)
def db(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Database]:
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'throttle.sqlite3'}"
    else:
        url = request.getfixturevalue("database_url")
    database = Database(url)
    database.upgrade()
    try:
        yield database
    finally:
        database.dispose()


def test_the_count_of_failures_is_kept_alike_on_sqlite_and_postgresql(db: Database) -> None:
    from mailbot.web.throttle import Refusal, claim_try, forget_old, locks, settle_try, unlock

    def attempt(name: str, at: datetime) -> Refusal | None:
        """One wrong password for name at a moment, or the refusal before it is looked at."""
        with db.transaction() as session:
            refusal = claim_try(session, name, at)
            if refusal is None:
                settle_try(session, name, False, at)
        return refusal

    with db.transaction() as session:
        add_user(session, "ma.lin", "ma.lin's long password")
    at = utcnow()
    for number in range(1, LOCK_AFTER + 1):
        assert attempt("ma.lin", at) is None
        with db.transaction() as session:
            row = locks(session)["ma.lin"]
        assert row.failures == number
        if FREE_TRIES <= number < LOCK_AFTER:
            assert row.next_try_at > at
            assert attempt("ma.lin", row.next_try_at - timedelta(seconds=1)) == Refusal("wait", 1)
        at = row.next_try_at
    assert attempt("ma.lin", at + timedelta(days=30)) == Refusal("locked", 0)
    assert attempt("no.account", at) is None

    with db.transaction() as session:
        forget_old(session, at + timedelta(days=2))
        # The lock of an account stays until an admin lifts it; a stranger's name is forgotten.
        assert set(locks(session)) == {"ma.lin"}
        assert unlock(session, "ma.lin")
        assert locks(session) == {}
        assert claim_try(session, "ma.lin", at) is None
        settle_try(session, "ma.lin", True, at)  # a success forgets the try counted
        assert locks(session) == {}


# --------------------------------------------------------------------------- in a real browser


def test_an_admin_manages_accounts_in_chromium(
    browser: Any,
    desk: RunningDesk,
    tmp_path: Path,
) -> None:
    context = browser.new_context(base_url=desk.url, viewport={"width": 1366, "height": 900})
    page = context.new_page()
    page.set_default_timeout(15_000)
    try:
        page.goto("/users")
        page.get_by_label("用户名").fill(ADMIN)
        page.get_by_label("密码").fill(ADMIN_PASSWORD)
        page.get_by_role("button", name="登录 Sign in").click()
        page.wait_for_url(re.compile(r"/users$"))
        add = page.locator("form.add")
        add.get_by_label("用户名").fill("tang.wei")
        add.get_by_label("角色").select_option("viewer")
        add.get_by_label("初始密码").fill("tang.wei's first password")
        add.get_by_label("再输一次").fill("tang.wei's first password")
        add.get_by_role("button", name="创建 Add").click()
        page.wait_for_url(re.compile(r"done=added"))
        card = page.locator('section[data-user="tang.wei"]')
        assert "只读" in card.locator("h2").inner_text()
        card.locator("summary").click()
        card.get_by_label("Yes, disable tang.wei").check()
        card.get_by_role("button", name="停用 Disable").click()
        page.wait_for_url(re.compile(r"done=disabled"))
        assert "已停用" in page.locator('section[data-user="tang.wei"] h2').inner_text()
        assert page.locator("tr.account-event").first.get_attribute("data-action") == (
            "account_disable"
        )
        shoot(page, tmp_path, "users-1366")
        page.set_viewport_size({"width": 390, "height": 844})
        # The page's own part; the header common to every page is another matter.
        width = page.evaluate("document.querySelector('main').scrollWidth")
        assert width <= 390, f"the users page is {width} px wide at 390 px"
        shoot(page, tmp_path, "users-390")
    finally:
        context.close()
