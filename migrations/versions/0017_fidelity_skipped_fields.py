"""export_fidelity.skipped and difference_fields: how much a drill read again, and what support may see

Why: a repeat export's drill parses only the items earlier drills did not prove
(`exporters.archive.drill_memo`); the run's page and the API say how many were
proven before ("12,000 items compared, 11,900 proven by earlier drills"), so the
count is kept with the row. A drill that found differences is listed in the
support queue with the kinds and field names of what differed, never the
values (`difference_fields`). NULL: checked before this migration.

Revision ID: 0017
Revises: 0016
Create Date: 2026-12-07 10:30:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0017"
down_revision = "0016"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("export_fidelity", schema=None) as batch_op:
        batch_op.add_column(sa.Column("skipped", sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column("difference_fields", sa.Text(), nullable=True))
    # The support queue looks for drills that found differences: few among many.
    op.create_index("ix_export_fidelity_differences", "export_fidelity", ["differences"])


def downgrade() -> None:
    op.drop_index("ix_export_fidelity_differences", table_name="export_fidelity")
    with op.batch_alter_table("export_fidelity", schema=None) as batch_op:
        batch_op.drop_column("difference_fields")
        batch_op.drop_column("skipped")
