"""destinations.confirmed_at and confirm_sent_at: an email address receives archives only once its owner agreed

Why: an email destination used to get the full plaintext archive from its first
export, whoever typed the address (a typo, or someone with a stolen session).
A new one now waits until the link mailed to that address is followed
(`jobs.destination_confirmation`); `confirm_sent_at` is when the latest link
went out (shown beside "Send the link again"). Destinations made before this
revision kept working, so every existing row is marked confirmed as of its
creation.

Revision ID: 0019
Revises: 0018
Create Date: 2026-12-07 18:30:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0019"
down_revision = "0018"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("destinations", schema=None) as batch_op:
        batch_op.add_column(sa.Column("confirmed_at", sa.DateTime(), nullable=True))
        batch_op.add_column(sa.Column("confirm_sent_at", sa.DateTime(), nullable=True))
    op.execute("UPDATE destinations SET confirmed_at = created_at WHERE confirmed_at IS NULL")


def downgrade() -> None:
    with op.batch_alter_table("destinations", schema=None) as batch_op:
        batch_op.drop_column("confirm_sent_at")
        batch_op.drop_column("confirmed_at")
