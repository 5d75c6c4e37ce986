"""Add bulk_resend_runners: who runs an unfinished bulk re-send, until when

Why: a bulk re-send started from the console ran in a thread of that web
process; when the process restarted, the job waited for someone to press
Continue. With a row per unfinished job holding its runner's lease, the next
dispatch tick in any process sees an expired lease and goes on by itself.
Jobs started before this migration have no row and still continue by hand.

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-06 17:50:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "bulk_resend_runners",
        sa.Column("job_id", sa.String(length=16), nullable=False),
        sa.Column("owner", sa.String(length=128), nullable=False),
        sa.Column("expires_at", sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint("job_id"),
    )


def downgrade() -> None:
    op.drop_table("bulk_resend_runners")
