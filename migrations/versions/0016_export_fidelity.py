"""export_fidelity: each export's fidelity drill result and manifest change count (issue 16)

Revision ID: 0016
Revises: 0015
Create Date: 2026-12-07 07:30:00.000000

Written beside 0015 (another branch); the merge re-chains this after it.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0016"
down_revision = "0015"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "export_fidelity",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("run_id", sa.String(32), sa.ForeignKey("export_runs.id", ondelete="CASCADE"), nullable=True),
        sa.Column("archive_id", sa.String(32), sa.ForeignKey("archives.id", ondelete="SET NULL"), nullable=True),
        sa.Column("items", sa.Integer(), nullable=False),
        sa.Column("differences", sa.Integer(), nullable=False),
        sa.Column("changes", sa.Integer(), nullable=False),
        sa.Column("detail", sa.Text(), nullable=False),
        sa.Column("checked_at", sa.DateTime(), nullable=False),
        sa.Column("method", sa.String(16), nullable=False),
    )
    op.create_index("ix_export_fidelity_run_id", "export_fidelity", ["run_id"])
    op.create_index("ix_export_fidelity_archive_id", "export_fidelity", ["archive_id"])


def downgrade() -> None:
    op.drop_index("ix_export_fidelity_archive_id", table_name="export_fidelity")
    op.drop_index("ix_export_fidelity_run_id", table_name="export_fidelity")
    op.drop_table("export_fidelity")
