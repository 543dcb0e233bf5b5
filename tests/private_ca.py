"""A throwaway private CA and a certificate for 127.0.0.1, and Dovecot and SMTP serving it.

Made with the openssl command (Debian package openssl), as an office's own
CA would issue a mail server's certificate.
"""

from __future__ import annotations

import asyncio
import shutil
import ssl
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, Envelope, Session

from tests.servers import LOCALHOST, Dovecot, MissingDependencyError, free_port


@dataclass(frozen=True)
class PrivateCa:
    ca_file: Path  # the CA's certificate: what an operator gives as ca_file
    cert_file: Path  # the server's certificate, for 127.0.0.1, signed by the CA
    key_file: Path

    def server_context(self) -> ssl.SSLContext:
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(self.cert_file, self.key_file)
        return context


def make_private_ca(folder: Path) -> PrivateCa:
    openssl = shutil.which("openssl")
    if openssl is None:
        raise MissingDependencyError("openssl not found; install the Debian package 'openssl'")
    folder.mkdir(parents=True, exist_ok=True)

    def run(*args: str) -> None:
        subprocess.run([openssl, *args], cwd=folder, check=True, capture_output=True)

    run(
        "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
        "-subj", "/CN=mailbot test private CA", "-keyout", "ca.key", "-out", "ca.pem",
        "-addext", "basicConstraints=critical,CA:TRUE",
        "-addext", "keyUsage=critical,keyCertSign,cRLSign",
    )  # fmt: skip
    run(
        "req", "-newkey", "rsa:2048", "-nodes", "-subj", "/CN=127.0.0.1",
        "-keyout", "server.key", "-out", "server.csr",
    )  # fmt: skip
    (folder / "server.ext").write_text(
        "subjectAltName = IP:127.0.0.1\nextendedKeyUsage = serverAuth\n"
        "basicConstraints = CA:FALSE\n"
    )
    run(
        "x509", "-req", "-in", "server.csr", "-CA", "ca.pem", "-CAkey", "ca.key",
        "-CAcreateserial", "-days", "2", "-extfile", "server.ext", "-out", "server.pem",
    )  # fmt: skip
    for name in ("ca.pem", "server.pem", "server.key"):
        # Dovecot reads them as root before it drops privileges; 0644 is fine for a test key.
        (folder / name).chmod(0o644)
    return PrivateCa(folder / "ca.pem", folder / "server.pem", folder / "server.key")


class TlsDovecot(Dovecot):
    """Dovecot offering STARTTLS with a certificate from ``ca``."""

    def __init__(self, ca: PrivateCa, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.ca = ca

    def _auth_config(self, passwd: Path) -> str:
        # Later settings win: this turns the base config's "ssl = no" around.
        return (
            super()._auth_config(passwd)
            + f"\nssl = yes\nssl_cert = <{self.ca.cert_file}\nssl_key = <{self.ca.key_file}"
        )


class _Accept:
    def __init__(self) -> None:
        self.received = 0

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        self.received += 1
        return "250 2.0.0 Message accepted"


class TlsSmtp:
    """An aiosmtpd server offering STARTTLS with a certificate from ``ca``; counts messages."""

    def __init__(self, ca: PrivateCa) -> None:
        self.host = LOCALHOST
        self.port = free_port()
        self.handler = _Accept()
        self._controller = Controller(
            self.handler,
            hostname=self.host,
            port=self.port,
            loop=asyncio.new_event_loop(),
            server_hostname="mailbot-test-tls",
            tls_context=ca.server_context(),
            require_starttls=True,
        )

    def __enter__(self) -> TlsSmtp:
        self._controller.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._controller.stop()
