"""The database connection, the schema's migrations, and one transaction per unit of work."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config as AlembicConfig
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Engine, create_engine, event
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session, sessionmaker

from mailbot.errors import MailbotError

MIGRATIONS = Path(__file__).resolve().parents[2] / "migrations"


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


class Database:
    """One engine and its sessions; pass it down, never keep it in a global."""

    def __init__(self, url: str) -> None:
        self.url = _normalise_url(url)
        if self.url.startswith("sqlite:///"):
            Path(self.url.removeprefix("sqlite:///")).parent.mkdir(parents=True, exist_ok=True)
        self.engine: Engine = create_engine(self.url, pool_pre_ping=True)
        if self.engine.dialect.name == "sqlite":
            event.listen(self.engine, "connect", _sqlite_pragmas)
        self.sessions = sessionmaker(self.engine, expire_on_commit=False)

    @contextmanager
    def transaction(self) -> Iterator[Session]:
        """A session whose work commits at the end of the block, or rolls back."""
        with self.sessions() as session, session.begin():
            yield session

    def alembic_config(self) -> AlembicConfig:
        config = AlembicConfig()
        config.set_main_option("script_location", str(MIGRATIONS))
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
