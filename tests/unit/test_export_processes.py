"""The embedded deployment's export processes (EMBEDDED_PROCESSES): same runs, same guarantees, own cores.

Real child processes on a real SQLite file, started by `jobs.start_embedded` as
`lifeboat serve` does. What must hold: every queued run is delivered exactly once,
by a child and not by the web process; and a child killed mid-export (SIGKILL, no
clean-up) loses nothing: its lease runs out, the tick requeues the run, a new
child takes its place and delivers it, once.
"""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from flask import Flask
from sqlalchemy import func, select

import jobs
from account.sample import SampleSize, generate_account
from app import create_app
from jobs import run_lifecycle
from store import Archive, ExportRun, RunEvent, get_db
from store.accounts import replace_account
from store.base import utcnow

# Each test starts export processes that build the whole app.
pytestmark = pytest.mark.slow

SMALL = SampleSize(contacts=5, events=10, notes=3)


def make_app(folder: Path, migrated: Path, **settings: object) -> Flask:
    database = folder / "lifeboat.sqlite3"
    database.write_bytes(migrated.read_bytes())
    return create_app(
        {
            "TESTING": True,
            "INSTANCE_PATH": str(folder / "instance"),
            "DATABASE_URL": f"sqlite:///{database}",
            "ARCHIVE_DIR": str(folder / "archives"),
            "SECRET_KEY": "test-secret-key",
            "EMBEDDED_PROCESSES": True,
            "TICK_SECONDS": 1,
            **settings,
        }
    )


@pytest.fixture
def running(tmp_path: Path, migrated_sqlite: Path) -> Iterator[Callable[..., Flask]]:
    """Start an app's embedded runtime with export processes; every one started is shut down."""
    started: list[Flask] = []

    def start(**settings: object) -> Flask:
        app = make_app(tmp_path, migrated_sqlite, **settings)
        jobs.start_embedded(app)
        started.append(app)
        return app

    yield start
    for app in started:
        app.extensions[jobs.EXTENSION]["runtime"].shutdown(wait=False)
        get_db(app).dispose()


def queue_runs(app: Flask, count: int) -> list[str]:
    ids = []
    with get_db(app).session(write=True) as session:
        for i in range(count):
            user = replace_account(session, generate_account(f"user{i}@example.com", SMALL, seed=i))
            run, _ = run_lifecycle.request_run(session, user.id, "manual", now=utcnow())
            ids.append(run.id)
    jobs.kick(app)
    return ids


def wait_for(condition: Callable[[], object], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.1)


def runs(app: Flask, ids: list[str]) -> list[ExportRun]:
    with get_db(app).session() as session:
        return list(session.scalars(select(ExportRun).where(ExportRun.id.in_(ids))))


def events(app: Flask, run_id: str, kind: str) -> int:
    with get_db(app).session() as session:
        return session.scalar(select(func.count()).where(RunEvent.run_id == run_id, RunEvent.kind == kind)) or 0


def test_child_processes_deliver_every_queued_run_exactly_once(running: Callable[..., Flask]) -> None:
    app = running(EMBEDDED_WORKERS=2)
    ids = queue_runs(app, 4)
    wait_for(lambda: all(run.state == "delivered" for run in runs(app, ids)), 120, "4 delivered runs")
    children = app.extensions[jobs.EXTENSION]["runtime"].children.pids()
    assert len(children) == 2 and os.getpid() not in children
    with get_db(app).session() as session:
        for run_id in ids:
            started = session.scalars(
                select(RunEvent.message).where(RunEvent.run_id == run_id, RunEvent.kind == "started")
            ).all()
            assert started == ["Attempt 1 started."]
            assert session.scalar(select(func.count()).select_from(Archive).join(ExportRun)
                                  .where(ExportRun.id == run_id)) == 1  # fmt: skip
    for run_id in ids:
        assert events(app, run_id, "delivered") == 1


def test_a_child_killed_mid_export_loses_nothing_and_is_replaced(running: Callable[..., Flask]) -> None:
    app = running(EMBEDDED_WORKERS=1, RUN_LEASE_SECONDS=2, TEST_EXPORT_DELAY_MS=300)
    runtime = app.extensions[jobs.EXTENSION]["runtime"]
    [run_id] = queue_runs(app, 1)
    wait_for(lambda: runs(app, [run_id])[0].state == "running", 60, "the run to start")
    owner = runs(app, [run_id])[0].lease_owner
    assert owner is not None
    victim = int(owner.split(":")[2])  # embedded:<host>:<pid>:<n>
    assert victim in runtime.children.pids() and victim != os.getpid()
    os.kill(victim, signal.SIGKILL)
    wait_for(lambda: runs(app, [run_id])[0].state == "delivered", 120, "the run delivered after the kill")
    [run] = runs(app, [run_id])
    assert run.attempt == 2
    assert events(app, run_id, "requeued") == 1
    assert events(app, run_id, "delivered") == 1
    assert victim not in runtime.children.pids() and len(runtime.children.pids()) == 1
