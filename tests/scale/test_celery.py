"""Real Celery workers on Redis and PostgreSQL: a killed worker loses nothing, a duplicate nothing.

Workers are `celery -A make_celery worker --pool=threads -c 2` processes, as
deployed; the dispatcher is `jobs.scheduler_loop.Dispatcher` ticking in this
process. Redis redelivers an unacknowledged task after the (shortened)
visibility timeout, and the dispatcher requeues a run whose lease ran out, so
a run can reach a worker more than once: the claim in the database must make
it execute once.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Callable
from pathlib import Path

import pytest
from flask import Flask
from sqlalchemy import select

from account.sample import SampleSize, generate_account
from exporters.archive.reader import verify_archive
from jobs import get_context, run_lifecycle
from jobs.housekeeping import remove_leftovers
from jobs.worker import dispatch_queued, run_export
from store import Archive, Database, ExportRun, RunEvent, RunState
from store.accounts import replace_account
from store.base import utcnow
from tests.scale.conftest import LEASE_SECONDS, Process, dispatcher_ticking, wait_until

pytestmark = pytest.mark.scale

# 10 contacts, 2 events and 5 notes make 18 progress steps: with the test-only
# delay below, an export takes about 4 s, long enough to kill its worker midway.
SMALL = SampleSize(contacts=10, events=2, notes=5, calendars=1, photo_ratio=0, attachment_ratio=0)
SLOW = {"LIFEBOAT_TEST_EXPORT_DELAY_MS": "250"}


def queue_run(db: Database, email: str) -> tuple[int, str]:
    with db.session(write=True) as session:
        user = replace_account(session, generate_account(email, SMALL))
        run, created = run_lifecycle.request_run(session, user.id, "manual", now=utcnow())
        assert created
        return user.id, run.id


def load(db: Database, run_id: str) -> ExportRun:
    with db.session() as session:
        run = session.get(ExportRun, run_id)
        assert run is not None
        return run


def history(db: Database, run_id: str) -> list[str]:
    """The run's history lines by kind, without the "stage" lines (their count depends on timing)."""
    with db.session() as session:
        query = select(RunEvent.kind).where(RunEvent.run_id == run_id, RunEvent.kind != "stage")
        return list(session.scalars(query.order_by(RunEvent.id)))


def archive_rows(db: Database) -> list[Archive]:
    with db.session() as session:
        return list(session.scalars(select(Archive)))


def zips(archive_dir: Path) -> set[str]:
    return {path.relative_to(archive_dir).as_posix() for path in archive_dir.glob("*/*.zip")}


def task_ids(worker: Process, outcome: str) -> set[str]:
    """Ids of `lifeboat.run_export` tasks the worker finished with a result containing `outcome`."""
    pattern = re.compile(r"Task lifeboat\.run_export\[([0-9a-f-]+)\] succeeded in [0-9.e-]+s: (.*)")
    return {m.group(1) for m in pattern.finditer(worker.output()) if outcome in m.group(2)}


@pytest.mark.timeout(120)
def test_a_worker_killed_mid_export_leaves_no_archive_and_another_worker_completes_the_run(
    scale_app: Flask, pg_db: Database, spawn_worker: Callable[..., Process]
) -> None:
    archive_dir = Path(scale_app.config["ARCHIVE_DIR"])
    first = spawn_worker("first", **SLOW)
    user_id, run_id = queue_run(pg_db, "killed@scale.example")
    assert dispatch_queued(get_context(scale_app)) == 1
    # Mid-export: the worker owns the run and its zip is still a partial file.
    wait_until(
        lambda: any((archive_dir / str(user_id)).glob(".*.partial-*")) and load(pg_db, run_id).progress > 0,
        timeout=30,
        what="the first worker to be half-way through the export",
    )
    first.kill()
    assert load(pg_db, run_id).state == RunState.RUNNING
    assert archive_rows(pg_db) == [] and zips(archive_dir) == set()  # nothing partial is visible

    second = spawn_worker("second", **SLOW)
    with dispatcher_ticking(scale_app):
        wait_until(
            lambda: load(pg_db, run_id).state == RunState.DELIVERED,
            timeout=60,
            what="the run to finish",
        )
        # The original message comes back once Redis's visibility timeout has passed; whichever
        # of it and the dispatcher's new message claims the requeued run, the other does nothing.
        (original,) = re.findall(r"Task lifeboat\.run_export\[([0-9a-f-]+)\] received", first.output())
        wait_until(lambda: original in task_ids(second, ""), timeout=30, what="the redelivered task")

    run = load(pg_db, run_id)
    assert run.attempt == 2 and run.lease_owner is None
    assert history(pg_db, run_id) == [
        "queued",
        "started",
        "requeued",
        "started",
        "exported",
        "delivered",
    ]
    (archive,) = archive_rows(pg_db)
    assert run.archive_id == archive.id and zips(archive_dir) == {archive.relpath}
    verify_archive(archive_dir / archive.relpath)
    assert len(task_ids(second, "delivered")) == 1
    assert task_ids(second, "") == task_ids(second, "delivered") | task_ids(second, "skipped")
    # The killed worker's partial file is a hidden temporary: housekeeping removes it, and only it.
    an_hour_later = utcnow() + dt.timedelta(hours=1)
    grace = dt.timedelta(seconds=LEASE_SECONDS * 3)
    assert remove_leftovers(pg_db, archive_dir, now=an_hour_later, older_than=grace) == 1
    assert sorted(p.name for p in (archive_dir / str(user_id)).iterdir()) == [Path(archive.relpath).name]


@pytest.mark.timeout(90)
def test_a_task_delivered_twice_exports_once(
    scale_app: Flask, pg_db: Database, spawn_worker: Callable[..., Process]
) -> None:
    archive_dir = Path(scale_app.config["ARCHIVE_DIR"])
    workers = [spawn_worker("one", **SLOW), spawn_worker("two", **SLOW)]
    _user_id, run_id = queue_run(pg_db, "twice@scale.example")
    with scale_app.app_context():
        sent = {run_export.apply_async(args=(run_id,)).id for _ in range(2)}

    def outcomes() -> list[str]:
        """Every finish of either copy, in any worker: under load a copy still exporting when the
        test's 5-second visibility timeout passes is handed out again, and that redelivery finishes
        too ("skipped"), so one task id can finish twice; only one finish may be "delivered"."""
        pattern = re.compile(r"Task lifeboat\.run_export\[([0-9a-f-]+)\] succeeded in [0-9.e-]+s: '(\w+)'")
        return [m.group(2) for w in workers for m in pattern.finditer(w.output()) if m.group(1) in sent]

    wait_until(
        lambda: sent <= set().union(*(task_ids(w, "") for w in workers)) and "delivered" in outcomes(),
        timeout=60,
        what="both copies of the task to finish, one of them with the delivery",
    )
    assert sorted(set(outcomes())) == ["delivered", "skipped"], "\n\n".join(w.output()[-4000:] for w in workers)
    assert outcomes().count("delivered") == 1

    # A late third copy, after the run is over, does nothing either.
    with scale_app.app_context():
        late = run_export.apply_async(args=(run_id,)).id
    wait_until(
        lambda: late in set().union(*(task_ids(w, "skipped") for w in workers)),
        timeout=30,
        what="late copy",
    )

    run = load(pg_db, run_id)
    assert run.state == RunState.DELIVERED and run.attempt == 1
    assert history(pg_db, run_id) == ["queued", "started", "exported", "delivered"]
    (archive,) = archive_rows(pg_db)
    assert zips(archive_dir) == {archive.relpath}
