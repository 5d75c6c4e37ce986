"""The migrations build exactly the schema the models describe.

Why: a new SQLite database and a migrated one must be the same database. A
column added to a model but forgotten in a migration (or the reverse) works in
tests that create tables from the models and fails for an operator who runs
`db upgrade` — so the migrated schema is compared with the models here.
"""

from __future__ import annotations

from pathlib import Path

from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import create_engine

from store import Base


def test_migrated_sqlite_schema_has_every_model_column_and_table(migrated_sqlite: Path) -> None:
    engine = create_engine(f"sqlite:///{migrated_sqlite}")
    try:
        with engine.connect() as connection:
            context = MigrationContext.configure(connection, opts={"compare_type": True})
            differences = compare_metadata(context, Base.metadata)
    finally:
        engine.dispose()
    assert differences == []
