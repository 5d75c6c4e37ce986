"""Store commands: `db upgrade|current|downgrade|revision`, `import-account`."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import click
from flask import current_app
from flask.cli import with_appcontext
from sqlalchemy import inspect

from account.jsonio import load_account
from errors import InvalidInput
from store import migrate
from store.accounts import replace_account
from store.db import get_db
from store.freshness import users_without_fresh_archive


@click.group("db")
def db() -> None:
    """Database schema migrations."""


@db.command("upgrade")
@click.option("--force", is_flag=True, help="Migrate even if some users lack a fresh verified archive.")
@with_appcontext
def db_upgrade(force: bool) -> None:
    """Migrate the database to the newest schema.

    Refuses while any active user lacks a verified archive newer than
    LIFEBOAT_UPGRADE_MAX_ARCHIVE_AGE_HOURS: an upgrade must never be the moment
    the only copy is lost. Run `lifeboat export-all` first.
    """
    database = get_db()
    if not migrate.pending(database):
        click.echo(f"Database is up to date (revision {migrate.current_revision(database)}).")
        return
    if not force and inspect(database.engine).has_table("users"):
        max_age = dt.timedelta(hours=current_app.config["UPGRADE_MAX_ARCHIVE_AGE_HOURS"])
        missing = users_without_fresh_archive(database, max_age)
        if missing:
            shown = ", ".join(missing[:5]) + (f" and {len(missing) - 5} more" if len(missing) > 5 else "")
            raise click.ClickException(
                f"{len(missing)} active user(s) have no verified archive newer than {max_age}: {shown}.\n"
                "Run `lifeboat export-all` first (or pass --force if you accept the risk)."
            )
    migrate.upgrade(database)
    click.echo(f"Database upgraded to revision {migrate.current_revision(database)}.")


@db.command("current")
@with_appcontext
def db_current() -> None:
    """Show the database's schema revision."""
    database = get_db()
    click.echo(f"{migrate.current_revision(database)} (head: {migrate.head_revision(database)})")


@db.command("downgrade")
@click.argument("revision")
@with_appcontext
def db_downgrade(revision: str) -> None:
    """Migrate the database back to REVISION."""
    migrate.downgrade(get_db(), revision)
    click.echo(f"Database downgraded to revision {migrate.current_revision(get_db())}.")


@click.command("import-account")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@with_appcontext
def import_account(file: Path) -> None:
    """Load an account JSON file (account.schema.json), replacing that user's data.

    Nothing changes unless the whole file is valid; every problem is reported
    with its JSON path.
    """
    try:
        loaded = load_account(file.read_bytes())
    except InvalidInput as exc:
        raise click.ClickException(f"{file}: {exc}") from None
    account = loaded.account
    with get_db().session(write=True) as session:
        replace_account(session, account)
    click.echo(
        f"Imported {account.email}: {len(account.contacts)} contacts, "
        f"{sum(len(c.events) for c in account.calendars)} events in {len(account.calendars)} calendars, "
        f"{len(account.notes)} notes."
    )
    for path in loaded.replaced:
        click.echo(f"  {path}: U+0000 replaced with U+FFFD (no database or Markdown file can hold it)")


COMMANDS = [db, import_account]
