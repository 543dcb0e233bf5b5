"""leases and duplicates: a lease per mailbox, the content hash of every mail, replies by call

Revision ID: 0004_leases_duplicates
Revises: 0003_web_desk
Create Date: 2026-11-30
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004_leases_duplicates"
down_revision: str | None = "0003_web_desk"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "leases",
        sa.Column("source", sa.String(length=255), nullable=False),
        sa.Column("holder", sa.String(length=255), nullable=False),
        sa.Column("acquired_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("source", name=op.f("pk_leases")),
    )
    # Mail recorded before this revision has no content hash: it is nobody's
    # original and nobody's copy, which the partial unique index allows.
    with op.batch_alter_table("mails", schema=None) as batch_op:
        batch_op.add_column(sa.Column("content_sha256", sa.String(length=64), nullable=True))
        batch_op.add_column(sa.Column("duplicate_of_id", sa.Integer(), nullable=True))
        batch_op.create_foreign_key(
            batch_op.f("fk_mails_duplicate_of_id_mails"), "mails", ["duplicate_of_id"], ["id"]
        )
        batch_op.create_index(
            batch_op.f("ix_mails_content_sha256"), ["content_sha256"], unique=False
        )
        batch_op.create_index(
            batch_op.f("ix_mails_duplicate_of_id"), ["duplicate_of_id"], unique=False
        )
        batch_op.create_index(
            "uq_mails_original_content",
            ["call_id", "content_sha256"],
            unique=True,
            sqlite_where=sa.text("duplicate_of_id IS NULL"),
            postgresql_where=sa.text("duplicate_of_id IS NULL"),
        )
    with op.batch_alter_table("replies", schema=None) as batch_op:
        batch_op.add_column(sa.Column("call_id", sa.String(length=64), nullable=True))
        batch_op.create_index(batch_op.f("ix_replies_call_id"), ["call_id"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("replies", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_replies_call_id"))
        batch_op.drop_column("call_id")
    with op.batch_alter_table("mails", schema=None) as batch_op:
        batch_op.drop_index("uq_mails_original_content")
        batch_op.drop_index(batch_op.f("ix_mails_duplicate_of_id"))
        batch_op.drop_index(batch_op.f("ix_mails_content_sha256"))
        batch_op.drop_constraint(batch_op.f("fk_mails_duplicate_of_id_mails"), type_="foreignkey")
        batch_op.drop_column("duplicate_of_id")
        batch_op.drop_column("content_sha256")
    op.drop_table("leases")
