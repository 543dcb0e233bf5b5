"""A private Dovecot IMAP server on 127.0.0.1 with one Maildir user, and IMAP helpers for tests."""

from __future__ import annotations

import base64
import grp
import hashlib
import os
import re
import secrets
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Iterable
from contextlib import suppress
from datetime import datetime
from pathlib import Path
from typing import Self

from imapclient import IMAPClient  # type: ignore[import-untyped]

from tests.servers.common import (
    LOCALHOST,
    ManagedServer,
    MissingDependencyError,
    ServerError,
    current_user,
    die_with_parent_prefix,
    free_port,
    is_root,
    lookup_user,
    make_workdir,
    tail,
    unprivileged_user,
    which,
)

__all__ = ["Dovecot"]


def _find_dovecot() -> str:
    binary = which("dovecot")
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


class Dovecot(ManagedServer):
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
        return tail(self.log_path, limit=1 << 20)

    def _service_accounts(self) -> dict[str, str]:
        mail_user = unprivileged_user(self._run_as)
        if mail_user is None:
            # Unprivileged Dovecot cannot switch users, so every role is ourselves.
            me, my_group = current_user()
            return {
                "internal_user": me.pw_name,
                "internal_group": my_group.gr_name,
                "login_user": me.pw_name,
                "mail_uid": str(me.pw_uid),
                "mail_gid": str(me.pw_gid),
            }
        # Dovecot rejects mail_uid 0 ("Mail access not allowed for root") and
        # insists on distinct internal/login users, which Debian's package creates.
        internal = lookup_user("dovecot", "dovecot-core")
        lookup_user("dovenull", "dovecot-core")
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
        if is_root():
            os.chown(mail, int(accounts["mail_uid"]), int(accounts["mail_gid"]))
        no_chroot = "".join(f"service {s} {{\n  chroot =\n}}\n" for s in _CHROOTED_SERVICES)
        config = f"""\
# Generated by tests/servers/dovecot.py. Deliberately no !include: /etc/dovecot must not apply.
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
            self._dir = make_workdir("mailbot-dovecot-", shared=is_root())
            self._register_cleanup()
        conf = self._write_config(self._dir)
        stderr_path = self._dir / "dovecot.stderr"
        with stderr_path.open("ab") as stderr:
            # A new session makes the master the leader of a process group that
            # also holds its children, so stop() can reap every one of them.
            self._proc = subprocess.Popen(
                [*die_with_parent_prefix(), self._binary, "-F", "-c", str(conf)],
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
                    f"--- stderr ---\n{tail(stderr_path)}\n--- log ---\n{tail(self.log_path)}"
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
                    f"{self._startup_timeout} s\n--- log ---\n{tail(self.log_path)}"
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
