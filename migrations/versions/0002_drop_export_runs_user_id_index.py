"""Drop ix_export_runs_user_id: the unique (user_id, period_key) index already starts with user_id

Why: every index on export_runs is one more B-tree page to dirty per inserted run,
and this one answered nothing the unique index does not (lookups by user, the
users foreign key's cascade). At a million runs, a dispatcher tick queueing 1,000
runs dirtied ~1,000 pages fewer without it (bench/scheduler_scale.py).

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-26 07:30:00.000000
"""

from __future__ import annotations

from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("export_runs", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_export_runs_user_id"))


def downgrade() -> None:
    with op.batch_alter_table("export_runs", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_export_runs_user_id"), ["user_id"], unique=False)
