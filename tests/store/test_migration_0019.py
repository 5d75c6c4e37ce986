"""On SQLite, revision 0019 marks the destinations made before it confirmed (they kept working)."""

from __future__ import annotations

from pathlib import Path

from store import Database
from tests.store.migration_0019 import existing_destinations_stay_confirmed


def test_destinations_made_before_0019_stay_confirmed_on_sqlite(tmp_path: Path) -> None:
    database = Database(f"sqlite:///{tmp_path / 'before-0019.sqlite3'}")
    try:
        existing_destinations_stay_confirmed(database)
    finally:
        database.dispose()
