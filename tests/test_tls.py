"""Certificates checked for IMAP and SMTP: a private CA trusted with ca_file, refused without."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import pytest

from mailbot.config import ConfigError, ImapSettings, SmtpSettings
from mailbot.replies.transports import SmtpTransport, TransportUnavailable
from mailbot.sources.base import SourceError
from mailbot.sources.imap import ImapMailbox
from tests.servers.dovecot import Dovecot
from tests.servers.smtp import SmtpSink
from tests.tlsfactory import CertificateAuthority

MESSAGE = b"From: a@anso.org.cn\r\nTo: b@example.cn\r\nSubject: t\r\n\r\nbody\r\n"


def imap_settings(server: Dovecot, **changes: Any) -> ImapSettings:
    values: dict[str, Any] = {
        "host": server.host,
        "port": server.tls_port,
        "security": "ssl",
        "username": server.user,
        "timeout": 10.0,
    }
    return ImapSettings(**{**values, **changes})


def smtp_settings(sink: SmtpSink, **changes: Any) -> SmtpSettings:
    values: dict[str, Any] = {
        "host": sink.host,
        "port": sink.port,
        "security": "starttls",
        "username": sink.user,
        "timeout": 10.0,
    }
    return SmtpSettings(**{**values, **changes})


def read_inbox(settings: ImapSettings, password: str) -> int | None:
    mailbox = ImapMailbox(settings, password)
    try:
        return mailbox.uidvalidity("INBOX")
    finally:
        mailbox.close()


@pytest.mark.parametrize("security", ["ssl", "starttls"])
def test_the_imap_source_trusts_a_private_ca_given_as_ca_file_and_no_other(
    dovecot_tls: Dovecot, private_ca: CertificateAuthority, security: str
) -> None:
    port = dovecot_tls.tls_port if security == "ssl" else dovecot_tls.port
    trusted = imap_settings(dovecot_tls, port=port, security=security, ca_file=str(private_ca.cert))
    assert read_inbox(trusted, dovecot_tls.password)
    with pytest.raises(SourceError, match="certificate verify failed") as caught:
        read_inbox(imap_settings(dovecot_tls, port=port, security=security), dovecot_tls.password)
    assert str(caught.value).endswith("give the CA's PEM file as source.imap.ca_file")


def test_the_smtp_transport_trusts_a_private_ca_given_as_ca_file_and_no_other(
    smtp_tls_sink: SmtpSink, private_ca: CertificateAuthority
) -> None:
    untrusted = SmtpTransport(smtp_settings(smtp_tls_sink), smtp_tls_sink.password)
    with pytest.raises(TransportUnavailable, match="certificate verify failed") as caught:
        untrusted.send(MESSAGE, "a@anso.org.cn", ["b@example.cn"])
    assert str(caught.value).endswith("give the CA's PEM file as replies.smtp.ca_file")
    assert smtp_tls_sink.messages == []
    settings = smtp_settings(smtp_tls_sink, ca_file=str(private_ca.cert))
    trusted = SmtpTransport(settings, smtp_tls_sink.password)
    try:
        trusted.send(MESSAGE, "a@anso.org.cn", ["b@example.cn"])
    finally:
        trusted.close()
    [received] = smtp_tls_sink.wait_for(1)
    assert received.rcpt_tos == ("b@example.cn",)
    assert received.auth_user == smtp_tls_sink.user


def test_insecure_connects_without_verifying_and_warns_each_time(
    dovecot_tls: Dovecot, smtp_tls_sink: SmtpSink, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="mailbot.net.tls")
    assert read_inbox(imap_settings(dovecot_tls, insecure=True), dovecot_tls.password)
    transport = SmtpTransport(smtp_settings(smtp_tls_sink, insecure=True), smtp_tls_sink.password)
    try:
        transport.send(MESSAGE, "a@anso.org.cn", ["b@example.cn"])
    finally:
        transport.close()
    smtp_tls_sink.wait_for(1)
    warnings = [r.getMessage() for r in caplog.records if r.name == "mailbot.net.tls"]
    assert len(warnings) == 2
    assert all("is NOT verified (insecure = true)" in w for w in warnings)
    assert "imap://" in warnings[0]
    assert "SMTP server" in warnings[1]


def test_a_ca_file_that_is_no_certificate_is_a_one_line_config_error(
    dovecot_tls: Dovecot, tmp_path: Path
) -> None:
    bad = tmp_path / "ca.pem"
    bad.write_text("not a certificate\n")
    with pytest.raises(ConfigError, match=r"ca_file .*ca\.pem: cannot be read as PEM"):
        read_inbox(imap_settings(dovecot_tls, ca_file=str(bad)), dovecot_tls.password)


def test_a_certificate_for_another_name_says_which_setting_to_change(
    dovecot_tls: Dovecot, private_ca: CertificateAuthority
) -> None:
    # The certificate is for 127.0.0.1; "localhost" reaches the same server under another name.
    settings = imap_settings(dovecot_tls, host="localhost", ca_file=str(private_ca.cert))
    with pytest.raises(SourceError, match="Hostname mismatch") as caught:
        read_inbox(settings, dovecot_tls.password)
    assert str(caught.value).endswith(
        "; the certificate is for another name: set source.imap.host to a name it carries"
    )
