"""SQLite (the embedded default) with many writers: exports never fail because something else committed.

In WAL mode a deferred transaction that has read cannot become a writer once
another connection has committed: SQLite answers "database is locked" at once,
whatever busy_timeout says. These tests commit from other connections in the
middle of exports (other exports, claims, ticks, the run's own heartbeat).
"""

from __future__ import annotations

import datetime as dt
import time

import pytest
from flask import Flask
from sqlalchemy import select, update
from sqlalchemy.exc import OperationalError

from account.records import Account
from jobs import get_context, run_lifecycle
from jobs.context import JobContext
from jobs.execute import execute_run
from store import Database, ExportRun, RunEvent, RunState, User
from store.accounts import replace_account
from store.base import utcnow
from tests.concurrent_exports import embedded_pool_rounds, export_all_rounds


@pytest.fixture
def ctx(app: Flask) -> JobContext:
    return get_context(app)


def _queue(db: Database, account: Account) -> tuple[int, str]:
    with db.session(write=True) as session:
        user = replace_account(session, account)
        run, _ = run_lifecycle.request_run(session, user.id, "manual", now=utcnow())
        return user.id, run.id


def _run(db: Database, run_id: str) -> ExportRun:
    with db.session() as session:
        run = session.get(ExportRun, run_id)
        assert run is not None
        return run


def test_export_all_delivers_eight_users_at_once_on_the_first_attempt_three_rounds(app: Flask, alice: Account) -> None:
    export_all_rounds(app, alice)


def test_the_embedded_pool_delivers_eight_users_at_once_on_the_first_attempt_three_rounds(
    app: Flask, alice: Account
) -> None:
    embedded_pool_rounds(app, alice)


def test_an_export_survives_another_connection_committing_in_the_middle(
    ctx: JobContext, db: Database, alice: Account
) -> None:
    _, run_id = _queue(db, alice)
    with db.session(write=True) as session:
        other = replace_account(session, alice.__class__(**{**alice.__dict__, "email": "bob@example.com"}))
        other_id = other.id
    commits: list[str] = []

    def someone_else_commits(stage: str, _percent: int) -> None:
        if stage == "calendars" and not commits:  # halfway through the export's reading
            with db.session(write=True) as session:
                second, _ = run_lifecycle.request_run(session, other_id, "manual", now=utcnow())
                commits.append(second.id)

    ctx.on_progress = someone_else_commits
    assert execute_run(ctx, run_id, "worker") == RunState.DELIVERED
    assert commits, "the other connection never committed during the export"
    run = _run(db, run_id)
    assert run.attempt == 1 and run.archive_id is not None


def test_a_heartbeat_committing_during_a_long_export_does_not_break_it(
    ctx: JobContext, db: Database, alice: Account
) -> None:
    ctx.lease = dt.timedelta(seconds=0.8)  # the heartbeat commits every 0.2 s
    _, run_id = _queue(db, alice)
    seen: list[int | None] = []  # the progress the heartbeat committed, as another connection reads it

    def slow(_stage: str, _percent: int) -> None:
        time.sleep(0.1)
        with db.session() as session:
            seen.append(session.scalar(select(ExportRun.progress).where(ExportRun.id == run_id)))

    ctx.on_progress = slow
    assert execute_run(ctx, run_id, "worker") == RunState.DELIVERED
    assert len(set(seen)) >= 3, f"the heartbeat did not commit during the export: {seen}"
    run = _run(db, run_id)
    assert run.attempt == 1 and run.error is None


def test_a_write_in_a_read_session_fails_at_once_instead_of_sometimes_in_production(db: Database) -> None:
    with pytest.raises(OperationalError, match=r"readonly database"), db.session() as session:
        session.add(User(email="nobody@example.com"))
        session.flush()


def test_a_write_session_can_write(db: Database) -> None:
    with db.session(write=True) as session:
        session.add(User(email="somebody@example.com"))
    with db.session() as session:
        assert session.scalar(select(User.email)) == "somebody@example.com"


def test_a_run_that_failed_for_good_does_not_promise_a_retry(ctx: JobContext, db: Database, alice: Account) -> None:
    _, run_id = _queue(db, alice)
    with db.session(write=True) as session:
        session.execute(update(ExportRun).where(ExportRun.id == run_id).values(max_attempts=1))

    def crash(_stage: str, _percent: int) -> None:
        raise RuntimeError("disk on fire")

    ctx.on_progress = crash
    assert execute_run(ctx, run_id, "worker") == RunState.FAILED
    run = _run(db, run_id)
    assert run.error is not None and "will retry" not in run.error.lower()
    assert "export now" in run.error.lower() or "try again" in run.error.lower()
    with db.session() as session:
        failed = session.scalars(select(RunEvent.message).where(RunEvent.kind == "failed")).one()
    assert "will retry" not in failed.lower()


def test_a_run_that_will_be_retried_says_so(ctx: JobContext, db: Database, alice: Account) -> None:
    _, run_id = _queue(db, alice)

    def crash(_stage: str, _percent: int) -> None:
        raise RuntimeError("disk on fire")

    ctx.on_progress = crash
    assert execute_run(ctx, run_id, "worker") == RunState.RETRYING
    run = _run(db, run_id)
    assert run.error is not None and "will try again in" in run.error.lower()
