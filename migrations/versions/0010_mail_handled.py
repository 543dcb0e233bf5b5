"""mail handled: other mail a person dealt with (who, when, why), or attached to a submission

Revision ID: 0010_mail_handled
Revises: 0009_desk_drafts
Create Date: 2026-12-03
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0010_mail_handled"
down_revision: str | None = "0009_desk_drafts"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("mails", schema=None) as batch_op:
        batch_op.add_column(sa.Column("handled_at", sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column("handled_by", sa.String(length=64), nullable=True))
        batch_op.add_column(sa.Column("handled_reason", sa.Text(), nullable=True))
        batch_op.add_column(sa.Column("attached_as", sa.String(length=16), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("mails", schema=None) as batch_op:
        batch_op.drop_column("attached_as")
        batch_op.drop_column("handled_reason")
        batch_op.drop_column("handled_by")
        batch_op.drop_column("handled_at")
