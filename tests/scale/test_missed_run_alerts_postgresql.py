"""Missed-run alerts on PostgreSQL: several checkers at once still send each alert once.

Why here as well as on SQLite (tests/unit/test_missed_run_alerts.py): SQLite runs one
writer at a time, so the claim's conditional UPDATE is never really raced there; on
PostgreSQL four checkers update the same rows concurrently (READ COMMITTED), and the
second UPDATE of a row must re-read it and find it already alerted.
"""

from __future__ import annotations

import datetime as dt
import threading
from pathlib import Path

import pytest

from jobs import missed_runs
from jobs.context import JobContext
from jobs.support_queue import queue
from store import Database, Schedule, User

pytestmark = pytest.mark.scale

START = dt.datetime(2026, 11, 1, tzinfo=dt.UTC)
CHECKERS = 4
USERS = 40


def test_four_checkers_at_once_on_postgresql_send_each_alert_once(pg_db: Database, pg_url: str, tmp_path: Path) -> None:
    with pg_db.session(write=True) as session:
        users = [User(email=f"pg{n}@example.com", created_at=START) for n in range(USERS)]
        session.add_all(users)
        session.flush()
        session.add_all(
            Schedule(user_id=user.id, frequency="daily", enabled=True, enabled_at=START, next_run_at=START)
            for user in users
        )
    sent: list[str] = []
    lock = threading.Lock()

    def send(to: str, _subject: str, _text: str) -> None:
        with lock:
            sent.append(to)

    now = START + dt.timedelta(days=3)
    checkers = [
        JobContext(db=Database(pg_url), archive_dir=tmp_path, send_notice=send, base_url="https://lifeboat.test")
        for _ in range(CHECKERS)
    ]
    together = threading.Barrier(CHECKERS)

    def check(ctx: JobContext) -> None:
        together.wait(timeout=30)
        missed_runs.check(ctx, now=now)

    threads = [threading.Thread(target=check, args=(ctx,)) for ctx in checkers]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    for ctx in checkers:
        ctx.db.dispose()
    assert sorted(sent) == sorted(f"pg{n}@example.com" for n in range(USERS))
    with pg_db.session() as session:
        listed = queue(session, now=now, kinds=("missed_run",), limit=100).items
    assert {item.email for item in listed} == set(sent)
    assert {item.at for item in listed} == {START}
