"""Add users.session_version and users.vcard_version

Why: sessions are signed cookies, so signing out could not end a session that
was captured before; every session now carries the user's session_version, and
signing out or changing the password bumps it, which invalidates every older
cookie at once. vcard_version lets each user choose vCard 3.0 or 4.0 for their
archives (NULL: the server's default, LIFEBOAT_VCARD_VERSION).

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-06 12:00:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("users", schema=None) as batch_op:
        batch_op.add_column(sa.Column("session_version", sa.Integer(), nullable=False, server_default="0"))
        batch_op.add_column(sa.Column("vcard_version", sa.String(length=8), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("users", schema=None) as batch_op:
        batch_op.drop_column("vcard_version")
        batch_op.drop_column("session_version")
