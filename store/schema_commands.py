"""Schema commands: `db current`, `db downgrade` (the `db` group's `upgrade` is jobs' own).

Why `upgrade` is not here: upgrading is guarded by a policy (no upgrade while
a user lacks a fresh verified archive) that belongs to the part that makes
archives, so `jobs.commands` checks freshness and then calls `migrate.upgrade`.
`app.py` hands all three to `cli.init_app`, which builds the `db` group.
"""

from __future__ import annotations

import click
from flask.cli import with_appcontext

from store import migrate
from store.db import get_db


@click.command("current")
@with_appcontext
def db_current() -> None:
    """Show the database's schema revision."""
    database = get_db()
    click.echo(f"{migrate.current_revision(database)} (head: {migrate.head_revision(database)})")


@click.command("downgrade")
@click.argument("revision")
@with_appcontext
def db_downgrade(revision: str) -> None:
    """Migrate the database back to REVISION."""
    migrate.downgrade(get_db(), revision)
    click.echo(f"Database downgraded to revision {migrate.current_revision(get_db())}.")


SCHEMA_COMMANDS = [db_current, db_downgrade]
