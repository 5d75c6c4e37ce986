"""destination_checks: the latest later check of each destination's newest delivered archive (scrub)

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-07 05:00:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0014"
down_revision = "0013"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "destination_checks",
        sa.Column(
            "destination_id",
            sa.Integer(),
            sa.ForeignKey("destinations.id", ondelete="CASCADE"),
            primary_key=True,
        ),
        sa.Column("object_key", sa.Text(), nullable=False),
        sa.Column("run_id", sa.String(32), sa.ForeignKey("export_runs.id", ondelete="SET NULL"), nullable=True),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("detail", sa.Text(), nullable=False),
        sa.Column("checked_at", sa.DateTime(), nullable=False),
        sa.Column("deep_checked_at", sa.DateTime(), nullable=True),
    )
    op.create_index("ix_destination_checks_checked_at", "destination_checks", ["checked_at"])


def downgrade() -> None:
    op.drop_index("ix_destination_checks_checked_at", table_name="destination_checks")
    op.drop_table("destination_checks")
