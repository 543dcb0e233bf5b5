"""Shared fixtures: the call's rules, and running `mailbot check` as a user does."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from click.testing import CliRunner

from mailbot.calls import Call, load_call
from mailbot.cli import main
from tests.servers.dovecot import Dovecot
from tests.servers.postgres import Postgres
from tests.servers.smtp import SmtpSink
from tests.tlsfactory import CertificateAuthority, ServerCertificate

ROOT = Path(__file__).resolve().parent.parent
RULES = ROOT / "rules" / "anso2021.toml"
SHARED = ROOT.parent / "shared"


def write_rules(folder: Path, text: str, name: str = "rules.toml") -> Path:
    """A rules file beside copies of the lists it names, as a new call's folder holds them."""
    for listed in RULES.parent.glob("*.txt"):
        (folder / listed.name).write_text(listed.read_text(encoding="utf-8"), encoding="utf-8")
    path = folder / name
    path.write_text(text, encoding="utf-8")
    return path


@pytest.fixture(scope="session")
def call() -> Call:
    return load_call(RULES)


CheckRunner = Callable[..., dict[str, Any]]


@pytest.fixture
def check(tmp_path: Path) -> CheckRunner:
    """Run `mailbot check FILE --json` on raw bytes; return the parsed JSON object."""

    def run(raw: bytes, received_at: datetime | str | None = None) -> dict[str, Any]:
        path = tmp_path / "mail.eml"
        path.write_bytes(raw)
        args = ["check", str(path), "--json", "--rules", str(RULES)]
        if received_at is not None:
            stamp = received_at if isinstance(received_at, str) else received_at.isoformat()
            args += ["--received-at", stamp]
        result = CliRunner().invoke(main, args, catch_exceptions=False)
        assert result.exit_code == 0, result.output
        data: dict[str, Any] = json.loads(result.stdout)
        return data

    return run


def codes(verdict: dict[str, Any]) -> list[str]:
    return [p["code"] for p in verdict["problems"]]


def roles(verdict: dict[str, Any]) -> dict[str, str]:
    return {a["filename"]: a["role"] for a in verdict["attachments"]}


# Real servers on 127.0.0.1, started once per test session where they are slow to start.


@pytest.fixture(scope="session")
def dovecot() -> Iterator[Dovecot]:
    with Dovecot() as server:
        yield server


@pytest.fixture
def mailbox(dovecot: Dovecot) -> Dovecot:
    # The server is shared by the session, so every test starts from an empty mailbox.
    dovecot.clear()
    return dovecot


@pytest.fixture(scope="session")
def postgres() -> Iterator[Postgres]:
    with Postgres() as server:
        yield server


@pytest.fixture
def database_url(postgres: Postgres) -> Iterator[str]:
    url = postgres.create_database()
    yield url
    postgres.drop_database(sa.make_url(url).database or "")


@pytest.fixture
def smtp_sink() -> Iterator[SmtpSink]:
    with SmtpSink() as sink:
        yield sink


# TLS as an office's servers have it: a certificate from a private CA, made for this session.


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
