"""Revision 0019 on a database that already holds destinations: every one keeps receiving archives.

Shared by the SQLite test (tests/store/test_migration_0019.py) and the PostgreSQL one
(tests/scale/test_migration_0019_postgresql.py), so both databases are held to the same check.
"""

from __future__ import annotations

import datetime as dt

from sqlalchemy import text

from store import Database, migrate

MADE = dt.datetime(2026, 11, 2, 8, 30)


def existing_destinations_stay_confirmed(database: Database) -> None:
    """Migrate to 0018, store an email and a bucket destination as a user had them, then upgrade to 0019."""
    migrate.upgrade(database, "0018")
    with database.write_engine.begin() as connection:
        connection.execute(
            text(
                "INSERT INTO users (id, email, timezone, is_active, is_support, created_at)"
                " VALUES (1, :e, 'UTC', :t, :f, :at)"
            ),
            {"e": "old@example.com", "t": True, "f": False, "at": MADE},
        )
        for row_id, kind, settings in ((1, "email", '{"to": "copy@example.net"}'), (2, "s3", '{"bucket": "b"}')):
            connection.execute(
                text(
                    "INSERT INTO destinations (id, user_id, kind, label, settings_json, enabled, created_at, status)"
                    " VALUES (:id, 1, :kind, :kind, :settings, :t, :at, 'ok')"
                ),
                {"id": row_id, "kind": kind, "settings": settings, "t": True, "at": MADE},
            )
    migrate.upgrade(database)
    with database.engine.connect() as connection:
        rows = connection.execute(text("SELECT id, confirmed_at, confirm_sent_at FROM destinations ORDER BY id")).all()
    assert [(row[0], _naive(row[1]), row[2]) for row in rows] == [(1, MADE, None), (2, MADE, None)]


def _naive(value: object) -> object:
    """SQLite hands back a string, PostgreSQL a datetime: compare as a naive datetime."""
    if isinstance(value, str):
        return dt.datetime.fromisoformat(value)
    return value
