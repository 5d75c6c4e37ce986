"""The database going away mid-run is survived: every run still ends delivered, exactly once.

Two ways: every connection to the test database is terminated
(`pg_terminate_backend`), first while one export is half-written, then every
half second while a Celery worker exports and the dispatcher ticks; and the
machine's PostgreSQL server is really restarted (`pg_ctlcluster restart`) while
an export is half-written, so for a moment it refuses connections too. Each
process must notice on its own (pool pre-ping, failed heartbeats, failed ticks
retried at the next tick, a failed attempt retried after its backoff) and carry on.
"""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from flask import Flask
from sqlalchemy import select, update

from account.sample import SampleSize, generate_account
from exporters.archive.reader import verify_archive
from store import Archive, Database, ExportRun, RunEvent, RunState, Schedule
from store.accounts import replace_account
from store.base import utcnow
from tests.scale.conftest import Process, add_users, dispatcher_ticking, wait_until

pytestmark = pytest.mark.scale

USERS = 30
SMALL = SampleSize(contacts=10, events=2, notes=5, calendars=1, photo_ratio=0, attachment_ratio=0)
# After the first user, one falls due every SPACING seconds from 2 s on (the last at about 5 s), and
# connections are cut for STORM seconds: runs are still created and claimed throughout the outage,
# in less time than the 0.2 s spacing (last due at about 8 s) and 8 s storm these tests had.
SPACING = 0.1
STORM = 5.0


def runs_by_user(db: Database) -> dict[int, list[ExportRun]]:
    found: dict[int, list[ExportRun]] = {}
    with db.session() as session:
        for run in session.scalars(select(ExportRun)):
            found.setdefault(run.user_id, []).append(run)
    return found


def delivered(db: Database) -> int:
    return sum(1 for runs in runs_by_user(db).values() for run in runs if run.state == RunState.DELIVERED)


def describe_runs(db: Database) -> str:
    """Each run's state, attempt and latest history line: what a timed-out wait was stuck on."""
    lines = []
    for user_id, user_runs in sorted(runs_by_user(db).items()):
        for run in user_runs:
            with db.session() as session:
                last = session.scalars(
                    select(RunEvent.message).where(RunEvent.run_id == run.id).order_by(RunEvent.id.desc()).limit(1)
                ).first()
            lines.append(f"user {user_id}: {run.state} attempt {run.attempt} not before {run.not_before}: {last}")
    return "\n".join(lines)


def assert_each_user_delivered_once(db: Database, ids: list[int], archive_dir: Path) -> list[ExportRun]:
    """One delivered run per user, one archive per run, and no zip on disk that is not one of them."""
    found = runs_by_user(db)
    assert sorted(found) == sorted(ids)
    assert all(len(runs) == 1 and runs[0].state == RunState.DELIVERED for runs in found.values())
    with db.session() as session:
        archives = list(session.scalars(select(Archive)))
    assert sorted(a.id for a in archives) == sorted(runs[0].archive_id or "" for runs in found.values())
    assert {p.relative_to(archive_dir).as_posix() for p in archive_dir.glob("*/*.zip")} == {a.relpath for a in archives}
    for archive in archives:
        verify_archive(archive_dir / archive.relpath)
    return [runs[0] for runs in found.values()]


def schedule_in_turn(db: Database, ids: list[int]) -> None:
    """The first user is due now; the others fall due one by one during the test."""
    now = utcnow()
    with db.session(write=True) as session:
        replace_account(session, generate_account("user00000@scale.example", SMALL))
        for i, user_id in enumerate(ids):
            due = now - dt.timedelta(minutes=1) if i == 0 else now + dt.timedelta(seconds=2 + i * SPACING)
            session.execute(update(Schedule).where(Schedule.user_id == user_id).values(next_run_at=due))


@pytest.mark.timeout(180)
def test_runs_and_dispatcher_ticks_survive_a_real_postgresql_restart(
    scale_app: Flask,
    pg_db: Database,
    spawn_worker: Callable[..., Process],
    restart_postgresql: Callable[[], float],
) -> None:
    archive_dir = Path(scale_app.config["ARCHIVE_DIR"])
    ids = add_users(pg_db, USERS, zones=["Europe/Berlin", "UTC"], times=["02:00"])
    slow_user = ids[0]
    schedule_in_turn(pg_db, ids)
    pg_db.dispose()  # this process's own pool holds no connection across the restart
    worker = spawn_worker("worker", LIFEBOAT_TEST_EXPORT_DELAY_MS="150")
    with dispatcher_ticking(scale_app, every=0.3):
        wait_until(
            lambda: any((archive_dir / str(slow_user)).glob(".*.partial-*")),
            timeout=30,
            what="the first export to be half-written",
        )
        down = restart_postgresql()
        wait_until(
            lambda: delivered(pg_db) == USERS,
            timeout=120,
            what="every run to be delivered",
            explain=lambda: describe_runs(pg_db),
        )

    assert down > 0.5  # the server really went away
    # Only the exports running when the server went (the worker has two threads) may fail;
    # the queued messages waited for the database instead of failing their claims one by one.
    assert worker.output().count("raised unexpected") <= 2
    runs = assert_each_user_delivered_once(pg_db, ids, archive_dir)
    (slow,) = [run for run in runs if run.user_id == slow_user]
    with pg_db.session() as session:
        kinds = list(session.scalars(select(RunEvent.kind).where(RunEvent.run_id == slow.id)))
    assert kinds.count("delivered") == 1


@pytest.mark.timeout(120)
def test_runs_and_dispatcher_ticks_survive_the_database_dropping_every_connection(
    scale_app: Flask,
    pg_db: Database,
    spawn_worker: Callable[..., Process],
    terminate_backends: Callable[[], int],
) -> None:
    archive_dir = Path(scale_app.config["ARCHIVE_DIR"])
    ids = add_users(pg_db, USERS, zones=["Europe/Berlin", "UTC"], times=["02:00"])
    slow_user = ids[0]
    now = utcnow()
    with pg_db.session(write=True) as session:
        replace_account(session, generate_account("user00000@scale.example", SMALL))
        # The first user is due now; the others fall due one by one while connections are cut,
        # so the dispatcher creates runs throughout.
        for i, user_id in enumerate(ids):
            due = now - dt.timedelta(minutes=1) if i == 0 else now + dt.timedelta(seconds=2 + i * SPACING)
            session.execute(update(Schedule).where(Schedule.user_id == user_id).values(next_run_at=due))
    spawn_worker("worker", LIFEBOAT_TEST_EXPORT_DELAY_MS="150")
    cuts: list[int] = []
    with dispatcher_ticking(scale_app, every=0.3):
        wait_until(
            lambda: any((archive_dir / str(slow_user)).glob(".*.partial-*")),
            timeout=30,
            what="the first export to be half-written",
        )
        cuts.append(terminate_backends())
        storm_ends = time.monotonic() + STORM
        while time.monotonic() < storm_ends:
            time.sleep(0.5)
            cuts.append(terminate_backends())
        wait_until(lambda: delivered(pg_db) == USERS, timeout=60, what="every run to be delivered")

    assert cuts[0] > 0 and sum(1 for cut in cuts if cut) >= 5  # connections really were dropped
    found = runs_by_user(pg_db)
    assert sorted(found) == sorted(ids)
    assert all(len(runs) == 1 and runs[0].state == RunState.DELIVERED for runs in found.values())
    # The export cut half-way failed, was retried, and its retry delivered.
    (slow,) = found[slow_user]
    with pg_db.session() as session:
        kinds = list(session.scalars(select(RunEvent.kind).where(RunEvent.run_id == slow.id)))
        archives = list(session.scalars(select(Archive)))
    assert slow.attempt >= 2 and ("retry" in kinds or "requeued" in kinds)
    assert kinds.count("delivered") == 1
    # One archive per run, and no zip on disk that is not one of them (none half-recorded).
    assert sorted(a.id for a in archives) == sorted(runs[0].archive_id or "" for runs in found.values())
    assert {p.relative_to(archive_dir).as_posix() for p in archive_dir.glob("*/*.zip")} == {a.relpath for a in archives}
    for archive in archives:
        verify_archive(archive_dir / archive.relpath)
