"""The dashboard reads a fixed number of SQL statements, however many runs, archives and destinations a user has.

Why: the dashboard is the page every signed-in user lands on and its budget
is a few milliseconds of CPU (bench/web_load.py); a statement per archive or
per run (an N+1 from a lazy load in the template) would grow with the account.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from contextlib import contextmanager

from flask.testing import FlaskClient
from sqlalchemy import event

from store import Database, Destination
from tests.browser.rows import add_archives, add_run, set_schedule


@contextmanager
def statements(db: Database) -> Iterator[list[str]]:
    """Every SQL statement sent on `db`'s engine (the read and write engines share its events) while open."""
    sent: list[str] = []

    def record(conn: object, cursor: object, statement: str, *rest: object) -> None:
        sent.append(statement)

    event.listen(db.engine, "before_cursor_execute", record)
    try:
        yield sent
    finally:
        event.remove(db.engine, "before_cursor_execute", record)


def dashboard_statements(client: FlaskClient, db: Database) -> tuple[int, str]:
    client.get("/")  # the first load after a change may fill caches; count a steady one
    with statements(db) as sent:
        response = client.get("/")
    assert response.status_code == 200
    return len(sent), response.get_data(as_text=True)


def add_history(db: Database, user_id: int, *, archives: int, runs: int, destinations: int) -> None:
    add_archives(db, user_id, archives)
    for i in range(runs):
        finished = dt.datetime(2026, 11, 1, tzinfo=dt.UTC) + dt.timedelta(hours=i)
        add_run(db, user_id, state="failed" if i % 2 else "delivered", stage="done", progress=100,
                error="Disk full." if i % 2 else None, finished_at=finished)  # fmt: skip
    with db.session(write=True) as session:
        for i in range(destinations):
            session.add(Destination(user_id=user_id, kind="email", label=f"Mailbox {i}", settings_json="{}"))


def test_dashboard_statement_count_does_not_grow_with_runs_archives_and_destinations(
    signed_in: FlaskClient, db: Database, alice_user: int
) -> None:
    empty_count, empty_page = dashboard_statements(signed_in, db)
    assert "No exports yet" in empty_page

    add_history(db, alice_user, archives=25, runs=15, destinations=3)
    set_schedule(db, alice_user, now=dt.datetime.now(dt.UTC))
    full_count, full_page = dashboard_statements(signed_in, db)

    # The page really shows the rows (20 newest archives, finished runs, every destination) ...
    assert full_page.count('class="download"') == 20
    assert full_page.count('class="run ') == 10
    assert "Mailbox 2" in full_page
    assert "Daily at 02:00" in full_page
    # ... from the same statements as the empty account: no statement per row.
    assert full_count == empty_count, (empty_count, full_count)


def test_dashboard_reads_the_signed_in_user_once_per_request(signed_in: FlaskClient, db: Database) -> None:
    signed_in.get("/")
    with statements(db) as sent:
        assert signed_in.get("/").status_code == 200
    reads_of_users = [s for s in sent if s.lstrip().upper().startswith("SELECT") and "FROM users" in s]
    assert len(reads_of_users) == 1, reads_of_users
