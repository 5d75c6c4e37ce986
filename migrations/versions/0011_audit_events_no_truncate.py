"""PostgreSQL refuses TRUNCATE on audit_events too, not only UPDATE and DELETE

Why: 0007's trigger is per row, and TRUNCATE fires no row trigger, so
`TRUNCATE audit_events` emptied the log that must be append-only (found by a
user trial). A statement-level trigger raises the same error. SQLite has no
TRUNCATE (its `DELETE FROM` without WHERE still meets 0007's row trigger).

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-07 00:05:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None


def upgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute(
            sa.text(
                "CREATE TRIGGER audit_events_no_truncate BEFORE TRUNCATE ON audit_events "
                "FOR EACH STATEMENT EXECUTE FUNCTION audit_events_append_only()"
            )
        )


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute(sa.text("DROP TRIGGER IF EXISTS audit_events_no_truncate ON audit_events"))
