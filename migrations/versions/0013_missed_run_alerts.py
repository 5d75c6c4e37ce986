"""Add missed_run_alerts and schedules.enabled_at: tell users whose exports have stopped arriving

Why: a user whose deliveries keep failing is emailed once the silence is longer
than the schedule allows, and again weekly while it lasts (jobs.missed_runs).
Several scheduler processes may check at once; a row per user, claimed with a
conditional UPDATE, lets exactly one of them send each alert. `enabled_at` is
where a schedule that never delivered is measured from; rows that exist already
have NULL, which means "since the account was made", as the support queue did.

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-07 04:40:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0013"
down_revision = "0012"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("schedules", schema=None) as batch_op:
        batch_op.add_column(sa.Column("enabled_at", sa.DateTime(), nullable=True))
    op.create_table(
        "missed_run_alerts",
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("since", sa.DateTime(), nullable=False),
        sa.Column("alert_count", sa.Integer(), nullable=False),
        sa.Column("alerted_at", sa.DateTime(), nullable=True),
        sa.Column("reason", sa.Text(), nullable=True),
        sa.ForeignKeyConstraint(
            ["user_id"], ["users.id"], name=op.f("fk_missed_run_alerts_user_id_users"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("user_id", name=op.f("pk_missed_run_alerts")),
    )


def downgrade() -> None:
    op.drop_table("missed_run_alerts")
    with op.batch_alter_table("schedules", schema=None) as batch_op:
        batch_op.drop_column("enabled_at")
