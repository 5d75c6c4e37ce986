"""On PostgreSQL too, triggers refuse to change, delete or truncate audit rows."""

from __future__ import annotations

import pytest
from sqlalchemy import func, select, text
from sqlalchemy.exc import DBAPIError

from store import AuditEvent, Database
from tests.store.test_audit_append_only import append_and_try_to_rewrite

pytestmark = pytest.mark.scale


def test_postgresql_refuses_to_update_or_delete_an_audit_row(pg_db: Database) -> None:
    append_and_try_to_rewrite(pg_db)


def test_postgresql_refuses_to_truncate_the_audit_log(pg_db: Database) -> None:
    append_and_try_to_rewrite(pg_db)
    with pytest.raises(DBAPIError, match="append-only"), pg_db.engine.begin() as connection:
        connection.execute(text("TRUNCATE audit_events"))
    with pg_db.session() as session:
        assert session.scalar(select(func.count()).select_from(AuditEvent)) == 1
