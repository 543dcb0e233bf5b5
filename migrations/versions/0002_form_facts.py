"""form facts: what the Word form says, and the PDF's page count

Revision ID: 0002_form_facts
Revises: 0001_initial
Create Date: 2026-11-29
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002_form_facts"
down_revision: str | None = "0001_initial"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    for table in ("mails", "versions"):
        with op.batch_alter_table(table) as batch_op:
            batch_op.add_column(sa.Column("form", sa.JSON(), nullable=True))
            batch_op.add_column(sa.Column("pdf_pages", sa.Integer(), nullable=True))


def downgrade() -> None:
    for table in ("versions", "mails"):
        with op.batch_alter_table(table) as batch_op:
            batch_op.drop_column("pdf_pages")
            batch_op.drop_column("form")
