"""Certificates from a private CA: accepted with ca_file, refused without, for IMAP and SMTP."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from mailbot.config import ConfigError, ImapSettings, SmtpSettings
from mailbot.replies.transports import SmtpTransport, TransportUnavailable
from mailbot.sources.base import SourceError
from mailbot.sources.imap import ImapMailbox
from tests.mailfactory import build_mail
from tests.private_ca import PrivateCa, TlsDovecot, TlsSmtp, make_private_ca


@pytest.fixture(scope="module")
def ca(tmp_path_factory: pytest.TempPathFactory) -> PrivateCa:
    return make_private_ca(tmp_path_factory.mktemp("ca"))


@pytest.fixture(scope="module")
def tls_dovecot(ca: PrivateCa) -> Iterator[TlsDovecot]:
    with TlsDovecot(ca) as server:
        yield server


def imap(server: TlsDovecot, **changes: Any) -> ImapMailbox:
    values: dict[str, Any] = {
        "host": server.host,
        "port": server.port,
        "security": "starttls",
        "username": server.user,
        "timeout": 10.0,
    }
    values.update(changes)
    return ImapMailbox(ImapSettings(**values), server.password)


def uidvalidity(mailbox: ImapMailbox) -> int | None:
    try:
        return mailbox.uidvalidity("INBOX")
    finally:
        mailbox.close()


def test_imap_accepts_the_private_ca_given_as_ca_file(tls_dovecot: TlsDovecot) -> None:
    assert uidvalidity(imap(tls_dovecot, ca_file=str(tls_dovecot.ca.ca_file))) is not None


def test_imap_refuses_the_private_ca_without_ca_file(tls_dovecot: TlsDovecot) -> None:
    with pytest.raises(SourceError, match="CERTIFICATE_VERIFY_FAILED") as caught:
        uidvalidity(imap(tls_dovecot))
    assert str(caught.value).endswith(
        "; if the server's certificate comes from a private CA, give the CA's PEM file "
        "as source.imap.ca_file"
    )


def test_imap_insecure_connects_and_warns(
    tls_dovecot: TlsDovecot, caplog: pytest.LogCaptureFixture
) -> None:
    assert uidvalidity(imap(tls_dovecot, insecure=True)) is not None
    assert "is NOT verified (insecure = true)" in caplog.text


def test_a_ca_file_that_is_not_pem_is_a_config_error(
    tls_dovecot: TlsDovecot, tmp_path: Path
) -> None:
    junk = tmp_path / "ca.pem"
    junk.write_text("not a certificate\n")
    with pytest.raises(ConfigError, match=f"ca_file {junk}: cannot be read as PEM certificates"):
        uidvalidity(imap(tls_dovecot, ca_file=str(junk)))


def smtp(server: TlsSmtp, **changes: Any) -> SmtpTransport:
    values: dict[str, Any] = {
        "host": server.host,
        "port": server.port,
        "security": "starttls",
        "timeout": 10.0,
    }
    values.update(changes)
    return SmtpTransport(SmtpSettings(**values), None, local_hostname="localhost")


def send(transport: SmtpTransport) -> None:
    try:
        transport.send(build_mail("outlook", subject="回执"), "anso@example.org", ["pi@example.cn"])
    finally:
        transport.close()


def test_smtp_accepts_the_private_ca_with_ca_file_and_refuses_it_without(
    ca: PrivateCa, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING)
    with TlsSmtp(ca) as server:
        send(smtp(server, ca_file=str(ca.ca_file)))
        assert server.handler.received == 1
        with pytest.raises(TransportUnavailable, match="CERTIFICATE_VERIFY_FAILED") as caught:
            send(smtp(server))
        assert str(caught.value).endswith("give the CA's PEM file as replies.smtp.ca_file")
        assert server.handler.received == 1


def test_a_certificate_for_another_name_says_which_setting_to_change(
    tls_dovecot: TlsDovecot,
) -> None:
    # The certificate is for 127.0.0.1; "localhost" reaches the same server under another name.
    mailbox = imap(tls_dovecot, host="localhost", ca_file=str(tls_dovecot.ca.ca_file))
    with pytest.raises(SourceError, match="Hostname mismatch") as caught:
        uidvalidity(mailbox)
    assert str(caught.value).endswith(
        "; the certificate is for another name: set source.imap.host to a name it carries"
    )
