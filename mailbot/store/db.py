"""The database connection, the schema's migrations, and one transaction per unit of work."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config as AlembicConfig
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Engine, create_engine, event, make_url
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session, sessionmaker

from mailbot.bundled import migrations_dir
from mailbot.errors import MailbotError


class DatabaseError(MailbotError):
    """The database cannot be reached or its schema is not mailbot's."""


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
        config = AlembicConfig()
        config.set_main_option("script_location", str(migrations_dir()))
        config.set_main_option("sqlalchemy.url", self.url.replace("%", "%%"))
        config.attributes["engine"] = self.engine
        return config

    def upgrade(self) -> str:
        """Create the schema or bring it to the newest revision; return that revision."""
        try:
            command.upgrade(self.alembic_config(), "head")
        except OperationalError as exc:
            raise DatabaseError(f"cannot reach the database: {exc.orig}") from None
        return self.revision() or ""

    def revision(self) -> str | None:
        with self.engine.connect() as connection:
            return MigrationContext.configure(connection).get_current_revision()

    def check_schema(self) -> None:
        """Refuse to work on a database whose schema is missing or old."""
        head = ScriptDirectory.from_config(self.alembic_config()).get_current_head()
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
