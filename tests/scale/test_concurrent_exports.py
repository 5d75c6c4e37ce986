"""Many exports at once on PostgreSQL: the same proof as on SQLite (tests/unit/test_sqlite_writers.py).

Why here too: read sessions are READ ONLY transactions on PostgreSQL, and the
run path's writes must still be short transactions that never wait on an export.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from flask import Flask
from sqlalchemy import update
from sqlalchemy.exc import InternalError

from account.records import Account
from app import create_app
from store import Database, User, get_db
from tests.concurrent_exports import embedded_pool_rounds, export_all_rounds
from tests.scale.conftest import ENCRYPTION_KEY

pytestmark = pytest.mark.scale


@pytest.fixture
def pg_app(pg_db: Database, pg_url: str, tmp_path: Path) -> Iterator[Flask]:
    """The embedded shape (no broker) on this module's PostgreSQL database, emptied by `pg_db`."""
    app = create_app(
        {
            "TESTING": True,
            "DATABASE_URL": pg_url,
            "ARCHIVE_DIR": str(tmp_path / "archives"),
            "SECRET_KEY": "scale-test-secret-key",
            "ENCRYPTION_KEYS": [ENCRYPTION_KEY],
        }
    )
    yield app
    get_db(app).dispose()


def test_export_all_delivers_eight_users_at_once_on_the_first_attempt_three_rounds_on_postgresql(
    pg_app: Flask, alice: Account
) -> None:
    export_all_rounds(pg_app, alice)


def test_the_embedded_pool_delivers_eight_users_at_once_on_the_first_attempt_three_rounds_on_postgresql(
    pg_app: Flask, alice: Account
) -> None:
    embedded_pool_rounds(pg_app, alice)


def test_a_write_in_a_read_session_fails_at_once_on_postgresql(pg_db: Database) -> None:
    with pytest.raises(InternalError, match="read-only transaction"), pg_db.session() as session:
        session.execute(update(User).values(timezone="UTC"))
    with pg_db.session(write=True) as session:  # the pooled connection is writable again
        session.execute(update(User).values(timezone="UTC"))
