"""On PostgreSQL, staff changes with NUL in the reason or an over-long request key are stored clean or refused.

Why here: PostgreSQL refuses NUL in text and enforces the request key's 128
characters, where SQLite stored both; before trial 14's fix the admin pages
answered these with a 500 on PostgreSQL only.
"""

from __future__ import annotations

import datetime as dt

import pytest

from errors import InvalidInput
from jobs.audit import Actor
from jobs.staff_accounts import create_staff, deactivate
from jobs.staff_tokens import make_staff_token
from store import AuditEvent, Database

pytestmark = pytest.mark.scale

NOW = dt.datetime(2026, 12, 6, 12, tzinfo=dt.UTC)
OPERATOR = Actor(user_id=None, email="cli:test", role="operator")


def test_staff_changes_store_a_nul_reason_as_u_fffd_and_refuse_a_long_key_on_postgresql(pg_db: Database) -> None:
    with pg_db.session(write=True) as session:
        helper = create_staff(session, OPERATOR, "h@pg.example", "support", password=None, reason="a\x00b", now=NOW)
        make_staff_token(session, OPERATOR, helper, "script", days=30, reason="c\x00d", now=NOW, request_key="k1")
        deactivate(session, OPERATOR, helper.id, reason="e\x00f", now=NOW, request_key="k2")
    with pg_db.session() as session:
        assert sorted(session.scalars(AuditEvent.__table__.select().with_only_columns(AuditEvent.reason))) == [
            "a\ufffdb",
            "c\ufffdd",
            "e\ufffdf",
        ]
    with pytest.raises(InvalidInput, match="request key must be 1 to 128"), pg_db.session(write=True) as session:
        create_staff(
            session, OPERATOR, "i@pg.example", "support", password=None, reason="r", now=NOW, request_key="k" * 129
        )
