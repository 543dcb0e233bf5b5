"""The Alembic migrations build exactly the schema the models describe, and go back down."""

from __future__ import annotations

from pathlib import Path

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory

from mailbot.store.db import Database, DatabaseError, head_revision
from mailbot.store.models import Base


def test_upgrade_matches_the_models_and_downgrade_empties(db_url: str) -> None:
    db = Database(db_url)
    try:
        db.upgrade()
        with db.engine.connect() as connection:
            differences = compare_metadata(MigrationContext.configure(connection), Base.metadata)
        assert differences == []
        command.downgrade(db.alembic_config(), "base")
        assert db.revision() is None
        db.upgrade()  # and up again from nothing
        db.check_schema()
    finally:
        db.dispose()


def test_a_poll_finds_unfiled_mail_by_the_index_not_by_reading_every_row(db_url: str) -> None:
    """The idle poll's one query that grows with the mailbox is answered from ix_mails_unsettled."""
    from mailbot.intake.filing import unsettled

    db = Database(db_url)
    try:
        db.upgrade()
        with db.engine.connect() as connection:
            query = unsettled("imap://bench", "INBOX").compile(connection)
            params = tuple(query.params[name] for name in query.positiontup or ())
            if db_url.startswith("sqlite"):
                plan = connection.exec_driver_sql(f"EXPLAIN QUERY PLAN {query}", params).all()
            else:
                # An empty table is read whole however it is indexed: forbid that, and
                # the plan shows whether the index's condition matches the query's.
                connection.exec_driver_sql("SET enable_seqscan = off")
                plan = connection.exec_driver_sql(f"EXPLAIN {query}", query.params).all()
        assert "ix_mails_unsettled" in " ".join(str(row) for row in plan)
    finally:
        db.dispose()


def test_the_head_read_from_the_migration_files_is_alembics(tmp_path: Path) -> None:
    db = Database(f"sqlite:///{tmp_path / 'm.sqlite3'}")
    try:
        alembic_head = ScriptDirectory.from_config(db.alembic_config()).get_current_head()
    finally:
        db.dispose()
    assert head_revision() == alembic_head


def test_a_database_without_the_newest_schema_is_refused_with_what_to_run(tmp_path: Path) -> None:
    db = Database(f"sqlite:///{tmp_path / 'm.sqlite3'}")
    try:
        with pytest.raises(DatabaseError) as empty:
            db.check_schema()
        assert str(empty.value) == (
            f"the database schema is at nothing, not {head_revision()}: run `mailbot init`"
        )
        db.upgrade()
        db.check_schema()
        command.downgrade(db.alembic_config(), "-1")
        behind = db.revision()
        assert behind is not None
        assert behind != head_revision()
        with pytest.raises(DatabaseError) as old:
            db.check_schema()
        assert str(old.value) == (
            f"the database schema is at {behind}, not {head_revision()}: run `mailbot init`"
        )
    finally:
        db.dispose()
