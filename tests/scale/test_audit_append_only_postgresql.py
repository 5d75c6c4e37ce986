"""On PostgreSQL too, a trigger refuses to change or delete an audit row."""

from __future__ import annotations

import pytest

from store import Database
from tests.store.test_audit_append_only import append_and_try_to_rewrite

pytestmark = pytest.mark.scale


def test_postgresql_refuses_to_update_or_delete_an_audit_row(pg_db: Database) -> None:
    append_and_try_to_rewrite(pg_db)
