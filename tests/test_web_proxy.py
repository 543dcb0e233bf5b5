"""The desk behind the HTTPS reverse proxy the README recommends: nginx terminating TLS."""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from mailbot.app import App
from mailbot.config import load_settings
from mailbot.store.models import AuditEvent, LoginAttempt, Submission
from mailbot.web.app import create_app
from tests.conftest import ROOT
from tests.proxy_support import NGINX, DeskProcess, Nginx
from tests.tlsfactory import CertificateAuthority
from tests.web_support import NAME, PASSWORD, Client, filled_app, form_token

# Every test here works on the demo filled through the whole pipeline, or runs `mailbot web`.
pytestmark = pytest.mark.slow

HOST = "desk.localhost"
ARTIFACTS = ROOT / "tests" / "artifacts"


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """The demo plus hostile mail, its config naming the proxy's host name."""
    root = tmp_path_factory.mktemp("proxied") / "demo"
    filled_app(root).close()
    with (root / "mailbot.toml").open("a") as config:
        config.write(f'\n[web]\nallowed_hosts = ["{HOST}"]\nsecure_cookies = true\n')
    yield root


@pytest.fixture(scope="module")
def proxied(
    demo: Path, private_ca: CertificateAuthority, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[Nginx, DeskProcess]]:
    if not NGINX.exists() and not os.environ.get("CI"):
        pytest.skip("no nginx here: apt-get install -y --no-install-recommends nginx")
    certificate = private_ca.issue(HOST)
    with DeskProcess(demo / "mailbot.toml", "--trusted-proxies", "1") as desk:
        prefix = tmp_path_factory.mktemp("nginx")
        with Nginx(prefix, desk.url, certificate, HOST) as nginx:
            yield nginx, desk


@pytest.mark.servers  # nginx
def test_through_an_https_proxy_sign_in_act_download_and_sign_out(
    proxied: tuple[Nginx, DeskProcess], demo: Path, browser: Any, tmp_path: Path
) -> None:
    nginx, _ = proxied
    context = browser.new_context(
        base_url=nginx.url,
        ignore_https_errors=True,  # the test's private CA; TLS itself is nginx's
        viewport={"width": 1366, "height": 900},
        accept_downloads=True,
    )
    page = context.new_page()
    page.set_default_timeout(15_000)
    try:
        page.goto("/")
        assert page.url.startswith(f"{nginx.url}/login")
        page.get_by_label("用户名").fill(NAME)
        page.get_by_label("密码").fill(PASSWORD)
        page.get_by_role("button", name="登录 Sign in").click()
        page.wait_for_url(f"{nginx.url}/")  # not "403 form sent from another site"
        cookies = {c["name"]: c for c in context.cookies()}
        assert cookies["__Host-mailbot_session"]["secure"]

        app = App.build(load_settings(demo / "mailbot.toml"))
        with app.db.transaction() as session:
            reference = session.scalar(select(Submission.reference).where(Submission.pi == "李娜"))
        page.goto(f"/submissions/{reference}")
        page.get_by_label("备注 Note").fill("经代理保存的备注 saved through the proxy")
        page.get_by_role("button", name="保存备注 Save note").click()
        page.wait_for_url(re.compile(rf"{re.escape(nginx.url)}/submissions/{reference}"))
        with app.db.transaction() as session:
            notes = session.scalars(select(AuditEvent.reason).where(AuditEvent.actor == NAME))
            assert "经代理保存的备注 saved through the proxy" in list(notes)
            attempt = session.scalars(select(LoginAttempt).order_by(LoginAttempt.id)).all()[-1]
            assert attempt.succeeded
            assert attempt.remote_addr == "127.0.0.1"
        app.close()

        link = page.locator("a.download[data-role=pdf]").first
        with page.expect_download() as download_info:
            link.click()
        saved = tmp_path / "download.pdf"
        download_info.value.save_as(saved)
        assert saved.read_bytes().startswith(b"%PDF")
        ARTIFACTS.mkdir(exist_ok=True)
        page.screenshot(path=str(ARTIFACTS / "proxied-submission-1366.png"), full_page=True)

        page.get_by_role("button", name="退出 Sign out").click()
        page.wait_for_url(re.compile(rf"{re.escape(nginx.url)}/login"))
        page.goto(f"/submissions/{reference}")
        assert "/login" in page.url
    finally:
        context.close()
    assert "GET /login" in nginx.access_log()
    assert 'POST /login HTTP/1.1" 303' in nginx.access_log()


@pytest.mark.servers  # nginx
def test_a_host_name_not_allowed_is_refused_in_both_languages(
    proxied: tuple[Nginx, DeskProcess],
) -> None:
    _, desk = proxied
    import http.client

    connection = http.client.HTTPConnection("127.0.0.1", desk.port, timeout=30)
    try:
        connection.request("GET", "/login", headers={"Host": "evil.example"})
        answer = connection.getresponse()
        body = answer.read().decode()
    finally:
        connection.close()
    assert answer.status == 400
    assert "主机名不受理" in body
    assert "Unknown host name" in body
    assert body.index("主机名不受理") < body.index("Unknown host name")


# --------------------------------------------------------------------------- the headers


@pytest.fixture(scope="module")
def app(demo: Path) -> Iterator[App]:
    built = App.build(load_settings(demo / "mailbot.toml"))
    yield built
    built.close()


FORWARDED = {
    "Host": "127.0.0.1:8080",
    "X-Forwarded-Proto": "https",
    "X-Forwarded-Host": HOST,
    "X-Forwarded-For": "203.0.113.7",
}


def sign_in(client: Any, origin: str, headers: dict[str, str], password: str = PASSWORD) -> Any:
    page = client.get("/login", headers=headers)
    return client.post(
        "/login",
        data={"csrf_token": form_token(page.text), "name": NAME, "password": password},
        headers={**headers, "Origin": origin},
    )


def test_behind_one_trusted_proxy_the_https_sign_in_is_accepted(app: App) -> None:
    web = app.settings.web.model_copy(update={"trusted_proxies": 1})
    client = create_app(app, web=web).test_client()
    answer = sign_in(client, f"https://{HOST}", FORWARDED)
    assert answer.status_code == 303, answer.text
    assert answer.headers["Location"] == "/"


def test_without_trusted_proxies_forwarded_headers_are_ignored(app: App) -> None:
    web = app.settings.web.model_copy(update={"trusted_proxies": 0, "allowed_hosts": []})
    client = create_app(app, web=web).test_client()
    # The headers could come from anyone: an https Origin is refused on plain http.
    refused = sign_in(client, f"https://{HOST}", FORWARDED)
    assert refused.status_code == 403
    assert "拒绝" in refused.text
    assert "Forbidden" in refused.text


def test_the_login_limit_counts_the_client_behind_the_proxy(app: App) -> None:
    web = app.settings.web.model_copy(update={"trusted_proxies": 1})
    client = create_app(app, web=web).test_client()
    headers = {**FORWARDED, "X-Forwarded-For": "198.51.100.23"}
    assert sign_in(client, f"https://{HOST}", headers, "wrong password!").status_code == 401
    with app.db.transaction() as session:
        addresses = session.scalars(
            select(LoginAttempt.remote_addr).where(LoginAttempt.succeeded.is_(False))
        ).all()
    assert "198.51.100.23" in addresses


# --------------------------------------------------------------------------- mailbot web


def test_mailbot_web_warns_of_a_proxy_without_secure_cookies_or_host_names(
    demo: Path, tmp_path: Path
) -> None:
    config = tmp_path / "mailbot.toml"
    text = (demo / "mailbot.toml").read_text().split("\n[web]\n")[0]
    # The config's key, not the option: [web] trusted_proxies alone puts the desk behind a proxy.
    config.write_text(
        text.replace('"sqlite:///mailbot.sqlite3"', f'"sqlite:///{demo}/mailbot.sqlite3"').replace(
            'store_dir = "store"', f'store_dir = "{demo}/store"'
        )
        + "\n[web]\ntrusted_proxies = 1\n"
    )
    with DeskProcess(config) as desk:
        client = Client(desk.url)
        https = {"X-Forwarded-Proto": "https"}
        token = form_token(client.get("/login", **https).text)
        answer = client.post(
            "/login",
            {"csrf_token": token, "name": NAME, "password": PASSWORD},
            Origin=f"https://127.0.0.1:{desk.port}",
            **https,
        )
    assert answer.status == 303  # the proxy's https believed: the Origin matches
    assert "secure_cookies is off" in desk.output
    assert "allowed_hosts is empty" in desk.output
