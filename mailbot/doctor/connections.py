"""`mailbot doctor` on a connection: reached, its certificate good, its clock right."""

from __future__ import annotations

import re
import socket
import ssl
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any

from mailbot.config import ImapSettings, SmtpSettings, TlsSettings
from mailbot.doctor.findings import Finding, fail, ok, warn
from mailbot.net.hosts import is_loopback

# A certificate that runs out sooner than this is worth a warning.
EXPIRY_WARNING_DAYS = 21
# The server's clock against ours: the deadline is judged by the server's receipt time.
CLOCK_OK_SECONDS = 10.0
CLOCK_FAIL_SECONDS = 120.0

_X509_EXPIRED = 10
_X509_NAME_MISMATCH = (62, 64)  # a host name, an IP address


def check_tcp(label: str, host: str, port: int, timeout: float, section: str) -> Finding:
    try:
        with socket.create_connection((host, port), timeout=timeout):
            pass
    except OSError as exc:
        reason = exc.strerror or type(exc).__name__
        return fail(
            f"{label} TCP",
            f"cannot reach {host}:{port}: {reason}",
            f"check host and port in {section}, the server, and the firewall",
        )
    return ok(f"{label} TCP", f"{host}:{port} reachable")


def plain_warning(label: str, host: str, section: str) -> Finding:
    if is_loopback(host):
        text = f"a plain connection to {host}: fine on this machine, readable by nobody else"
    else:
        text = f"a plain connection to {host}: the password and every mail cross the network unread"
    return warn(f"{label} TLS", text, f'set security = "ssl" or "starttls" in {section}')


def certificate_text(cert: dict[str, Any], now: datetime) -> tuple[str, int]:
    """The certificate's names and expiry for a person, and the days it has left."""
    subject = dict(item[0] for item in cert.get("subject", ()) if item)
    names = [value for _kind, value in cert.get("subjectAltName", ())]
    issuer = dict(item[0] for item in cert.get("issuer", ()) if item)
    expires = datetime.fromtimestamp(ssl.cert_time_to_seconds(cert["notAfter"]), UTC)
    days = (expires - now).days
    shown = ", ".join(names) or subject.get("commonName", "?")
    text = (
        f"certificate for {shown} (issued by {issuer.get('commonName', '?')}), "
        f"valid until {expires:%Y-%m-%d} ({days} days), verified"
    )
    return text, days


def tls_success(label: str, cert: dict[str, Any] | None, settings: TlsSettings) -> Finding:
    if settings.insecure or not cert:
        return warn(
            f"{label} TLS",
            "encrypted, but the certificate is NOT verified (insecure = true)",
            "remove insecure = true; for a private CA set ca_file",
        )
    text, days = certificate_text(cert, datetime.now(UTC))
    if settings.ca_file:
        text += f" with ca_file {settings.ca_file}"
    if days < EXPIRY_WARNING_DAYS:
        return warn(f"{label} TLS", text, "the server's certificate must be renewed soon")
    return ok(f"{label} TLS", text)


def tls_failure(label: str, where: str, exc: Exception, section: str) -> Finding:
    """A failed handshake named as the operator can act on it."""
    check = f"{label} TLS"
    if isinstance(exc, ssl.SSLCertVerificationError):
        reason = exc.verify_message or str(exc)
        if exc.verify_code in _X509_NAME_MISMATCH:
            return fail(
                check,
                f"the certificate of {where} does not name this host: {reason}",
                f"set host in {section} to a name the certificate carries",
            )
        if exc.verify_code == _X509_EXPIRED:
            return fail(
                check,
                f"the certificate of {where} has expired",
                "the server's certificate must be renewed",
            )
        return fail(
            check,
            f"the certificate of {where} is not trusted: {reason}",
            f"if the server uses a private CA, set ca_file in {section} to that "
            "CA's certificate (PEM)",
        )
    reason = " ".join(str(exc).split()) or type(exc).__name__
    return fail(
        check,
        f"no TLS with {where}: {reason}",
        f'check port and security in {section} ("ssl" on 993/465, "starttls" on 143/587)',
    )


def clock_finding(label: str, theirs: datetime, before: datetime, after: datetime) -> Finding:
    """The server's clock against ours, read between ``before`` and ``after``."""
    ours = before + (after - before) / 2
    skew = (theirs - ours).total_seconds()
    # The server's time has whole seconds, and ours moved while we asked.
    slack = (after - before).total_seconds() / 2 + 1
    off = max(0.0, abs(skew) - slack)
    direction = "ahead of" if skew > 0 else "behind"
    text = f"the server's clock is {abs(skew):.0f} s {direction} this machine's"
    fix = (
        "receipt times decide lateness at the deadline: have both clocks set by NTP "
        "(timedatectl on this machine; the server's administrator for the server)"
    )
    if off > CLOCK_FAIL_SECONDS:
        return fail(f"{label} clock", text, fix)
    if off > CLOCK_OK_SECONDS:
        return warn(f"{label} clock", text, fix)
    return ok(f"{label} clock", f"{text} (within {CLOCK_OK_SECONDS:.0f} s)")


_BANNER_DATE = re.compile(
    r"(?:[A-Z][a-z]{2}, )?\d{1,2} [A-Z][a-z]{2} \d{4} \d{2}:\d{2}:\d{2} [+-]\d{4}"
)


def banner_time(banner: str) -> datetime | None:
    """The date in an SMTP greeting (Exchange and others say it), or None."""
    found = _BANNER_DATE.search(banner)
    if found is None:
        return None
    try:
        return parsedate_to_datetime(found.group(0))
    except (TypeError, ValueError):
        return None


def credentials_fix(settings: ImapSettings | SmtpSettings, section: str) -> str:
    """Where the login's secret comes from, for the fix of a refused login."""
    if settings.auth == "password":
        return f"check username in {section} and the password in ${settings.password_env}"
    token = settings.oauth2.refresh_token_env
    return f"check username and [{section[1:-1]}.oauth2] in the config, and the token in ${token}"
