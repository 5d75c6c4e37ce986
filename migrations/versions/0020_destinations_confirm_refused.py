"""destinations.confirm_refused: the mail server's answer when it refused an email destination's latest link

Why: a link mailed to a mistyped address was refused by the mail server (550),
yet the destination kept saying "nothing is sent until someone there follows the
link we emailed", and its owner waited for a confirmation that could not come
(user trial 7). The refusal arrives after the page was answered (the link goes
out after commit, and a temporary failure is tried again for minutes), so it is
kept on the row (`jobs.destination_confirmation`) and said in the destination's
status until a new link goes out.

Revision ID: 0020
Revises: 0019
Create Date: 2026-12-07 22:00:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0020"
down_revision = "0019"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("destinations", schema=None) as batch_op:
        batch_op.add_column(sa.Column("confirm_refused", sa.Text(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("destinations", schema=None) as batch_op:
        batch_op.drop_column("confirm_refused")
