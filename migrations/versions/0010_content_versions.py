"""Add content_sha256 to contacts, events and notes: each item's content version

Why: a repeat export reuses what it produced for an item whose content did not
change (issue 15). The column holds `account.versions.record_digest` of the
record the row was built from; rows written before this migration keep NULL,
which means "no version known", so their items are simply serialised again.

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-06 18:10:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None

TABLES = ("contacts", "events", "notes")


def upgrade() -> None:
    for table in TABLES:
        with op.batch_alter_table(table) as batch:
            batch.add_column(sa.Column("content_sha256", sa.String(length=64), nullable=True))


def downgrade() -> None:
    for table in TABLES:
        with op.batch_alter_table(table) as batch:
            batch.drop_column("content_sha256")
