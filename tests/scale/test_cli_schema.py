"""PostgreSQL is never migrated behind the operator's back: a command on an empty database says what to run."""

from __future__ import annotations

import os
import secrets
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner
from psycopg import sql

import cli
from store import Database, migrate
from tests.scale.conftest import _admin, pg_url_for

pytestmark = pytest.mark.scale


@pytest.fixture
def empty_pg_url() -> Iterator[str]:
    name = f"lifeboat_test_{secrets.token_hex(6)}"
    with _admin() as admin:
        admin.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    try:
        yield pg_url_for(name)
    finally:
        with _admin() as admin:
            admin.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))


def test_a_command_on_an_unmigrated_postgresql_says_run_db_upgrade(
    empty_pg_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in list(os.environ):
        if name.startswith(("LIFEBOAT_", "FLASK_")):
            monkeypatch.delenv(name)
    monkeypatch.setenv("FLASK_SKIP_DOTENV", "1")
    monkeypatch.setenv("LIFEBOAT_INSTANCE_DIR", str(tmp_path / "instance"))
    monkeypatch.setenv("LIFEBOAT_DATABASE_URL", empty_pg_url)
    result = CliRunner().invoke(cli.main, ["export", "alice@example.com"])
    assert result.exit_code == 1
    assert result.output.splitlines()[-1] == (
        "Error: The database has no Lifeboat tables yet: run `lifeboat db upgrade`."
    )
    database = Database(empty_pg_url)
    assert migrate.current_revision(database) is None  # nothing was created behind the operator's back
    database.dispose()
