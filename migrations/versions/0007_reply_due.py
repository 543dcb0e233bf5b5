"""reply due: a mail whose verdict a reprocess changed and no reply has told yet

Revision ID: 0007_reply_due
Revises: 0006_daemon_state
Create Date: 2026-12-03
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0007_reply_due"
down_revision: str | None = "0006_daemon_state"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("mails", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("reply_due", sa.Boolean(), server_default=sa.false(), nullable=False)
        )


def downgrade() -> None:
    with op.batch_alter_table("mails", schema=None) as batch_op:
        batch_op.drop_column("reply_due")
