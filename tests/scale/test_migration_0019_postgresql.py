"""On PostgreSQL, revision 0019 marks the destinations made before it confirmed (they kept working)."""

from __future__ import annotations

import secrets

import pytest
from psycopg import sql

from store import Database
from tests.scale.conftest import _admin, pg_url_for
from tests.store.migration_0019 import existing_destinations_stay_confirmed

pytestmark = pytest.mark.scale


def test_destinations_made_before_0019_stay_confirmed_on_postgresql() -> None:
    name = f"lifeboat_test_{secrets.token_hex(6)}"
    with _admin() as admin:
        admin.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    database = Database(pg_url_for(name))
    try:
        existing_destinations_stay_confirmed(database)
    finally:
        database.dispose()
        with _admin() as admin:
            admin.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))
