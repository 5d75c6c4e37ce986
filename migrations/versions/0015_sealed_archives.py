"""Add users.seal_key and the sealed file's SHA-256, size and key on delivery_attempts

Why: a user may give a public key (age or OpenPGP) that their archives are
encrypted to before delivery (`delivery.sealing`). The key is public, so it is
stored as given, not encrypted. A sealed delivery's receipt keeps both
digests: `archive_sha256` (the archive, once decrypted) and `sealed_sha256`
with `sealed_size` (the ciphertext the destination holds, which scrub checks),
and `sealed_to` names the key it was encrypted to. NULL: not sealed.

Revision ID: 0015
Revises: 0014
Create Date: 2026-12-07 07:40:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from alembic.util import CommandError

revision = "0015"
down_revision = "0014"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("users", schema=None) as batch_op:
        batch_op.add_column(sa.Column("seal_key", sa.Text(), nullable=True))
    with op.batch_alter_table("delivery_attempts", schema=None) as batch_op:
        batch_op.add_column(sa.Column("sealed_sha256", sa.String(length=64), nullable=True))
        batch_op.add_column(sa.Column("sealed_size", sa.BigInteger(), nullable=True))
        batch_op.add_column(sa.Column("sealed_to", sa.String(length=300), nullable=True))


def downgrade() -> None:
    # Dropping the keys would send those users' next archives out unencrypted, and make scrub compare
    # the ciphertext in their buckets with the plain archives' digests: refuse, saying what to do.
    sealed = op.get_bind().execute(sa.text("SELECT COUNT(*) FROM users WHERE seal_key IS NOT NULL")).scalar()
    if sealed:
        raise CommandError(
            f"{sealed} user(s) have archives encrypted to their key, which the older schema cannot keep: "
            "stop it for each first (lifeboat archive-options EMAIL --encrypt-to off), or stay on this version"
        )
    with op.batch_alter_table("delivery_attempts", schema=None) as batch_op:
        batch_op.drop_column("sealed_to")
        batch_op.drop_column("sealed_size")
        batch_op.drop_column("sealed_sha256")
    with op.batch_alter_table("users", schema=None) as batch_op:
        batch_op.drop_column("seal_key")
