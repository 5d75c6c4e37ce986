"""Schema migrations through Alembic, driven from the app's configuration.

Why not Flask-Migrate: we need one extra rule in `db upgrade` (refuse to
migrate while any active user lacks a fresh verified archive — the Sidekick
lesson) and the rest is three Alembic calls.
"""

from __future__ import annotations

import time
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import inspect
from sqlalchemy.exc import OperationalError, SQLAlchemyError

from store.db import Database

MIGRATIONS = Path(__file__).resolve().parent.parent / "migrations"


def alembic_config(database: Database) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    cfg.set_main_option("sqlalchemy.url", database.url.replace("%", "%%"))
    return cfg


def upgrade(database: Database, revision: str = "head") -> None:
    cfg = alembic_config(database)
    # The write engine: on SQLite it takes the write lock at BEGIN, so two processes
    # migrating at once queue up instead of failing with "database is locked".
    with database.write_engine.begin() as connection:
        cfg.attributes["connection"] = connection
        command.upgrade(cfg, revision)


def create_schema_if_new(database: Database) -> bool:
    """Give a brand-new SQLite database the newest schema; True if it did.

    Why only new and only SQLite: the embedded default must work on first use
    without a `db upgrade`, and an empty file holds nobody's data, so the
    upgrade guard (no migration while a user lacks a fresh archive) has nothing
    to protect. A database with tables is left alone: moving it to a newer
    schema stays `db upgrade`'s job, guard included. PostgreSQL is shared and
    administered: its schema changes only when the operator says so.
    The emptiness check runs inside the migration's own write transaction, so
    of two processes starting together exactly one creates the schema.
    """
    if not database.is_sqlite:
        return False
    # Connections opening a brand-new file at the same instant race to switch it to WAL
    # (store.db's connect pragma), and SQLite answers the losers "database is locked" at
    # once, busy timeout or not. Only the very first connections can meet this, so retry
    # for a few seconds; once the file is in WAL mode the pragma no longer takes a lock.
    deadline = time.monotonic() + 5
    while True:
        try:
            return _create_schema_if_new(database)
        except OperationalError as exc:
            if "locked" not in str(exc.orig) or time.monotonic() > deadline:
                raise
            time.sleep(0.05)


def _create_schema_if_new(database: Database) -> bool:
    cfg = alembic_config(database)
    with database.write_engine.begin() as connection:
        if inspect(connection).get_table_names():
            return False
        cfg.attributes["connection"] = connection
        command.upgrade(cfg, "head")
    return True


def schema_advice(database: Database) -> str | None:
    """What to run when the schema is missing or older than the code, else None.

    For messages after a query failed: "no such table" and "no such column"
    mean nothing to a newcomer, `db upgrade` does.
    """
    try:
        current, head = current_revision(database), head_revision(database)
    except SQLAlchemyError:
        return None  # the database itself is unreachable: the error says more than we could
    if current is None:
        return "The database has no Lifeboat tables yet: run `lifeboat db upgrade`."
    if current != head:
        return (
            f"The database schema is at revision {current}, this Lifeboat needs {head}: "
            "run `lifeboat export-all`, then `lifeboat db upgrade`."
        )
    return None


def downgrade(database: Database, revision: str) -> None:
    cfg = alembic_config(database)
    with database.write_engine.begin() as connection:
        cfg.attributes["connection"] = connection
        command.downgrade(cfg, revision)


def current_revision(database: Database) -> str | None:
    with database.engine.connect() as connection:
        return MigrationContext.configure(connection).get_current_revision()


def head_revision(database: Database) -> str | None:
    return ScriptDirectory.from_config(alembic_config(database)).get_current_head()


def pending(database: Database) -> bool:
    return current_revision(database) != head_revision(database)


def revision(database: Database, message: str) -> None:
    """Autogenerate a migration from the models (developers only)."""
    cfg = alembic_config(database)
    command.revision(cfg, message=message, autogenerate=True)
