"""A Celery task's claim waits out a database it cannot reach, for a while, then gives up loudly.

Why it matters: a task that failed its claim at once let the worker take the next
message, so a database restart drained the whole queue (tests/scale/test_db_restart.py
proves the waiting keeps the messages there; this proves the wait is bounded).
"""

from __future__ import annotations

import dataclasses
import logging
import socket
import time

import pytest
from flask import Flask
from sqlalchemy.exc import OperationalError

from jobs import get_context
from jobs.worker import claim_when_reachable
from store import Database


def _closed_port() -> int:
    """A loopback port nothing listens on (bound, then released)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def test_a_claim_against_an_unreachable_database_retries_with_growing_pauses_then_raises(
    app: Flask, caplog: pytest.LogCaptureFixture
) -> None:
    url = f"postgresql+psycopg://nobody@127.0.0.1:{_closed_port()}/lifeboat?connect_timeout=2"
    ctx = dataclasses.replace(get_context(app), db=Database(url))
    started = time.monotonic()
    with caplog.at_level(logging.WARNING, logger="lifeboat.worker"), pytest.raises(OperationalError):
        claim_when_reachable(ctx, "0" * 32, "worker-1", patience=1.5)
    waited = time.monotonic() - started
    pauses = [
        getattr(r, "retry_in_seconds", None)
        for r in caplog.records
        if r.getMessage().startswith("database unreachable")
    ]
    assert pauses[:3] == [0.25, 0.5, 1.0][: len(pauses[:3])] and len(pauses) >= 2  # it waited, pausing longer each time
    assert 0.7 <= waited < 5  # and gave up after about its patience, not at once and not never
