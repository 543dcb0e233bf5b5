"""A throwaway certificate authority for TLS tests, made with the openssl command line tool."""

from __future__ import annotations

import shutil
import ssl
import subprocess
from dataclasses import dataclass
from pathlib import Path

from tests.servers.common import MissingDependencyError

__all__ = ["CertificateAuthority", "ServerCertificate"]


def _openssl(*args: str, cwd: Path) -> None:
    binary = shutil.which("openssl")
    if binary is None:
        raise MissingDependencyError(
            "the openssl command is not installed; install the Debian package 'openssl'"
        )
    result = subprocess.run(
        [binary, *args], cwd=cwd, capture_output=True, text=True, timeout=60, check=False
    )
    if result.returncode != 0:
        raise RuntimeError(f"openssl {' '.join(args)} failed:\n{result.stderr}")


# P-256 keys: made in milliseconds where RSA keys take seconds on a busy machine.
_KEY = ("-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes")


@dataclass(frozen=True)
class ServerCertificate:
    """A server's certificate chain and key, as PEM files."""

    cert: Path
    key: Path


class CertificateAuthority:
    """A private CA, as an office's mail server may use: trusted by nobody until told."""

    def __init__(self, directory: Path, name: str = "mailbot test CA") -> None:
        self.directory = directory
        self.cert = directory / "ca.pem"
        self._key = directory / "ca.key"
        directory.mkdir(parents=True, exist_ok=True)
        _openssl(
            "req", "-x509", *_KEY, "-keyout", self._key.name, "-out", self.cert.name,
            "-days", "30", "-subj", f"/CN={name}",
            "-addext", "basicConstraints=critical,CA:TRUE",
            "-addext", "keyUsage=critical,keyCertSign,cRLSign",
            cwd=directory,
        )  # fmt: skip

    def issue(self, name: str = "127.0.0.1", days: int = 90) -> ServerCertificate:
        """A server certificate for ``name`` (an IP address or a host name), signed by this CA."""
        stem = f"server-{name}"
        alt = f"IP:{name}" if name.replace(".", "").isdigit() else f"DNS:{name}"
        extensions = self.directory / f"{stem}.ext"
        extensions.write_text(
            f"subjectAltName={alt}\nbasicConstraints=CA:FALSE\n"
            "keyUsage=critical,digitalSignature\nextendedKeyUsage=serverAuth\n"
        )
        _openssl(
            "req", *_KEY, "-keyout", f"{stem}.key", "-out", f"{stem}.csr", "-subj", f"/CN={name}",
            cwd=self.directory,
        )  # fmt: skip
        _openssl(
            "x509", "-req", "-in", f"{stem}.csr", "-CA", self.cert.name, "-CAkey", self._key.name,
            "-CAcreateserial", "-out", f"{stem}.pem", "-days", str(days),
            "-extfile", extensions.name,
            cwd=self.directory,
        )  # fmt: skip
        key = self.directory / f"{stem}.key"
        key.chmod(0o644)  # read by the test servers, which may run as another user
        return ServerCertificate(self.directory / f"{stem}.pem", key)

    def server_context(self, certificate: ServerCertificate) -> ssl.SSLContext:
        """The SSL context a Python server (aiosmtpd) presents the certificate with."""
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.load_cert_chain(certificate.cert, certificate.key)
        return context
