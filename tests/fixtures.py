"""The tests' resources, one fixture each: servers, apps, databases, a browser; each disposes of
what it makes. A plugin of tests/conftest.py; it marks each test by the fixtures it uses and
turns a server that is not installed into a skip."""

from __future__ import annotations

import os
from collections.abc import Callable, Generator, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from mailbot.app import App
from mailbot.config import load_settings
from mailbot.store.db import Database
from tests.daemon_support import PASSWORD_ENV
from tests.servers.common import MissingDependencyError
from tests.servers.dovecot import Dovecot
from tests.servers.postgres import Postgres
from tests.servers.smtp import SmtpSink
from tests.tlsfactory import CertificateAuthority, ServerCertificate

# Marks given to every test that uses one of these fixtures, directly or through another:
# `pytest -m "not servers and not browser"` then leaves out whatever needs a server or Chromium.
SERVER_FIXTURES = frozenset({"dovecot", "dovecot_tls", "postgres", "smtp_sink", "smtp_tls_sink"})
BROWSER_FIXTURES = frozenset({"browser"})

# The two databases a test runs on when it takes `db_url` (or parametrises a fixture of its own
# by DATABASES): SQLite always, PostgreSQL where the server is (the `servers` mark).
DATABASES = ["sqlite", pytest.param("postgresql", marks=pytest.mark.servers)]

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-quic",
    # A *.localhost name (the proxy's desk.localhost) is 127.0.0.1, whatever the resolver says.
    "--host-resolver-rules=MAP *.localhost 127.0.0.1",
]


# --------------------------------------------------------------------------- real servers
# Started once per test session where they are slow to start.


@pytest.fixture(scope="session")
def dovecot() -> Iterator[Dovecot]:
    with Dovecot() as server:
        yield server


@pytest.fixture
def mailbox(dovecot: Dovecot) -> Dovecot:
    # The server is shared by the session, so every test starts from an empty mailbox.
    dovecot.clear()
    return dovecot


@pytest.fixture
def imap_env(mailbox: Dovecot, monkeypatch: pytest.MonkeyPatch) -> Dovecot:
    """The empty mailbox, its password in the environment variable the settings name."""
    monkeypatch.setenv(PASSWORD_ENV, mailbox.password)
    return mailbox


@pytest.fixture(scope="session")
def postgres() -> Iterator[Postgres]:
    with Postgres() as server:
        yield server


@pytest.fixture
def database_url(postgres: Postgres) -> Iterator[str]:
    url = postgres.create_database()
    yield url
    postgres.drop_database(sa.make_url(url).database or "")


@pytest.fixture(params=DATABASES)
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A new database: an SQLite file, then a PostgreSQL database."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'mailbot.sqlite3'}"
    url: str = request.getfixturevalue("database_url")
    return url


@pytest.fixture
def smtp_sink() -> Iterator[SmtpSink]:
    with SmtpSink() as sink:
        yield sink


# --------------------------------------------------------------------------- TLS
# As an office's servers have it: a certificate from a private CA, made for this session.


@pytest.fixture(scope="session")
def private_ca(tmp_path_factory: pytest.TempPathFactory) -> CertificateAuthority:
    return CertificateAuthority(tmp_path_factory.mktemp("private-ca"))


@pytest.fixture(scope="session")
def server_certificate(private_ca: CertificateAuthority) -> ServerCertificate:
    return private_ca.issue("127.0.0.1")


@pytest.fixture(scope="session")
def dovecot_tls(server_certificate: ServerCertificate) -> Iterator[Dovecot]:
    """Dovecot with the private CA's certificate: STARTTLS on port, IMAP over TLS on tls_port."""
    with Dovecot(tls_cert=server_certificate.cert, tls_key=server_certificate.key) as server:
        yield server


@pytest.fixture
def smtp_tls_sink(
    private_ca: CertificateAuthority, server_certificate: ServerCertificate
) -> Iterator[SmtpSink]:
    """An SMTP sink offering STARTTLS with the private CA's certificate."""
    with SmtpSink(tls_context=private_ca.server_context(server_certificate)) as sink:
        yield sink


# --------------------------------------------------------------------------- apps

AppFactory = Callable[[dict[str, Any]], App]


@pytest.fixture
def db(tmp_path: Path) -> Iterator[Database]:
    """A migrated SQLite database in the test's folder, disposed of afterwards."""
    database = Database(f"sqlite:///{tmp_path / 'mailbot.sqlite3'}")
    database.upgrade()
    yield database
    database.dispose()


@pytest.fixture(scope="session")
def migrated_sqlite(tmp_path_factory: pytest.TempPathFactory) -> bytes:
    """The bytes of an SQLite database the migrations brought to the newest revision, made
    once a session: Alembic takes half a second a database, and most tests want the schema
    as it is, not how it was made (tests/test_migrations.py runs the migrations themselves)."""
    path = tmp_path_factory.mktemp("schema") / "mailbot.sqlite3"
    db = Database(f"sqlite:///{path}")
    try:
        db.upgrade()
    finally:
        db.dispose()  # the last connection's close folds the WAL into the file
    return path.read_bytes()


@pytest.fixture
def make_app(migrated_sqlite: bytes) -> Iterator[AppFactory]:
    """Builds an App from settings values on a fresh schema; closes every one it built.
    A new SQLite database starts as a copy of the migrated one, then upgrade() finds it at
    the newest revision, as it would after `mailbot init`."""
    built: list[App] = []

    def build(values: dict[str, Any]) -> App:
        app = App.build(load_settings(None, **values))
        built.append(app)
        path = app.db.engine.url.database or ""
        if app.db.engine.dialect.name == "sqlite" and _empty_file(path):
            # Written into the file Database made empty, so its owner-only mode stays.
            Path(path).write_bytes(migrated_sqlite)
        app.db.upgrade()
        return app

    yield build
    for app in reversed(built):
        app.close()


def _empty_file(path: str) -> bool:
    return os.path.isfile(path) and os.path.getsize(path) == 0


# --------------------------------------------------------------------------- Chromium


@pytest.fixture(scope="session")
def browser() -> Iterator[Any]:
    """Debian's Chromium, headless, driven by Playwright; one for the session."""
    if not CHROMIUM.exists():
        if os.environ.get("CI"):
            pytest.fail("CI must have Debian's chromium (.ci/run installs it)")
        pytest.skip("no /usr/bin/chromium here: apt-get install chromium")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(
            executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS
        )
        yield launched
        launched.close()


@pytest.fixture(scope="session")
def screenshots(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A folder for the pages' screenshots (shoot() copies each to tests/artifacts/)."""
    return tmp_path_factory.mktemp("screenshots")


# --------------------------------------------------------------------------- marks


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Mark each test by what its fixtures start, so no mark can be forgotten on a new test."""
    for item in items:
        used = set(getattr(item, "fixturenames", ()))
        if used & SERVER_FIXTURES:
            item.add_marker(pytest.mark.servers)
        if used & BROWSER_FIXTURES:
            item.add_marker(pytest.mark.browser)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_setup(item: pytest.Item) -> Generator[None, None, None]:
    with _skip_when_missing():
        return (yield)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_call(item: pytest.Item) -> Generator[None, None, None]:
    with _skip_when_missing():
        return (yield)


@contextmanager
def _skip_when_missing() -> Iterator[None]:
    """A server that is not installed skips the test that needs it, with the reason;
    CI installs every one (.ci/run), so there it fails."""
    try:
        yield
    except MissingDependencyError as missing:
        if os.environ.get("CI"):
            raise
        pytest.skip(f"not installed here: {missing}")
