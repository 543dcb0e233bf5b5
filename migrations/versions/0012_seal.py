"""seal: what the seal check saw on the PDF scan (check --json's "seal"), per mail and version

Revision ID: 0012_seal
Revises: 0011_reminders
Create Date: 2026-12-03
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0012_seal"
down_revision: str | None = "0011_reminders"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    for table in ("mails", "versions"):
        with op.batch_alter_table(table) as batch_op:
            batch_op.add_column(sa.Column("seal", sa.JSON(), nullable=True))


def downgrade() -> None:
    for table in ("versions", "mails"):
        with op.batch_alter_table(table) as batch_op:
            batch_op.drop_column("seal")
