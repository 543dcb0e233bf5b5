"""desk drafts: a letter being written at the desk, kept when the session expires

Revision ID: 0009_desk_drafts
Revises: 0008_accounts
Create Date: 2026-12-03
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0009_desk_drafts"
down_revision: str | None = "0008_accounts"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "desk_drafts",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("submission_id", sa.Integer(), nullable=False),
        sa.Column("token", sa.String(length=64), nullable=False),
        sa.Column("template", sa.String(length=64), nullable=False),
        sa.Column("subject", sa.Text(), nullable=False),
        sa.Column("body", sa.Text(), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("kept_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["submission_id"],
            ["submissions.id"],
            name=op.f("fk_desk_drafts_submission_id_submissions"),
        ),
        sa.ForeignKeyConstraint(
            ["user_id"], ["users.id"], name=op.f("fk_desk_drafts_user_id_users")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_desk_drafts")),
        sa.UniqueConstraint("token", name=op.f("uq_desk_drafts_token")),
        sa.UniqueConstraint("user_id", "submission_id", name="uq_desk_drafts_owner"),
    )
    with op.batch_alter_table("desk_drafts", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_desk_drafts_user_id"), ["user_id"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("desk_drafts", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_desk_drafts_user_id"))
    op.drop_table("desk_drafts")
