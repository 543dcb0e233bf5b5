"""The database connection, the schema's migrations, and one transaction per unit of work."""

from __future__ import annotations

import ast
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlalchemy import Connection, Engine, create_engine, event, inspect, make_url, text
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session, sessionmaker

from mailbot.bundled import migrations_dir
from mailbot.errors import MailbotError

if TYPE_CHECKING:  # Alembic is loaded only to change the schema (`mailbot init`)
    from alembic.config import Config as AlembicConfig

# Where Alembic stamps a database with its revision (migrations/env.py keeps the default).
VERSION_TABLE = "alembic_version"


class DatabaseError(MailbotError):
    """The database cannot be reached or its schema is not mailbot's."""


def head_revision() -> str:
    """The newest of the shipped migrations: the one revision no other revision follows.

    Read from the files' `revision` and `down_revision` lines, so that the
    commands that only check the schema (log, show, web...) need not load
    Alembic, a tenth of their start.
    """
    follows: dict[str, set[str]] = {}
    for path in sorted((migrations_dir() / "versions").glob("*.py")):
        values = _revision_lines(path)
        down = values.get("down_revision")
        parents = {down} if isinstance(down, str) else set(down or ())
        follows[str(values["revision"])] = parents
    heads = set(follows) - set().union(*follows.values())
    if len(heads) != 1:
        raise DatabaseError(f"the shipped migrations have {len(heads)} heads: {sorted(heads)}")
    return heads.pop()


def _revision_lines(path: Path) -> dict[str, Any]:
    found: dict[str, Any] = {}
    for node in ast.parse(path.read_text(encoding="utf-8")).body:
        targets: list[ast.expr]
        if isinstance(node, ast.AnnAssign) and node.value is not None:
            targets, value = [node.target], node.value
        elif isinstance(node, ast.Assign):
            targets, value = node.targets, node.value
        else:
            continue
        for target in targets:
            if isinstance(target, ast.Name) and target.id in ("revision", "down_revision"):
                found[target.id] = ast.literal_eval(value)
    if "revision" not in found:
        raise DatabaseError(f"{path.name} names no revision")
    return found


def stamped_revision(connection: Connection) -> str | None:
    """The revision the database is stamped with; None before its schema was made."""
    if not inspect(connection).has_table(VERSION_TABLE):
        return None
    stamped = connection.execute(text(f"SELECT version_num FROM {VERSION_TABLE}")).scalars()
    revisions = list(stamped)
    if len(revisions) > 1:
        raise DatabaseError(f"the database is stamped with {len(revisions)} revisions: {revisions}")
    return revisions[0] if revisions else None


def _normalise_url(url: str) -> str:
    # SQLAlchemy reads a bare postgresql:// as psycopg2; mailbot ships psycopg 3.
    for bare in ("postgresql://", "postgres://"):
        if url.startswith(bare):
            return "postgresql+psycopg://" + url[len(bare) :]
    return url


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA busy_timeout=30000")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.close()


def _private_sqlite_file(path: Path) -> None:
    """Create the database file readable by its owner alone, as SQLite then keeps its WAL.

    SQLite would create it with the umask's mode (often world-readable), and
    the database holds every applicant's address and every reply.
    """
    if not path.parent.is_dir():
        path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    if not path.exists():
        os.close(os.open(path, os.O_WRONLY | os.O_CREAT, 0o600))


class Database:
    """One engine and its sessions; pass it down, never keep it in a global."""

    def __init__(self, url: str) -> None:
        self.url = _normalise_url(url)
        if self.url.startswith("sqlite:///") and self.url != "sqlite:///:memory:":
            _private_sqlite_file(Path(self.url.removeprefix("sqlite:///").split("?", 1)[0]))
        self.engine: Engine = create_engine(self.url, pool_pre_ping=True)
        if self.engine.dialect.name == "sqlite":
            event.listen(self.engine, "connect", _sqlite_pragmas)
        self.sessions = sessionmaker(self.engine, expire_on_commit=False)

    @property
    def safe_url(self) -> str:
        """The URL for a log line: its password, if it holds one, as ***."""
        return make_url(self.url).render_as_string(hide_password=True)

    @contextmanager
    def transaction(self) -> Iterator[Session]:
        """A session whose work commits at the end of the block, or rolls back."""
        with self.sessions() as session, session.begin():
            yield session

    def alembic_config(self) -> AlembicConfig:
        from alembic.config import Config as AlembicConfig

        config = AlembicConfig()
        config.set_main_option("script_location", str(migrations_dir()))
        config.set_main_option("sqlalchemy.url", self.url.replace("%", "%%"))
        config.attributes["engine"] = self.engine
        return config

    def upgrade(self) -> str:
        """Create the schema or bring it to the newest revision; return that revision."""
        from alembic import command

        try:
            command.upgrade(self.alembic_config(), "head")
        except OperationalError as exc:
            raise DatabaseError(f"cannot reach the database: {exc.orig}") from None
        return self.revision() or ""

    def revision(self) -> str | None:
        with self.engine.connect() as connection:
            return stamped_revision(connection)

    def check_schema(self) -> None:
        """Refuse to work on a database whose schema is missing or old."""
        head = head_revision()
        try:
            current = self.revision()
        except OperationalError as exc:
            raise DatabaseError(f"cannot reach the database: {exc.orig}") from None
        if current != head:
            raise DatabaseError(
                f"the database schema is at {current or 'nothing'}, not {head}: run `mailbot init`"
            )

    def dispose(self) -> None:
        self.engine.dispose()
