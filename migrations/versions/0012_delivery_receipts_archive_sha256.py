"""Add delivery_attempts.archive_sha256: the SHA-256 of the archive file each delivery sent

Why: the receipt is what a user keeps to prove which archive landed where.
With the whole file's SHA-256 beside the S3 key or Message-ID, `lifeboat
verify ARCHIVE --expect SHA256` checks the copy they hold is that very file,
before its manifest signature and checksums are checked. Older attempts keep
NULL (their archive's row still has its SHA-256 while it lasts).

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-07 04:30:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("delivery_attempts", schema=None) as batch_op:
        batch_op.add_column(sa.Column("archive_sha256", sa.String(length=64), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("delivery_attempts", schema=None) as batch_op:
        batch_op.drop_column("archive_sha256")
