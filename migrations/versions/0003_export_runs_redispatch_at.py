"""Add export_runs.redispatch_at: when an unclaimed run may be handed to the queue again

Why: a queued run was re-sent every two lease periods while it waited, so a long
backlog piled duplicate messages into the queue. The wait now doubles with each
re-send (jobs.run_lifecycle.undispatched), which needs the next time stored per run.
Rows that exist already have NULL, which means "may be sent now", as before.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-25 08:50:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("export_runs", schema=None) as batch_op:
        batch_op.add_column(sa.Column("redispatch_at", sa.DateTime(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("export_runs", schema=None) as batch_op:
        batch_op.drop_column("redispatch_at")
