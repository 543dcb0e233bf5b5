"""Real Dovecot IMAP, aiosmtpd SMTP and PostgreSQL servers on 127.0.0.1 for integration tests."""

from __future__ import annotations

import asyncio
import atexit
import base64
import email
import email.message
import email.policy
import functools
import glob
import grp
import hashlib
import hmac
import os
import pwd
import re
import secrets
import shutil
import signal
import socket
import ssl
import stat
import subprocess
import tempfile
import threading
import time
from collections.abc import Iterable, Sequence
from contextlib import suppress
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from types import TracebackType
from typing import Any, Self

import psycopg
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, AuthResult, Envelope, LoginPassword, Session
from imapclient import IMAPClient  # type: ignore[import-untyped]
from psycopg import sql
from sqlalchemy.engine import URL

__all__ = [
    "LOCALHOST",
    "Dovecot",
    "MissingDependencyError",
    "Postgres",
    "ReceivedMessage",
    "ServerError",
    "SmtpSink",
    "free_port",
]

LOCALHOST = "127.0.0.1"

# Owner of mail files and of the PostgreSQL cluster when the tests run as root:
# Dovecot refuses mail access as UID 0 and PostgreSQL refuses to run as root.
DEFAULT_UNPRIVILEGED_USER = "nobody"

# Debian keeps admin tools in sbin, which a non-login root shell may not have on PATH.
_SEARCH_PATH = os.pathsep.join(
    [os.environ.get("PATH", ""), "/usr/sbin", "/sbin", "/usr/bin", "/bin"]
)


class MissingDependencyError(RuntimeError):
    """A server binary or system account needed by a helper is not installed."""


class ServerError(RuntimeError):
    """A server failed to start, become ready or stop."""


def free_port(host: str = LOCALHOST) -> int:
    """Return a TCP port on *host* that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        port: int = sock.getsockname()[1]
        return port


def _tail(path: Path, limit: int = 4000) -> str:
    try:
        text = path.read_text(errors="replace")
    except OSError:
        return f"<{path} not readable>"
    return text[-limit:]


def _is_root() -> bool:
    return os.geteuid() == 0


def _lookup_user(name: str, package: str) -> pwd.struct_passwd:
    try:
        return pwd.getpwnam(name)
    except KeyError:
        raise MissingDependencyError(
            f"system user {name!r} does not exist; it is created by the Debian package "
            f"{package!r} (apt-get install -y {package})"
        ) from None


def _current_user() -> tuple[pwd.struct_passwd, grp.struct_group]:
    try:
        user = pwd.getpwuid(os.getuid())
        group = grp.getgrgid(os.getgid())
    except KeyError:
        # Dovecot resolves its service users by name, so an anonymous UID cannot work.
        raise MissingDependencyError(
            f"uid {os.getuid()} / gid {os.getgid()} has no passwd/group entry"
        ) from None
    return user, group


def _unprivileged_user(run_as: str | None) -> pwd.struct_passwd | None:
    """The account servers run as when we are root, or None to run as ourselves."""
    if not _is_root():
        return None
    name = run_as or DEFAULT_UNPRIVILEGED_USER
    try:
        return pwd.getpwnam(name)
    except KeyError:
        raise MissingDependencyError(
            f"user {name!r} to run test servers as does not exist; "
            f"create it with: useradd --system --no-create-home {name}"
        ) from None


def _as_user(argv: Sequence[str], user: pwd.struct_passwd | None) -> list[str]:
    if user is None:
        return list(argv)
    runuser = shutil.which("runuser", path=_SEARCH_PATH)
    if runuser:
        return [runuser, "-u", user.pw_name, "--", *argv]
    setpriv = shutil.which("setpriv", path=_SEARCH_PATH)
    if setpriv:
        return [
            setpriv,
            f"--reuid={user.pw_uid}",
            f"--regid={user.pw_gid}",
            "--clear-groups",
            "--",
            *argv,
        ]
    raise MissingDependencyError(
        "neither runuser nor setpriv found; install the Debian package 'util-linux'"
    )


@functools.cache
def _die_with_parent_prefix() -> tuple[str, ...]:
    """Command prefix that sends SIGTERM to the child when the test process dies.

    atexit never runs when pytest itself is killed (e.g. by `timeout`), which
    would leave a daemon behind. setpriv execs in place, so no preexec_fn (unsafe
    next to the SMTP sink's thread) is needed. The signal fires when the *thread*
    that started the child exits, so start servers from the main thread.
    """
    setpriv = shutil.which("setpriv", path=_SEARCH_PATH)
    if setpriv is None:
        return ()
    probe = subprocess.run(
        [setpriv, "--pdeathsig", "TERM", "--", "true"], capture_output=True, check=False
    )
    return (setpriv, "--pdeathsig", "TERM", "--") if probe.returncode == 0 else ()


def _world_traversable(path: Path) -> bool:
    return all(os.stat(p).st_mode & stat.S_IXOTH for p in (path, *path.parents))


def _make_workdir(prefix: str, shared: bool) -> Path:
    """Create a private temp dir; *shared* means other local users must reach it."""
    base = Path(tempfile.gettempdir()).resolve()
    # Unix socket paths are capped at ~107 bytes and an unprivileged server user
    # must traverse every parent, so fall back to /tmp when TMPDIR is unsuitable.
    if len(str(base)) > 40 or (shared and not _world_traversable(base)):
        base = Path("/tmp")
    path = Path(tempfile.mkdtemp(prefix=prefix, dir=base))
    if shared:
        path.chmod(0o755)
    return path


def _chown(path: Path, user: pwd.struct_passwd | None) -> None:
    if user is not None:
        os.chown(path, user.pw_uid, user.pw_gid)


class _ManagedServer:
    """Lifecycle shared by the helpers: start/stop/restart, close, context manager."""

    def start(self) -> Self:
        raise NotImplementedError

    def stop(self) -> None:
        raise NotImplementedError

    def _remove_files(self) -> None:
        pass

    def restart(self) -> None:
        self.stop()
        self.start()

    def close(self) -> None:
        """Stop the server and delete everything it wrote."""
        atexit.unregister(self.close)
        self.stop()
        self._remove_files()

    def _register_cleanup(self) -> None:
        # A crashed or interrupted test run must not leave daemons or temp dirs behind.
        atexit.unregister(self.close)
        atexit.register(self.close)

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


# --------------------------------------------------------------------------- IMAP


def _find_dovecot() -> str:
    binary = shutil.which("dovecot", path=_SEARCH_PATH)
    if binary is None:
        raise MissingDependencyError(
            "dovecot binary not found; install the Debian package 'dovecot-imapd' "
            "(apt-get install -y dovecot-imapd)"
        )
    prefix = Path(binary).resolve().parent.parent
    libexec_dirs = [prefix / "lib/dovecot", prefix / "libexec/dovecot"]
    # dovecot-core alone starts fine and only fails at the first login, so check early.
    if not any((d / "imap").is_file() for d in libexec_dirs):
        raise MissingDependencyError(
            f"Dovecot IMAP server (imap in {', '.join(map(str, libexec_dirs))}) not found; "
            "install the Debian package 'dovecot-imapd' (apt-get install -y dovecot-imapd)"
        )
    return binary


def _ssha512(password: str) -> str:
    # A salted hash keeps even the throwaway test password out of the file.
    salt = secrets.token_bytes(8)
    digest = hashlib.sha512(password.encode() + salt).digest()
    return "{SSHA512}" + base64.b64encode(digest + salt).decode()


_APPENDUID = re.compile(rb"\[APPENDUID \d+ (\d+)\]")

# Dovecot's internal services sit in chroots by default; chroot() needs root, and
# for a throwaway test server the extra isolation buys nothing, so use one layout.
_CHROOTED_SERVICES = (
    "anvil",
    "imap-login",
    "imap-urlauth-login",
    "ipc",
    "old-stats",
    "aggregator",
    "director",
)


class Dovecot(_ManagedServer):
    """A private Dovecot 2.3 IMAP server with one Maildir user.

    Without a certificate it speaks plain IMAP only. Given one (``tls_cert``
    and ``tls_key``, PEM files), ``port`` also offers STARTTLS and ``tls_port``
    speaks IMAP over TLS from the first byte; plain logins stay allowed.
    """

    host: str
    port: int
    tls_port: int | None
    user: str
    password: str

    def __init__(
        self,
        *,
        port: int | None = None,
        user: str | None = None,
        run_as: str | None = None,
        startup_timeout: float = 15.0,
        tls_cert: Path | None = None,
        tls_key: Path | None = None,
    ) -> None:
        """*run_as* owns the mail when running as root (default: nobody)."""
        self._binary = _find_dovecot()
        self.host = LOCALHOST
        self.port = port or free_port()
        if (tls_cert is None) != (tls_key is None):
            raise ValueError("tls_cert and tls_key go together")
        self._tls = (tls_cert, tls_key) if tls_cert is not None and tls_key is not None else None
        self.tls_port = free_port() if self._tls is not None else None
        self.user = user or f"mailbot-{secrets.token_hex(4)}"
        self.password = secrets.token_urlsafe(18)
        self._run_as = run_as
        self._startup_timeout = startup_timeout
        self._proc: subprocess.Popen[bytes] | None = None
        self._dir: Path | None = None

    @property
    def directory(self) -> Path:
        if self._dir is None:
            raise RuntimeError("Dovecot has not been started")
        return self._dir

    @property
    def log_path(self) -> Path:
        return self.directory / "dovecot.log"

    @property
    def mail_dir(self) -> Path:
        """The user's Maildir (created by Dovecot at first login)."""
        return self.directory / "mail" / self.user

    @property
    def running(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    def log_text(self) -> str:
        return _tail(self.log_path, limit=1 << 20)

    def _service_accounts(self) -> dict[str, str]:
        mail_user = _unprivileged_user(self._run_as)
        if mail_user is None:
            # Unprivileged Dovecot cannot switch users, so every role is ourselves.
            me, my_group = _current_user()
            return {
                "internal_user": me.pw_name,
                "internal_group": my_group.gr_name,
                "login_user": me.pw_name,
                "mail_uid": str(me.pw_uid),
                "mail_gid": str(me.pw_gid),
            }
        # Dovecot rejects mail_uid 0 ("Mail access not allowed for root") and
        # insists on distinct internal/login users, which Debian's package creates.
        internal = _lookup_user("dovecot", "dovecot-core")
        _lookup_user("dovenull", "dovecot-core")
        return {
            "internal_user": internal.pw_name,
            "internal_group": grp.getgrgid(internal.pw_gid).gr_name,
            "login_user": "dovenull",
            "mail_uid": str(mail_user.pw_uid),
            "mail_gid": str(mail_user.pw_gid),
        }

    def _auth_config(self, passwd: Path) -> str:
        """How users log in: by password, from the passwd file."""
        return f"""\
auth_mechanisms = plain login
passdb {{
  driver = passwd-file
  args = {passwd}
}}"""

    def _write_config(self, root: Path) -> Path:
        accounts = self._service_accounts()
        passwd = root / "passwd"
        passwd.write_text(f"{self.user}:{_ssha512(self.password)}::::::\n")
        # Read by the auth process, which runs as the 'dovecot' user under root.
        passwd.chmod(0o644)
        mail = root / "mail"
        mail.mkdir(exist_ok=True)
        if _is_root():
            os.chown(mail, int(accounts["mail_uid"]), int(accounts["mail_gid"]))
        no_chroot = "".join(f"service {s} {{\n  chroot =\n}}\n" for s in _CHROOTED_SERVICES)
        config = f"""\
# Generated by tests/servers.py. Deliberately no !include: /etc/dovecot must not apply.
base_dir = {root}/run
state_dir = {root}/state
instance_name = mailbot-test-{self.port}
protocols = imap
listen = {self.host}
{self._ssl_settings()}
disable_plaintext_auth = no
{self._auth_config(passwd)}
log_path = {root}/dovecot.log
default_internal_user = {accounts["internal_user"]}
default_internal_group = {accounts["internal_group"]}
default_login_user = {accounts["login_user"]}
mail_uid = {accounts["mail_uid"]}
mail_gid = {accounts["mail_gid"]}
first_valid_uid = {accounts["mail_uid"]}
first_valid_gid = {accounts["mail_gid"]}
mail_location = maildir:{mail}/%u
# Nothing here must survive a power loss, and fsync dominates APPEND latency.
mail_fsync = never
# IDLE falls back to polling where inotify is unavailable (some CI overlays);
# poll often so tests waiting for IDLE notifications stay fast.
mailbox_idle_check_interval = 1 secs
# Tests deliberately try wrong passwords; the 2 s default delay would slow them.
auth_failure_delay = 0
userdb {{
  driver = static
  args = allow_all_users=yes
}}
protocol imap {{
  # The default of 10 per user and IP is easily hit by a daemon plus test clients.
  mail_max_userip_connections = 200
  # Tests read what a client said of itself (RFC 2971 ID) from the log.
  imap_id_log = *
}}
service imap-login {{
  inet_listener imap {{
    address = {self.host}
    port = {self.port}
  }}
  inet_listener imaps {{
    address = {self.host}
    port = {self.tls_port or 0}
  }}
}}
service anvil {{
  # Disables the growing auth-failure penalty for 127.0.0.1 (up to 15 s).
  unix_listener anvil-auth-penalty {{
    mode = 0
  }}
}}
{no_chroot}"""
        conf = root / "dovecot.conf"
        conf.write_text(config)
        return conf

    def _ssl_settings(self) -> str:
        if self._tls is None:
            return "ssl = no"
        cert, key = self._tls
        # The config process reads both files as root, before it drops privileges.
        return f"ssl = yes\nssl_cert = <{cert}\nssl_key = <{key}"

    def start(self) -> Self:
        if self.running:
            return self
        if self._dir is None:
            # Shared: the auth process reads the passwd file as 'dovecot' under root.
            self._dir = _make_workdir("mailbot-dovecot-", shared=_is_root())
            self._register_cleanup()
        conf = self._write_config(self._dir)
        stderr_path = self._dir / "dovecot.stderr"
        with stderr_path.open("ab") as stderr:
            # A new session makes the master the leader of a process group that
            # also holds its children, so stop() can reap every one of them.
            self._proc = subprocess.Popen(
                [*_die_with_parent_prefix(), self._binary, "-F", "-c", str(conf)],
                stdin=subprocess.DEVNULL,
                stdout=stderr,
                stderr=subprocess.STDOUT,
                cwd=self._dir,
                start_new_session=True,
            )
        try:
            self._wait_ready(stderr_path)
        except BaseException:
            self.stop()
            raise
        return self

    def _wait_ready(self, stderr_path: Path) -> None:
        deadline = time.monotonic() + self._startup_timeout
        while True:
            assert self._proc is not None
            if self._proc.poll() is not None:
                raise ServerError(
                    f"dovecot exited with {self._proc.returncode}\n"
                    f"--- stderr ---\n{_tail(stderr_path)}\n--- log ---\n{_tail(self.log_path)}"
                )
            # A bare connect can succeed before imap-login is up; the greeting cannot.
            with (
                suppress(OSError),
                socket.create_connection((self.host, self.port), timeout=1) as sock,
            ):
                if sock.recv(64).startswith(b"* OK"):
                    # Polite goodbye so the log is not littered with resets.
                    sock.sendall(b"0 LOGOUT\r\n")
                    return
            if time.monotonic() > deadline:
                raise ServerError(
                    f"dovecot not ready on {self.host}:{self.port} after "
                    f"{self._startup_timeout} s\n--- log ---\n{_tail(self.log_path)}"
                )
            time.sleep(0.05)

    def stop(self) -> None:
        proc, self._proc = self._proc, None
        if proc is None:
            return
        if proc.poll() is None:
            # Signalling only the master costs ~1 s while it waits for its children;
            # the whole group exits at once.
            with suppress(ProcessLookupError, PermissionError):
                os.killpg(proc.pid, signal.SIGTERM)
            deadline = time.monotonic() + 5
            # WNOWAIT leaves the master a zombie, so its PID (= the process group
            # id) cannot be recycled before the killpg below.
            while time.monotonic() < deadline:
                if os.waitid(os.P_PID, proc.pid, os.WEXITED | os.WNOHANG | os.WNOWAIT):
                    break
                time.sleep(0.02)
        # Stray imap/login children could keep the listener open and break a
        # restart on the same port.
        with suppress(ProcessLookupError, PermissionError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()

    def _remove_files(self) -> None:
        if self._dir is not None:
            shutil.rmtree(self._dir, ignore_errors=True)
            self._dir = None

    # -- IMAP helpers ---------------------------------------------------------

    def client(self, *, normalise_times: bool = False, timeout: float = 10.0) -> IMAPClient:
        """A logged-in IMAPClient; the caller logs out (use it as a context manager).

        normalise_times defaults to False so INTERNALDATEs come back timezone-aware
        and compare independently of the machine's local zone.
        """
        client = IMAPClient(self.host, port=self.port, ssl=False, timeout=timeout)
        client.normalise_times = normalise_times
        try:
            client.login(self.user, self.password)
        except BaseException:
            client.shutdown()
            raise
        return client

    def create_folder(self, folder: str) -> None:
        """Create *folder* unless it already exists."""
        with self.client() as client:
            if not client.folder_exists(folder):
                client.create_folder(folder)

    def append(
        self,
        folder: str,
        raw: bytes,
        internaldate: datetime,
        flags: Iterable[str | bytes] = (),
    ) -> int:
        """APPEND *raw* with the given receipt time; returns the new message's UID."""
        if internaldate.tzinfo is None:
            # imapclient would silently use the local zone, making tests zone-dependent.
            raise ValueError("internaldate must be timezone-aware")
        with self.client() as client:
            response = client.append(folder, raw, flags=tuple(flags), msg_time=internaldate)
        match = _APPENDUID.search(response if isinstance(response, bytes) else b"")
        if match is None:
            raise RuntimeError(f"no APPENDUID in APPEND response {response!r}")
        return int(match.group(1))

    def list_uids(self, folder: str) -> list[int]:
        with self.client() as client:
            client.select_folder(folder, readonly=True)
            return sorted(client.search("ALL"))

    def fetch_all(self, folder: str) -> list[bytes]:
        """Raw bytes of every message in *folder*, by UID, without setting \\Seen."""
        with self.client() as client:
            client.select_folder(folder, readonly=True)
            uids = sorted(client.search("ALL"))
            if not uids:
                return []
            data = client.fetch(uids, ["BODY.PEEK[]"])
            return [data[uid][b"BODY[]"] for uid in uids]

    def clear(self) -> None:
        """Delete all folders but INBOX and empty INBOX, for session-scoped reuse."""
        with self.client() as client:
            names = [name for _flags, _sep, name in client.list_folders()]
            # Children before parents, or Dovecot refuses to delete the parent.
            for name in sorted(names, key=len, reverse=True):
                # Dovecot removes a \Noselect parent together with its last child.
                if name.upper() != "INBOX" and client.folder_exists(name):
                    client.delete_folder(name)
            client.select_folder("INBOX")
            uids = client.search("ALL")
            if uids:
                client.delete_messages(uids)
                client.expunge()


# --------------------------------------------------------------------------- SMTP


@dataclass(frozen=True)
class ReceivedMessage:
    """One message as the sink saw it on the wire."""

    mail_from: str
    rcpt_tos: tuple[str, ...]
    data: bytes
    auth_user: str | None

    @property
    def message(self) -> email.message.EmailMessage:
        parsed = email.message_from_bytes(self.data, policy=email.policy.default)
        assert isinstance(parsed, email.message.EmailMessage)
        return parsed


class _SinkHandler:
    def __init__(self, sink: SmtpSink) -> None:
        self._sink = sink

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        auth = session.auth_data
        raw = envelope.original_content
        self._sink._record(
            ReceivedMessage(
                mail_from=envelope.mail_from or "",
                rcpt_tos=tuple(envelope.rcpt_tos),
                data=raw if isinstance(raw, bytes) else b"",
                auth_user=auth.login.decode() if isinstance(auth, LoginPassword) else None,
            )
        )
        return "250 2.0.0 Message accepted"


class SmtpSink(_ManagedServer):
    """An aiosmtpd server that records every message; AUTH is offered but optional.

    Given ``tls_context`` (a server context with its certificate) it offers
    STARTTLS; ``ident`` replaces the software name in its 220 greeting.
    """

    host: str
    port: int
    user: str
    password: str

    def __init__(
        self,
        *,
        port: int | None = None,
        ready_timeout: float = 5.0,
        tls_context: ssl.SSLContext | None = None,
        ident: str | None = None,
    ) -> None:
        self.host = LOCALHOST
        self.port = port or free_port()
        self._tls_context = tls_context
        self._ident = ident
        self.user = f"mailbot-{secrets.token_hex(4)}"
        self.password = secrets.token_urlsafe(18)
        self._ready_timeout = ready_timeout
        self._controller: Controller | None = None
        self._messages: list[ReceivedMessage] = []
        self._arrived = threading.Condition()

    @property
    def running(self) -> bool:
        return self._controller is not None

    @property
    def messages(self) -> list[ReceivedMessage]:
        """A snapshot; later arrivals do not change the returned list."""
        with self._arrived:
            return list(self._messages)

    def _record(self, message: ReceivedMessage) -> None:
        with self._arrived:
            self._messages.append(message)
            self._arrived.notify_all()

    def clear(self) -> None:
        with self._arrived:
            self._messages.clear()

    def wait_for(self, n: int, timeout: float = 5.0) -> list[ReceivedMessage]:
        """Block until at least *n* messages arrived; returns all of them."""
        with self._arrived:
            if not self._arrived.wait_for(lambda: len(self._messages) >= n, timeout):
                raise TimeoutError(
                    f"SMTP sink got {len(self._messages)} message(s) within {timeout} s, "
                    f"expected {n}"
                )
            return list(self._messages)

    def _authenticate(
        self,
        server: SMTP,
        session: Session,
        envelope: Envelope,
        mechanism: str,
        auth_data: Any,
    ) -> AuthResult:
        ok = (
            isinstance(auth_data, LoginPassword)
            and hmac.compare_digest(auth_data.login, self.user.encode())
            and hmac.compare_digest(auth_data.password, self.password.encode())
        )
        if not ok:
            # handled=False makes aiosmtpd send the 535 reply; True would leave the
            # client waiting for an answer until its timeout.
            return AuthResult(success=False, handled=False)
        return AuthResult(success=True, auth_data=auth_data)

    def _handler(self) -> _SinkHandler:
        return _SinkHandler(self)

    def start(self) -> Self:
        if self._controller is not None:
            return self
        # aiosmtpd closes the event loop on stop, so each start needs a new
        # Controller and loop.
        controller = Controller(
            self._handler(),
            hostname=self.host,
            port=self.port,
            loop=asyncio.new_event_loop(),
            ready_timeout=self._ready_timeout,
            # An explicit name avoids socket.getfqdn(), i.e. a DNS lookup off-host.
            server_hostname="mailbot-test-sink",
            authenticator=self._authenticate,
            auth_require_tls=False,
            enable_SMTPUTF8=True,
            tls_context=self._tls_context,
            ident=self._ident,
        )
        controller.start()
        self._controller = controller
        self._register_cleanup()
        return self

    def stop(self) -> None:
        controller, self._controller = self._controller, None
        if controller is not None:
            # Returns once the loop thread has closed the listening socket.
            controller.stop()


# --------------------------------------------------------------------- PostgreSQL


# Where Debian's postgresql-NN packages put the server binaries (not on PATH).
_PG_BINDIR_GLOB = "/usr/lib/postgresql/*/bin"


def _postgres_bindir() -> Path:
    needed = ("initdb", "pg_ctl", "postgres")
    candidates: list[Path] = []
    pg_config = shutil.which("pg_config", path=_SEARCH_PATH)
    if pg_config:
        # Debian's pg_config may come from libpq-dev of another major version
        # than the installed server, so every candidate is verified below.
        with suppress(OSError, subprocess.SubprocessError):
            out = subprocess.run(
                [pg_config, "--bindir"], capture_output=True, text=True, timeout=10, check=True
            ).stdout.strip()
            candidates.append(Path(out))

    def version(path: str) -> tuple[int, ...]:
        return tuple(int(p) for p in re.findall(r"\d+", Path(path).parent.name))

    candidates += [Path(p) for p in sorted(glob.glob(_PG_BINDIR_GLOB), key=version, reverse=True)]
    for bindir in candidates:
        if all((bindir / name).is_file() for name in needed):
            return bindir
    raise MissingDependencyError(
        "PostgreSQL server binaries (initdb, pg_ctl, postgres) not found via pg_config "
        "or in /usr/lib/postgresql/*/bin; install the Debian package 'postgresql' "
        "(apt-get install -y postgresql)"
    )


def _conf_literal(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


class Postgres(_ManagedServer):
    """A throwaway PostgreSQL cluster with one password-authenticated login role."""

    host: str
    port: int
    user: str
    password: str
    dbname: str

    def __init__(
        self,
        *,
        port: int | None = None,
        run_as: str | None = None,
        startup_timeout: float = 60.0,
    ) -> None:
        """*run_as* runs the cluster when we are root (default: nobody)."""
        self._bindir = _postgres_bindir()
        self._os_user = _unprivileged_user(run_as)
        self.host = LOCALHOST
        self.port = port or free_port()
        self.user = "mailbot"
        self.password = secrets.token_urlsafe(18)
        self.dbname = "mailbot"
        self._superuser = "postgres"
        self._superuser_password = secrets.token_urlsafe(18)
        self._startup_timeout = startup_timeout
        self._dir: Path | None = None
        self._running = False

    @property
    def directory(self) -> Path:
        if self._dir is None:
            raise RuntimeError("Postgres has not been started")
        return self._dir

    @property
    def log_path(self) -> Path:
        return self.directory / "postgres.log"

    @property
    def running(self) -> bool:
        return self._running

    def url_for(self, dbname: str) -> str:
        return URL.create(
            "postgresql+psycopg",
            username=self.user,
            password=self.password,
            host=self.host,
            port=self.port,
            database=dbname,
        ).render_as_string(hide_password=False)

    @property
    def url(self) -> str:
        """SQLAlchemy URL of the default database, owned by the login role."""
        return self.url_for(self.dbname)

    def _env(self) -> dict[str, str]:
        # Stray PG* variables (PGDATA, PGOPTIONS, ...) must not reconfigure the cluster.
        env = {k: v for k, v in os.environ.items() if not k.startswith("PG")}
        env["LC_ALL"] = "C"
        return env

    def _run(self, *argv: str, timeout: float) -> None:
        command = _as_user([str(self._bindir / argv[0]), *argv[1:]], self._os_user)
        result = subprocess.run(
            command,
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            cwd=self.directory,
            env=self._env(),
            timeout=timeout,
        )
        if result.returncode != 0:
            raise ServerError(
                f"{' '.join(command)} failed with {result.returncode}\n"
                f"{result.stdout}{result.stderr}\n--- log ---\n{_tail(self.log_path)}"
            )

    def _initdb(self) -> None:
        root = self.directory
        _chown(root, self._os_user)
        sockets = root / "sock"
        sockets.mkdir(mode=0o700)
        _chown(sockets, self._os_user)
        pwfile = root / "pwfile"
        pwfile.write_text(self._superuser_password + "\n")
        pwfile.chmod(0o600)
        _chown(pwfile, self._os_user)
        try:
            self._run(
                "initdb",
                "-D",
                str(root / "data"),
                "-U",
                self._superuser,
                f"--pwfile={pwfile}",
                # Passwords even on the socket: root can reach any local socket.
                "--auth=scram-sha-256",
                "--encoding=UTF8",
                "--locale=C",
                "--no-sync",
                timeout=self._startup_timeout,
            )
        finally:
            pwfile.unlink()
        # Settings live in the config rather than pg_ctl -o, which goes through a
        # shell; that way restarts reuse them and paths need no shell quoting.
        settings = {
            "listen_addresses": _conf_literal(self.host),
            "port": str(self.port),
            "unix_socket_directories": _conf_literal(str(sockets)),
            # Durability is pointless for a throwaway cluster and costs seconds.
            "fsync": "off",
            "synchronous_commit": "off",
            "full_page_writes": "off",
        }
        with (root / "data" / "postgresql.conf").open("a") as conf:
            conf.write("\n# Added by tests/servers.py\n")
            conf.writelines(f"{key} = {value}\n" for key, value in settings.items())

    def _admin_connect(self, dbname: str = "postgres") -> psycopg.Connection[Any]:
        return psycopg.connect(
            host=self.host,
            port=self.port,
            user=self._superuser,
            password=self._superuser_password,
            dbname=dbname,
            autocommit=True,
            connect_timeout=10,
        )

    def start(self) -> Self:
        if self._running:
            return self
        if self._dir is not None:
            self._pg_ctl_start()
            return self
        self._dir = _make_workdir("mailbot-pg-", shared=self._os_user is not None)
        self._register_cleanup()
        try:
            self._initdb()
            self._pg_ctl_start()
            with self._admin_connect() as conn:
                conn.execute(
                    sql.SQL("CREATE ROLE {} LOGIN PASSWORD {}").format(
                        sql.Identifier(self.user), sql.Literal(self.password)
                    )
                )
            self.create_database(self.dbname)
        except BaseException:
            # A half-initialised cluster must not be reused by a later start().
            self.close()
            raise
        return self

    def _pg_ctl_start(self) -> None:
        self._run(
            "pg_ctl",
            "-D",
            str(self.directory / "data"),
            "-l",
            str(self.log_path),
            "-w",
            "-t",
            str(int(self._startup_timeout)),
            "start",
            timeout=self._startup_timeout + 10,
        )
        self._running = True

    def stop(self) -> None:
        if not self._running:
            return
        self._running = False
        self._run(
            "pg_ctl",
            "-D",
            str(self.directory / "data"),
            "-m",
            "fast",
            "-w",
            "stop",
            timeout=60,
        )

    def _remove_files(self) -> None:
        if self._dir is not None:
            shutil.rmtree(self._dir, ignore_errors=True)
            self._dir = None

    def create_database(self, name: str | None = None) -> str:
        """Create a database owned by the login role; returns its SQLAlchemy URL."""
        name = name or f"test_{secrets.token_hex(6)}"
        with self._admin_connect() as conn:
            conn.execute(
                sql.SQL("CREATE DATABASE {} OWNER {}").format(
                    sql.Identifier(name), sql.Identifier(self.user)
                )
            )
        return self.url_for(name)

    def drop_database(self, name: str) -> None:
        with self._admin_connect() as conn:
            conn.execute(
                sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
            )
