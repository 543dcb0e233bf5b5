"""daemon state: what the daemon serving each mailbox last did, for `mailbot status`

Revision ID: 0006_daemon_state
Revises: 0005_unsettled_index
Create Date: 2026-12-03
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0006_daemon_state"
down_revision: str | None = "0005_unsettled_index"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "daemon_states",
        sa.Column("source", sa.String(length=255), nullable=False),
        sa.Column("call_id", sa.String(length=64), nullable=False),
        sa.Column("holder", sa.String(length=255), nullable=False),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("heartbeat_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("polled_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("poll_summary", sa.Text(), nullable=False),
        sa.Column("waiting", sa.Integer(), nullable=False),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("error_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("stopped_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("source", name=op.f("pk_daemon_states")),
    )
    with op.batch_alter_table("daemon_states", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_daemon_states_call_id"), ["call_id"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("daemon_states", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_daemon_states_call_id"))
    op.drop_table("daemon_states")
