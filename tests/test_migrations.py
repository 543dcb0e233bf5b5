"""The Alembic migrations build exactly the schema the models describe, and go back down."""

from __future__ import annotations

from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext

from mailbot.store.db import Database
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
