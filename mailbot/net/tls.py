"""TLS for the mail servers: certificates always verified, a private CA added by file.

Verification is switched off only by an explicit ``insecure = true`` in the
server's section, and then every start says so in a warning.
"""

from __future__ import annotations

import logging
import ssl

from mailbot.config import ConfigError, TlsSettings

log = logging.getLogger(__name__)


def client_context(settings: TlsSettings, server: str) -> ssl.SSLContext:
    """The SSL context for a connection to ``server`` (a name for messages)."""
    if settings.insecure:
        log.warning(
            "the certificate of %s is NOT verified (insecure = true): anyone on the path "
            "can read the mail and the password; set ca_file instead",
            server,
        )
        context = ssl.create_default_context()
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
        return context
    context = ssl.create_default_context()
    if settings.ca_file:
        try:
            context.load_verify_locations(cafile=settings.ca_file)
        except (OSError, ssl.SSLError) as exc:
            reason = getattr(exc, "strerror", None) or exc
            raise ConfigError(
                f"ca_file {settings.ca_file}: cannot be read as PEM certificates: {reason}"
            ) from None
    return context


# OpenSSL's X509_V_ERR_HOSTNAME_MISMATCH: the certificate names another server.
_HOSTNAME_MISMATCH = 62


def certificate_hint(exc: BaseException, section: str) -> str:
    """How to fix a certificate that failed verification ("" for any other error)."""
    if not isinstance(exc, ssl.SSLCertVerificationError):
        return ""
    if exc.verify_code == _HOSTNAME_MISMATCH:
        return f"; the certificate is for another name: set {section}.host to a name it carries"
    return (
        "; if the server's certificate comes from a private CA, give the CA's PEM file "
        f"as {section}.ca_file"
    )
