"""destination_checks.since: when a later check first found the state it reports

Why: a copy found missing or changed is shown to its owner ("copy missing
since 3 Dec") on the destinations page, the archive's page, the overview and
the API until a later check or delivery finds it good again; `checked_at`
moves with every weekly check (and with a scrubber's claim), so it cannot say
since when. NULL: checked before this migration.

Revision ID: 0018
Revises: 0017
Create Date: 2026-12-07 18:30:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0018"
down_revision = "0017"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("destination_checks", schema=None) as batch_op:
        batch_op.add_column(sa.Column("since", sa.DateTime(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("destination_checks", schema=None) as batch_op:
        batch_op.drop_column("since")
