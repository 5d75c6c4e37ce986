"""Add delivery_attempts receipt columns and users.export_kinds

Why: a delivery receipt is what lets a user (and support) prove where an
archive landed: the S3 object key, its version id and ETag, or the email's
Message-ID. They were folded into a free-text location before; as columns
they can be shown, searched and compared. export_kinds lets each user choose
which kinds of data their archives hold ("contacts,calendars,notes"; NULL:
all of them).

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-06 15:00:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("delivery_attempts", schema=None) as batch_op:
        batch_op.add_column(sa.Column("object_key", sa.Text(), nullable=True))
        batch_op.add_column(sa.Column("version_id", sa.String(length=1024), nullable=True))
        batch_op.add_column(sa.Column("etag", sa.String(length=256), nullable=True))
        batch_op.add_column(sa.Column("message_id", sa.String(length=998), nullable=True))
    with op.batch_alter_table("users", schema=None) as batch_op:
        batch_op.add_column(sa.Column("export_kinds", sa.String(length=64), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("users", schema=None) as batch_op:
        batch_op.drop_column("export_kinds")
    with op.batch_alter_table("delivery_attempts", schema=None) as batch_op:
        batch_op.drop_column("message_id")
        batch_op.drop_column("etag")
        batch_op.drop_column("version_id")
        batch_op.drop_column("object_key")
