"""OAuth2 login (XOAUTH2, OAUTHBEARER) to Dovecot and to an SMTP server, with a local provider.

The provider (tests/servers/oauth.py) hands out access tokens for a refresh
token and tells Dovecot's oauth2 passdb whose a token is; the test expires
and revokes tokens there, and a fake clock stands for the hour a token lives.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from mailbot.app import App
from mailbot.cli import main
from mailbot.config import ConfigError, ImapSettings, OAuth2Settings, SmtpSettings
from mailbot.net.oauth2 import OAuth2Error, TokenSource
from mailbot.replies.transports import SmtpTransport, TransportUnavailable
from mailbot.service.daemon import Daemon
from mailbot.sources.base import SourceError
from mailbot.sources.imap import ImapMailbox
from tests.daemon_support import july, proposal, settings_values, toml
from tests.fixtures import AppFactory
from tests.mailfactory import build_mail
from tests.servers.common import free_port
from tests.servers.oauth import OAuthDovecot, OAuthSmtpSink, TokenServer

REFRESH_ENV = "MAILBOT_TEST_REFRESH_TOKEN"
SECRET_ENV = "MAILBOT_TEST_CLIENT_SECRET"
LIFETIME = 600  # what the provider says each access token lives, in seconds

# Nearly every test logs in to this module's own Dovecot or SMTP server (its fixtures below).
pytestmark = pytest.mark.servers


class FakeClock:
    """The token source's clock, moved by the test instead of by waiting."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@pytest.fixture(scope="module")
def provider() -> Iterator[TokenServer]:
    with TokenServer(lifetime=LIFETIME) as server:
        yield server


@pytest.fixture(scope="module")
def dovecot_oauth(provider: TokenServer) -> Iterator[OAuthDovecot]:
    with OAuthDovecot(provider) as server:
        yield server


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def refresh_token(
    provider: TokenServer, dovecot_oauth: OAuthDovecot, monkeypatch: pytest.MonkeyPatch
) -> str:
    """A fresh refresh token for the mailbox's user, in the environment as an operator sets it."""
    token = provider.refresh_token(dovecot_oauth.user)
    monkeypatch.setenv(REFRESH_ENV, token)
    monkeypatch.setenv(SECRET_ENV, provider.client_secret)
    return token


def oauth2_settings(provider: TokenServer, **changes: Any) -> OAuth2Settings:
    values: dict[str, Any] = {
        "token_url": provider.token_url,
        "client_id": provider.client_id,
        "client_secret_env": SECRET_ENV,
        "refresh_token_env": REFRESH_ENV,
        "scope": "https://outlook.office365.com/IMAP.AccessAsUser.All offline_access",
    }
    values.update(changes)
    return OAuth2Settings(**values)


def token_source(provider: TokenServer, clock: FakeClock, section: str) -> TokenSource:
    return TokenSource.from_settings(oauth2_settings(provider), section, clock=clock)


def imap_mailbox(
    server: OAuthDovecot, provider: TokenServer, clock: FakeClock, auth: str = "xoauth2"
) -> ImapMailbox:
    settings = ImapSettings(
        host=server.host,
        port=server.port,
        security="plain",
        username=server.user,
        auth=auth,  # type: ignore[arg-type]
        timeout=10.0,
    )
    return ImapMailbox(settings, token_source(provider, clock, "source.imap"))


def refused(provider: TokenServer, since: int) -> int:
    return sum(1 for asked in provider.introspections[since:] if asked.user is None)


# ------------------------------------------------------------------------- IMAP


@pytest.mark.parametrize("auth", ["xoauth2", "oauthbearer"])
def test_imap_login_with_an_access_token(
    dovecot_oauth: OAuthDovecot,
    provider: TokenServer,
    refresh_token: str,
    clock: FakeClock,
    auth: str,
) -> None:
    issued, logged = len(provider.issued), len(dovecot_oauth.log_text())
    imap = imap_mailbox(dovecot_oauth, provider, clock, auth)
    try:
        assert imap.uidvalidity("INBOX") is not None
    finally:
        imap.close()
    assert len(provider.issued) == issued + 1
    assert f"method={auth.upper()}" in dovecot_oauth.log_text()[logged:]


def test_a_token_about_to_expire_is_renewed_before_it_is_used(
    dovecot_oauth: OAuthDovecot, provider: TokenServer, refresh_token: str, clock: FakeClock
) -> None:
    issued, asked = len(provider.issued), len(provider.introspections)
    imap = imap_mailbox(dovecot_oauth, provider, clock)
    try:
        imap.uidvalidity("INBOX")
        imap.close()  # the connection drops; the daemon reconnects
        clock.advance(LIFETIME * 0.7)  # still well within its life: kept
        imap.uidvalidity("INBOX")
        assert len(provider.issued) == issued + 1
        imap.close()
        clock.advance(LIFETIME * 0.1)  # within the margin before expiry
        provider.expire_access_tokens()  # the provider's clock agrees
        imap.uidvalidity("INBOX")
    finally:
        imap.close()
    assert len(provider.issued) == issued + 2
    assert refused(provider, asked) == 0  # the old token was never tried


def test_a_token_the_server_refuses_is_renewed_once(
    dovecot_oauth: OAuthDovecot, provider: TokenServer, refresh_token: str, clock: FakeClock
) -> None:
    issued = len(provider.issued)
    imap = imap_mailbox(dovecot_oauth, provider, clock)
    try:
        imap.uidvalidity("INBOX")
        imap.close()
        asked = len(provider.introspections)
        provider.expire_access_tokens()  # revoked early, or the clocks disagree
        assert imap.uidvalidity("INBOX") is not None
    finally:
        imap.close()
    assert len(provider.issued) == issued + 2
    assert refused(provider, asked) == 1


def test_a_revoked_refresh_token_is_one_clear_error(
    dovecot_oauth: OAuthDovecot,
    provider: TokenServer,
    refresh_token: str,
    clock: FakeClock,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    imap = imap_mailbox(dovecot_oauth, provider, clock)
    try:
        imap.uidvalidity("INBOX")
        imap.close()
        provider.revoke(refresh_token)
        provider.expire_access_tokens()
        with pytest.raises(SourceError) as caught:
            imap.uidvalidity("INBOX")
    finally:
        imap.close()
    message = str(caught.value)
    assert message == (
        f"imap://{dovecot_oauth.user}@127.0.0.1:{dovecot_oauth.port}: the token endpoint "
        f"{provider.token_url} refused the refresh token (invalid_grant: The refresh token "
        f"has been revoked.): sign in again to get a new refresh token and set {REFRESH_ENV}"
    )
    secrets = [refresh_token, provider.client_secret, *provider.issued]
    for text in (message, caplog.text):
        assert not any(secret in text for secret in secrets)


def test_a_token_for_another_account_is_refused_even_when_new(
    dovecot_oauth: OAuthDovecot, provider: TokenServer, refresh_token: str, clock: FakeClock
) -> None:
    settings = ImapSettings(
        host=dovecot_oauth.host,
        port=dovecot_oauth.port,
        security="plain",
        username="someone-else",
        auth="xoauth2",
        timeout=10.0,
    )
    imap = ImapMailbox(settings, token_source(provider, clock, "source.imap"))
    issued = len(provider.issued)
    with pytest.raises(SourceError) as caught:
        imap.uidvalidity("INBOX")
    imap.close()
    assert len(provider.issued) == issued + 2  # the first token, and one new one
    message = str(caught.value)
    assert "refused the OAuth2 login of 'someone-else' even with a new access token" in message
    assert "source.imap.oauth2.scope" in message
    assert not any(token in message for token in provider.issued)


def test_a_server_without_the_mechanism_is_named(
    provider: TokenServer, refresh_token: str, clock: FakeClock, mailbox: Any
) -> None:
    # The session's plain Dovecot offers PLAIN and LOGIN only.
    settings = ImapSettings(
        host=mailbox.host,
        port=mailbox.port,
        security="plain",
        username=mailbox.user,
        auth="oauthbearer",
        timeout=10.0,
    )
    imap = ImapMailbox(settings, token_source(provider, clock, "source.imap"))
    with pytest.raises(SourceError, match="does not offer OAUTHBEARER login") as caught:
        imap.uidvalidity("INBOX")
    imap.close()
    assert "it offers AUTH=PLAIN AUTH=LOGIN" in str(caught.value)


# ------------------------------------------------------------------------- SMTP


@pytest.fixture
def smtp_oauth(provider: TokenServer) -> Iterator[OAuthSmtpSink]:
    with OAuthSmtpSink(provider) as sink:
        yield sink


def smtp_transport(
    sink: OAuthSmtpSink, provider: TokenServer, clock: FakeClock, user: str, auth: str
) -> SmtpTransport:
    settings = SmtpSettings(
        host=sink.host,
        port=sink.port,
        security="plain",
        username=user,
        auth=auth,  # type: ignore[arg-type]
        timeout=10.0,
    )
    tokens = token_source(provider, clock, "replies.smtp")
    return SmtpTransport(settings, tokens, local_hostname="localhost")


def reply(n: int) -> bytes:
    return build_mail("outlook", subject=f"回执 {n}", body="已收到。")


@pytest.mark.parametrize("auth", ["xoauth2", "oauthbearer"])
def test_smtp_sends_after_an_oauth2_login_and_again_after_a_refusal(
    smtp_oauth: OAuthSmtpSink,
    provider: TokenServer,
    refresh_token: str,
    clock: FakeClock,
    dovecot_oauth: OAuthDovecot,
    auth: str,
) -> None:
    user = dovecot_oauth.user  # the account the refresh token belongs to
    issued = len(provider.issued)
    transport = smtp_transport(smtp_oauth, provider, clock, user, auth)
    try:
        transport.send(reply(1), "anso@example.org", ["pi@example.ac.cn"])
        transport.close()
        asked = len(provider.introspections)
        provider.expire_access_tokens()
        transport.send(reply(2), "anso@example.org", ["pi@example.ac.cn"])
    finally:
        transport.close()
    received = smtp_oauth.wait_for(2)
    assert [m.auth_user for m in received] == [user, user]
    assert len(provider.issued) == issued + 2
    assert refused(provider, asked) == 1
    assert smtp_oauth.acknowledgements == [b"\x01" if auth == "oauthbearer" else b""]


def test_smtp_with_a_revoked_refresh_token_is_unavailable_with_the_fix(
    smtp_oauth: OAuthSmtpSink,
    provider: TokenServer,
    refresh_token: str,
    clock: FakeClock,
    dovecot_oauth: OAuthDovecot,
) -> None:
    provider.revoke(refresh_token)
    transport = smtp_transport(smtp_oauth, provider, clock, dovecot_oauth.user, "xoauth2")
    with pytest.raises(TransportUnavailable) as caught:
        transport.send(reply(1), "anso@example.org", ["pi@example.ac.cn"])
    message = str(caught.value)
    assert message.startswith(f"the SMTP server 127.0.0.1:{smtp_oauth.port}: the token endpoint")
    assert f"sign in again to get a new refresh token and set {REFRESH_ENV}" in message
    assert refresh_token not in message
    assert smtp_oauth.messages == []


def test_smtp_refusing_even_a_new_token_is_a_refused_login(
    smtp_oauth: OAuthSmtpSink,
    provider: TokenServer,
    refresh_token: str,
    clock: FakeClock,
) -> None:
    # A token good for another account: the server refuses it however new.
    transport = smtp_transport(smtp_oauth, provider, clock, "someone-else@example.org", "xoauth2")
    with pytest.raises(TransportUnavailable, match="refused the login of 'someone-else@"):
        transport.send(reply(1), "anso@example.org", ["pi@example.ac.cn"])
    assert smtp_oauth.messages == []


# ----------------------------------------------------------- the token source


def test_the_token_endpoint_gets_the_refresh_grant(
    provider: TokenServer, refresh_token: str, clock: FakeClock
) -> None:
    tokens = token_source(provider, clock, "source.imap")
    first = tokens.token()
    assert tokens.token() == first  # kept, not fetched again
    assert provider.issued[-1] == first
    assert provider.scopes[-1] == oauth2_settings(provider).scope
    assert tokens.renew(first) != first
    assert tokens.renew(first) == provider.issued[-1]  # another caller renewed it already


def test_a_refresh_token_the_provider_replaces_is_the_one_used_next(
    provider: TokenServer, refresh_token: str, clock: FakeClock
) -> None:
    """Microsoft hands out a new refresh token with each access token and revokes the old one."""
    tokens = token_source(provider, clock, "source.imap")
    provider.rotate_refresh_tokens(True)
    try:
        first = tokens.token()
        second = tokens.renew(first)  # refused with the revoked first refresh token
        third = tokens.renew(second)
    finally:
        provider.rotate_refresh_tokens(False)  # the provider serves the module's other tests
    assert len({first, second, third}) == 3
    assert provider.issued[-3:] == [first, second, third]


def test_a_provider_outage_before_expiry_keeps_the_current_token(
    provider: TokenServer,
    refresh_token: str,
    clock: FakeClock,
    caplog: pytest.LogCaptureFixture,
) -> None:
    tokens = token_source(provider, clock, "source.imap")
    first = tokens.token()
    provider.set_down(True)
    try:
        clock.advance(LIFETIME * 0.9)  # due for renewal, not yet expired
        assert tokens.token() == first
        assert "cannot renew the OAuth2 access token yet" in caplog.text
        clock.advance(LIFETIME * 0.1)  # expired: nothing to fall back on
        with pytest.raises(OAuth2Error, match=r"gave no access token \(temporarily_unavailable\)"):
            tokens.token()
    finally:
        provider.set_down(False)
    assert tokens.token() != first


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"token_url": ""}, "source.imap.oauth2.token_url is empty"),
        (
            {"token_url": "http://login.example.org/token"},
            "give the provider's https:// token endpoint",
        ),
        ({"client_id": ""}, "source.imap.oauth2.client_id is empty"),
        (
            {"refresh_token_env": "MAILBOT_TEST_NO_SUCH_VARIABLE"},
            "the environment variable MAILBOT_TEST_NO_SUCH_VARIABLE (the OAuth2 refresh token) "
            "is not set",
        ),
    ],
)
def test_settings_that_cannot_give_a_token_are_a_config_error(
    provider: TokenServer, refresh_token: str, changes: dict[str, str], message: str
) -> None:
    with pytest.raises(ConfigError) as caught:
        TokenSource.from_settings(oauth2_settings(provider, **changes), "source.imap")
    assert message in str(caught.value)


def test_a_wrong_client_secret_and_an_unreachable_endpoint(
    provider: TokenServer, refresh_token: str, clock: FakeClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(SECRET_ENV, "not-the-secret")
    with pytest.raises(
        OAuth2Error, match=r"\(invalid_client\): check source.imap.oauth2.client_id"
    ):
        token_source(provider, clock, "source.imap").token()
    url = f"http://127.0.0.1:{free_port()}/token"
    tokens = TokenSource.from_settings(oauth2_settings(provider, token_url=url), "source.imap")
    with pytest.raises(OAuth2Error, match=f"cannot reach the token endpoint {url}: "):
        tokens.token()


# ----------------------------------------------------------------- the daemon


def oauth2_table(provider: TokenServer, scope: str) -> dict[str, str]:
    return {
        "token_url": provider.token_url,
        "client_id": provider.client_id,
        "client_secret_env": SECRET_ENV,
        "refresh_token_env": REFRESH_ENV,
        "scope": scope,
    }


def daemon_app(
    make_app: AppFactory,
    tmp_path: Path,
    server: OAuthDovecot,
    sink: OAuthSmtpSink,
    provider: TokenServer,
) -> App:
    values = settings_values(
        tmp_path, f"sqlite:///{tmp_path / 'mailbot.sqlite3'}", imap=server, smtp=sink
    )
    values["source"]["imap"].update(
        auth="xoauth2",
        oauth2=oauth2_table(provider, "https://outlook.office365.com/IMAP.AccessAsUser.All"),
    )
    values["replies"]["smtp"].update(
        username=server.user,
        auth="oauthbearer",
        oauth2=oauth2_table(provider, "https://outlook.office365.com/SMTP.Send"),
    )
    return make_app(values)


def test_the_daemon_fetches_and_answers_over_oauth2_as_tokens_expire_and_are_refused(
    dovecot_oauth: OAuthDovecot,
    smtp_oauth: OAuthSmtpSink,
    provider: TokenServer,
    refresh_token: str,
    clock: FakeClock,
    tmp_path: Path,
    make_app: AppFactory,
) -> None:
    dovecot_oauth.clear()
    app = daemon_app(make_app, tmp_path, dovecot_oauth, smtp_oauth, provider)
    app.token_clock = clock
    daemon = Daemon(app)
    issued, asked = len(provider.issued), len(provider.introspections)
    people = [
        ("中国科学院植物研究所", "张喆"),
        ("中国科学院微生物研究所", "李娜"),
        ("中国科学院大气物理研究所", "王堃"),
    ]

    def round_trip(n: int) -> None:
        dovecot_oauth.append("INBOX", proposal("outlook", *people[n]), july(20 + n))
        polled, sent = daemon.once()
        assert (polled.new, polled.failed, sent.sent) == (1, 0, 1)

    round_trip(0)  # one token for IMAP, one for SMTP
    assert len(provider.issued) == issued + 2
    clock.advance(LIFETIME * 0.9)  # both about to expire
    provider.expire_access_tokens()
    round_trip(1)
    assert len(provider.issued) == issued + 4
    assert refused(provider, asked) == 0  # renewed before use
    provider.expire_access_tokens()  # both revoked early
    round_trip(2)
    assert len(provider.issued) == issued + 6
    assert refused(provider, asked) == 2  # each refused once, then renewed
    assert len(smtp_oauth.wait_for(3)) == 3


def test_run_without_the_refresh_token_in_the_environment_is_one_line(
    dovecot_oauth: OAuthDovecot,
    smtp_oauth: OAuthSmtpSink,
    provider: TokenServer,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    make_app: AppFactory,
) -> None:
    monkeypatch.delenv(REFRESH_ENV, raising=False)
    monkeypatch.setenv(SECRET_ENV, provider.client_secret)
    values = daemon_app(
        make_app, tmp_path, dovecot_oauth, smtp_oauth, provider
    ).settings.model_dump()
    config = tmp_path / "mailbot.toml"
    config.write_text(toml({k: v for k, v in values.items() if k != "base_dir"}))
    result = CliRunner().invoke(main, ["--config", str(config), "run", "--once"])
    assert result.exit_code == 2
    assert result.output == (
        f"mailbot: the environment variable {REFRESH_ENV} (the OAuth2 refresh token) is not set\n"
    )
