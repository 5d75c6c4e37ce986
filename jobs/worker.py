"""Celery for the scale-out deployment (workers start with `celery -A make_celery worker`).

Why the task is this thin: it takes only a run id, and all state lives in the
run's row. Redelivery (late acks, a killed worker) and duplicate messages are
expected; the run's claim in the database makes execution exactly-once, and
a task that cannot claim its run simply returns.
"""

from __future__ import annotations

import datetime as dt
import logging
import os
import socket
import time

from celery import Celery, Task, shared_task
from celery.signals import setup_logging
from flask import Flask
from sqlalchemy.exc import InterfaceError, OperationalError

import logs
from jobs import get_context
from jobs import run_lifecycle as runs
from jobs.context import JobContext
from jobs.execute import run_claimed
from jobs.run_lifecycle import undispatched

log = logging.getLogger("lifeboat.worker")
# How long a task waits for an unreachable database before it gives its message up
# (the dispatcher sends the run again later), and the longest pause between tries.
DATABASE_PATIENCE = 60.0
_LONGEST_PAUSE = 4.0


def celery_init_app(app: Flask) -> Celery:
    class FlaskTask(Task):
        def __call__(self, *args: object, **kwargs: object) -> object:
            with app.app_context():
                return self.run(*args, **kwargs)

    celery = Celery(app.name, task_cls=FlaskTask)
    visibility = app.config["CELERY_VISIBILITY_TIMEOUT"]
    celery.conf.update(
        broker_url=app.config["CELERY_BROKER_URL"],
        task_ignore_result=True,
        task_acks_late=True,  # a task is acknowledged only once it finished ...
        task_reject_on_worker_lost=True,  # ... and redelivered if its worker died
        worker_prefetch_multiplier=1,
        broker_connection_retry_on_startup=True,
        broker_transport_options={
            "visibility_timeout": visibility,
            # Workers look for a dead worker's unacknowledged tasks every interval x throttle
            # seconds; kombu 5.7's defaults (10 s x 10) add up to 100 s after the timeout. Sweep
            # every tenth of the timeout instead (1 to 10 s; one cheap ZRANGE per worker).
            "unacked_restore_interval": max(1, min(10, visibility // 10)),
            "unacked_restore_throttle": 1,
        },
        task_default_queue="lifeboat-exports",
    )
    celery.set_default()
    app.extensions["celery"] = celery
    return celery


@shared_task(name="lifeboat.run_export", ignore_result=True)
def run_export(run_id: str) -> str:
    owner = f"celery:{socket.gethostname()}:{os.getpid()}:{run_export.request.id}"
    ctx = get_context()
    if not claim_when_reachable(ctx, run_id, owner):
        return "skipped"
    return run_claimed(ctx, run_id, owner)


def claim_when_reachable(ctx: JobContext, run_id: str, owner: str, *, patience: float = DATABASE_PATIENCE) -> bool:
    """Claim the run, waiting (up to `patience` seconds) while the database cannot be reached.

    Why: a worker takes its next message as soon as a task returns. When PostgreSQL
    restarted, every queued task failed its claim within a second and its message was
    acknowledged and gone: a 0.6 s restart drained 15 messages from the queue in a test
    (tests/scale/test_db_restart.py), and each run then waited for the dispatcher to send
    it again, a wait that doubles while a run sits in a backlog (up to 16x twice the
    lease: minutes). Waiting here keeps the other messages in the broker (each thread
    holds one) until the database is back. After `patience` the error is raised as before.
    """
    pause = 0.25
    deadline = time.monotonic() + patience
    while True:
        try:
            return runs.claim(ctx.db, run_id, owner, now=ctx.clock(), lease=ctx.lease)
        except (OperationalError, InterfaceError) as exc:
            if time.monotonic() + pause > deadline:
                raise
            log.warning(
                "database unreachable; waiting to claim the run",
                extra={"run_id": run_id, "retry_in_seconds": pause, "error": str(exc.orig or exc).strip()},
            )
            time.sleep(pause)
            pause = min(pause * 2, _LONGEST_PAUSE)


def dispatch_queued(ctx: JobContext) -> int:
    """Hand due runs to the queue: new ones, retries whose wait is over, and lost messages."""
    ids = undispatched(ctx.db, now=ctx.clock(), redispatch_after=dt.timedelta(seconds=ctx.lease.total_seconds() * 2))
    for run_id in ids:
        run_export.apply_async(args=(run_id,))
    return len(ids)


def worker_celery(flask_app: Flask) -> Celery:
    """The Celery app a worker process runs, from a built Flask app (see `make_celery.py`).

    Why not built here: building the Flask app is `app.py`'s job, and `jobs`
    never imports `app` (that was a cycle app -> jobs -> app).
    """
    if "celery" not in flask_app.extensions:
        raise RuntimeError("set LIFEBOAT_CELERY_BROKER_URL (e.g. redis://127.0.0.1:6379/0) to run workers")
    _slow_exports_for_tests(flask_app)
    # A receiver here means Celery leaves logging to us: see `logs.configure_worker`.
    setup_logging.connect(_log_once, weak=False)
    celery: Celery = flask_app.extensions["celery"]
    return celery


def _log_once(loglevel: int | str | None = None, **_: object) -> None:
    """Celery's `setup_logging` signal: every record once, as a JSON line at its own level."""
    logs.configure_worker(loglevel or logging.INFO)


def _slow_exports_for_tests(flask_app: Flask) -> None:
    """Test-only knob: `LIFEBOAT_TEST_EXPORT_DELAY_MS` sleeps at every progress step of an export.

    Why: the scale tests kill a worker process mid-export and must find it
    there reliably; a tiny account exports in milliseconds. Unset or 0 (the
    default) leaves the context untouched.
    """
    delay = flask_app.config["TEST_EXPORT_DELAY_MS"] / 1000
    if delay > 0:
        get_context(flask_app).on_progress = lambda _stage, _percent: time.sleep(delay)
