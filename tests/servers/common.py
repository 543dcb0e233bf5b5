"""What every test server shares: 127.0.0.1 ports, accounts to run as, work folders, a lifecycle."""

from __future__ import annotations

import atexit
import functools
import grp
import os
import pwd
import shutil
import socket
import stat
import subprocess
import tempfile
from collections.abc import Sequence
from pathlib import Path
from types import TracebackType
from typing import Self

__all__ = [
    "DEFAULT_UNPRIVILEGED_USER",
    "LOCALHOST",
    "SEARCH_PATH",
    "ManagedServer",
    "MissingDependencyError",
    "ServerError",
    "as_user",
    "chown",
    "current_user",
    "die_with_parent_prefix",
    "free_port",
    "is_root",
    "lookup_user",
    "make_workdir",
    "tail",
    "unprivileged_user",
    "which",
]

LOCALHOST = "127.0.0.1"

# Owner of mail files and of the PostgreSQL cluster when the tests run as root:
# Dovecot refuses mail access as UID 0 and PostgreSQL refuses to run as root.
DEFAULT_UNPRIVILEGED_USER = "nobody"

# Debian keeps admin tools in sbin, which a non-login root shell may not have on PATH.
SEARCH_PATH = os.pathsep.join(
    [os.environ.get("PATH", ""), "/usr/sbin", "/sbin", "/usr/bin", "/bin"]
)


def which(program: str) -> str | None:
    """The path of *program* on PATH or in the admin folders, or None."""
    return shutil.which(program, path=SEARCH_PATH)


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


def tail(path: Path, limit: int = 4000) -> str:
    """The last *limit* characters of a log file, for an error message."""
    try:
        text = path.read_text(errors="replace")
    except OSError:
        return f"<{path} not readable>"
    return text[-limit:]


def is_root() -> bool:
    """Whether the tests run as root (servers then run as another account)."""
    return os.geteuid() == 0


def lookup_user(name: str, package: str) -> pwd.struct_passwd:
    """The system account *name*, which the Debian *package* creates."""
    try:
        return pwd.getpwnam(name)
    except KeyError:
        raise MissingDependencyError(
            f"system user {name!r} does not exist; it is created by the Debian package "
            f"{package!r} (apt-get install -y {package})"
        ) from None


def current_user() -> tuple[pwd.struct_passwd, grp.struct_group]:
    """Our own account and group, as a server that cannot switch users runs as."""
    try:
        user = pwd.getpwuid(os.getuid())
        group = grp.getgrgid(os.getgid())
    except KeyError:
        # Dovecot resolves its service users by name, so an anonymous UID cannot work.
        raise MissingDependencyError(
            f"uid {os.getuid()} / gid {os.getgid()} has no passwd/group entry"
        ) from None
    return user, group


def unprivileged_user(run_as: str | None) -> pwd.struct_passwd | None:
    """The account servers run as when we are root, or None to run as ourselves."""
    if not is_root():
        return None
    name = run_as or DEFAULT_UNPRIVILEGED_USER
    try:
        return pwd.getpwnam(name)
    except KeyError:
        raise MissingDependencyError(
            f"user {name!r} to run test servers as does not exist; "
            f"create it with: useradd --system --no-create-home {name}"
        ) from None


def as_user(argv: Sequence[str], user: pwd.struct_passwd | None) -> list[str]:
    """*argv* run as *user* (runuser or setpriv), or unchanged when *user* is None."""
    if user is None:
        return list(argv)
    runuser = which("runuser")
    if runuser:
        return [runuser, "-u", user.pw_name, "--", *argv]
    setpriv = which("setpriv")
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
def die_with_parent_prefix() -> tuple[str, ...]:
    """Command prefix that sends SIGTERM to the child when the test process dies.

    atexit never runs when pytest itself is killed (e.g. by `timeout`), which
    would leave a daemon behind. setpriv execs in place, so no preexec_fn (unsafe
    next to the SMTP sink's thread) is needed. The signal fires when the *thread*
    that started the child exits, so start servers from the main thread.
    """
    setpriv = which("setpriv")
    if setpriv is None:
        return ()
    probe = subprocess.run(
        [setpriv, "--pdeathsig", "TERM", "--", "true"], capture_output=True, check=False
    )
    return (setpriv, "--pdeathsig", "TERM", "--") if probe.returncode == 0 else ()


def _world_traversable(path: Path) -> bool:
    return all(os.stat(p).st_mode & stat.S_IXOTH for p in (path, *path.parents))


def make_workdir(prefix: str, shared: bool) -> Path:
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


def chown(path: Path, user: pwd.struct_passwd | None) -> None:
    """Give *path* to *user*, when servers run as another account."""
    if user is not None:
        os.chown(path, user.pw_uid, user.pw_gid)


class ManagedServer:
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
