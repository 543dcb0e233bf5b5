"""A throwaway PostgreSQL cluster on 127.0.0.1 with one password-authenticated login role."""

from __future__ import annotations

import glob
import os
import re
import secrets
import shutil
import subprocess
from contextlib import suppress
from pathlib import Path
from typing import Any, Self

import psycopg
from psycopg import sql
from sqlalchemy.engine import URL

from tests.servers.common import (
    LOCALHOST,
    ManagedServer,
    MissingDependencyError,
    ServerError,
    as_user,
    chown,
    free_port,
    make_workdir,
    tail,
    unprivileged_user,
    which,
)

__all__ = ["Postgres"]


# Where Debian's postgresql-NN packages put the server binaries (not on PATH).
PG_BINDIR_GLOB = "/usr/lib/postgresql/*/bin"


def _postgres_bindir() -> Path:
    needed = ("initdb", "pg_ctl", "postgres")
    candidates: list[Path] = []
    pg_config = which("pg_config")
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

    candidates += [Path(p) for p in sorted(glob.glob(PG_BINDIR_GLOB), key=version, reverse=True)]
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


class Postgres(ManagedServer):
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
        self._os_user = unprivileged_user(run_as)
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
        command = as_user([str(self._bindir / argv[0]), *argv[1:]], self._os_user)
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
                f"{result.stdout}{result.stderr}\n--- log ---\n{tail(self.log_path)}"
            )

    def _initdb(self) -> None:
        root = self.directory
        chown(root, self._os_user)
        sockets = root / "sock"
        sockets.mkdir(mode=0o700)
        chown(sockets, self._os_user)
        pwfile = root / "pwfile"
        pwfile.write_text(self._superuser_password + "\n")
        pwfile.chmod(0o600)
        chown(pwfile, self._os_user)
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
            conf.write("\n# Added by tests/servers/postgres.py\n")
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
        self._dir = make_workdir("mailbot-pg-", shared=self._os_user is not None)
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
