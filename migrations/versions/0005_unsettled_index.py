"""unsettled index: a poll finds the mail not yet filed without reading every row

Revision ID: 0005_unsettled_index
Revises: 0004_leases_duplicates
Create Date: 2026-11-29
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005_unsettled_index"
down_revision: str | None = "0004_leases_duplicates"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("mails", schema=None) as batch_op:
        batch_op.create_index(
            "ix_mails_unsettled",
            ["source", "folder"],
            unique=False,
            sqlite_where=sa.text("settled IS 0"),
            postgresql_where=sa.text("settled IS false"),
        )


def downgrade() -> None:
    with op.batch_alter_table("mails", schema=None) as batch_op:
        batch_op.drop_index("ix_mails_unsettled")
