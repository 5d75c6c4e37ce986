"""A real Celery worker logs each event once, as one JSON line at the event's own level (user trial 9).

Before, Celery's root handler wrote each Lifeboat record a second time as plain text, and its
stderr redirection logged our JSON line again at WARNING: one alert per run for an operator.
"""

from __future__ import annotations

import json
from collections.abc import Callable

import pytest
from flask import Flask

from jobs import get_context
from jobs.worker import dispatch_queued
from store import Database, RunState
from tests.scale.conftest import Process, wait_until
from tests.scale.test_celery import load, queue_run

pytestmark = pytest.mark.scale


@pytest.mark.timeout(90)
def test_a_worker_logs_each_event_once_as_json_at_its_own_level(
    scale_app: Flask, pg_db: Database, spawn_worker: Callable[..., Process]
) -> None:
    worker = spawn_worker("logs")
    _, run_id = queue_run(pg_db, "logs@scale.example")
    assert dispatch_queued(get_context(scale_app)) == 1
    wait_until(lambda: load(pg_db, run_id).state == RunState.DELIVERED, timeout=60, what="the run to finish")
    wait_until(lambda: "succeeded in" in worker.output(), timeout=10, what="Celery's own line for the task")

    output = worker.output()
    started = [line for line in output.splitlines() if "run started" in line]
    assert len(started) == 1, output
    entry = json.loads(started[0])
    assert (entry["level"], entry["logger"], entry["run_id"]) == ("info", "lifeboat.run", run_id)
    assert "WARNING/" not in output and "INFO/" not in output  # neither Celery's plain copy nor its re-logged one
    # Celery's own records are JSON lines too, each once, so a log collector reads one format.
    (succeeded,) = [json.loads(line) for line in output.splitlines() if "succeeded in" in line]
    assert succeeded["level"] == "info" and succeeded["logger"].startswith("celery")
