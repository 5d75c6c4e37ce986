"""Add export_runs.resend_to: a run that re-sends an existing archive, and where to

Why: support re-sends an archive the user already has (the same bytes, the same
SHA-256) through the ordinary run machinery, so it is retried with backoff and
shows in the user's History with its delivery attempts. Such a run has its
archive attached from the start, and its executor must know two things an
ordinary run never needs: never export a new archive if that one is gone (a
re-send of different bytes would be a lie), and whether it goes to the user's
configured destinations ("destinations") or to their own email address
("email"). NULL, as for every existing row, means an ordinary export.

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-06 15:45:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("export_runs", schema=None) as batch_op:
        batch_op.add_column(sa.Column("resend_to", sa.String(length=16), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("export_runs", schema=None) as batch_op:
        batch_op.drop_column("resend_to")
