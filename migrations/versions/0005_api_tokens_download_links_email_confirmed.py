"""Add api_tokens, download_links and users.email_confirmed_at

Why: end users script their backups with personal API tokens (stored as
SHA-256, shown once, revocable), download archives through signed links that
can be revoked and listed with their expiry (a link names a row), and sign up
with an address they confirm by a signed link.

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-06 13:10:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "api_tokens",
        sa.Column("id", sa.String(length=32), primary_key=True),
        sa.Column("user_id", sa.Integer(), sa.ForeignKey("users.id", ondelete="CASCADE"), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("token_sha256", sa.String(length=64), nullable=False, unique=True),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("expires_at", sa.DateTime(), nullable=True),
        sa.Column("last_used_at", sa.DateTime(), nullable=True),
        sa.Column("revoked_at", sa.DateTime(), nullable=True),
    )
    op.create_index("ix_api_tokens_user_id", "api_tokens", ["user_id"])
    op.create_table(
        "download_links",
        sa.Column("id", sa.String(length=32), primary_key=True),
        sa.Column("archive_id", sa.String(length=32), sa.ForeignKey("archives.id", ondelete="CASCADE"), nullable=False),
        sa.Column("user_id", sa.Integer(), sa.ForeignKey("users.id", ondelete="CASCADE"), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("expires_at", sa.DateTime(), nullable=False),
        sa.Column("revoked_at", sa.DateTime(), nullable=True),
        sa.Column("downloads", sa.Integer(), nullable=False, server_default="0"),
    )
    op.create_index("ix_download_links_archive_id", "download_links", ["archive_id"])
    op.create_index("ix_download_links_user_id", "download_links", ["user_id"])
    with op.batch_alter_table("users", schema=None) as batch_op:
        batch_op.add_column(sa.Column("email_confirmed_at", sa.DateTime(), nullable=True))
    # Every account before this revision was made by an operator, who typed its address:
    # confirmed. Only web sign-ups start unconfirmed (and may not export until they confirm).
    op.execute("UPDATE users SET email_confirmed_at = created_at WHERE email_confirmed_at IS NULL")


def downgrade() -> None:
    with op.batch_alter_table("users", schema=None) as batch_op:
        batch_op.drop_column("email_confirmed_at")
    op.drop_index("ix_download_links_user_id", table_name="download_links")
    op.drop_index("ix_download_links_archive_id", table_name="download_links")
    op.drop_table("download_links")
    op.drop_index("ix_api_tokens_user_id", table_name="api_tokens")
    op.drop_table("api_tokens")
