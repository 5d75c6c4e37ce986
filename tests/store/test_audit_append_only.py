"""The audit log can be added to and never changed: the database itself refuses UPDATE and DELETE."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from sqlalchemy import delete, func, select, update
from sqlalchemy.exc import DBAPIError

from store import AuditEvent, Database


def append_and_try_to_rewrite(database: Database) -> None:
    with database.session(write=True) as session:
        session.add(AuditEvent(actor_email="sam@support.example", actor_role="support", action="resend_archive",
                               target_user_id=1, reason="user asked", outcome="ok"))  # fmt: skip
    for statement in (update(AuditEvent).values(reason="nothing happened"), delete(AuditEvent)):
        with pytest.raises(DBAPIError, match="append-only"), database.session(write=True) as session:
            session.execute(statement)
    with database.session() as session:
        assert session.scalar(select(func.count()).select_from(AuditEvent)) == 1
        assert session.scalar(select(AuditEvent.reason)) == "user asked"


def test_sqlite_refuses_to_update_or_delete_an_audit_row(migrated_sqlite: Path, tmp_path: Path) -> None:
    shutil.copyfile(migrated_sqlite, tmp_path / "db.sqlite3")
    database = Database(f"sqlite:///{tmp_path / 'db.sqlite3'}")
    try:
        append_and_try_to_rewrite(database)
    finally:
        database.dispose()
