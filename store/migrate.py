"""Schema migrations through Alembic, driven from the app's configuration.

Why not Flask-Migrate: we need one extra rule in `db upgrade` (refuse to
migrate while any active user lacks a fresh verified archive — the Sidekick
lesson) and the rest is three Alembic calls.
"""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory

from store.db import Database

MIGRATIONS = Path(__file__).resolve().parent.parent / "migrations"


def alembic_config(database: Database) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    cfg.set_main_option("sqlalchemy.url", database.url.replace("%", "%%"))
    return cfg


def upgrade(database: Database, revision: str = "head") -> None:
    cfg = alembic_config(database)
    with database.engine.begin() as connection:
        cfg.attributes["connection"] = connection
        command.upgrade(cfg, revision)


def downgrade(database: Database, revision: str) -> None:
    cfg = alembic_config(database)
    with database.engine.begin() as connection:
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
