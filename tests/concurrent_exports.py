"""Many exports at once, by `export-all` and by the embedded pool: shared by the SQLite and PostgreSQL tests.

Why a module of its own: issue 11 asks for the same proof on both databases
(8 users, 3 rounds, every run delivered on its first attempt, no lock error),
so the SQLite test (tests/unit) and the PostgreSQL one (tests/scale) run the
very same scenario against different apps.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import threading
import time
from collections.abc import Sequence

from flask import Flask
from sqlalchemy import func, select

from account.records import Account
from delivery.contract import Delivery, Payload, Receipt
from jobs import dispatch, get_context, run_lifecycle
from jobs.context import JobContext
from jobs.embedded import EmbeddedRuntime
from store import Archive, ExportRun, RunEvent, RunState, User, get_db
from store.accounts import replace_account

USERS = 8
ROUNDS = 3


class MemoryDelivery(Delivery):
    """A destination that keeps what it receives: a delivered run has really been delivered."""

    kind = "memory"

    def __init__(self) -> None:
        self.received: list[str] = []
        self._lock = threading.Lock()

    def deliver(self, payload: Payload) -> Receipt:
        with self._lock:
            self.received.append(payload.user_email)
        return Receipt(location=f"memory://{payload.filename}", detail="kept in memory")


def add_users(app: Flask, account: Account, count: int = USERS) -> list[int]:
    """`count` users, each a copy of `account` under its own address."""
    ids = []
    with get_db(app).session(write=True) as session:
        for i in range(count):
            ids.append(replace_account(session, dataclasses.replace(account, email=f"user{i}@load.example")).id)
    return ids


def with_memory_destination(app: Flask) -> MemoryDelivery:
    """Send every user's archive to one in-memory destination (and slow exports a little).

    The short sleep at each progress step keeps every export open long enough
    for the others' commits (claims, heartbeats, archive rows) to land in the
    middle of it, as they do with real accounts of thousands of records.
    """
    backend = MemoryDelivery()
    ctx = get_context(app)

    def destinations(_session: object, _user: User) -> Sequence[tuple[int | None, Delivery]]:
        return [(None, backend)]

    ctx.destinations = destinations
    ctx.on_progress = lambda _stage, _percent: time.sleep(0.002)
    return backend


def age_archives(app: Flask) -> None:
    """Make every archive two days old, so the next round finds every user without a fresh one."""
    with get_db(app).session(write=True) as session:
        for archive in session.scalars(select(Archive)):
            archive.created_at -= dt.timedelta(days=2)


def lock_errors(app: Flask) -> list[str]:
    """Every run event or run error that mentions a locked database."""
    with get_db(app).session() as session:
        events = session.scalars(select(RunEvent.message).where(RunEvent.message.ilike("%lock%")))
        errors = session.scalars(select(ExportRun.error).where(ExportRun.error.ilike("%lock%")))
        return [*events, *errors]


def runs_by_state_and_attempt(app: Flask) -> dict[tuple[str, int], int]:
    with get_db(app).session() as session:
        rows = session.execute(
            select(ExportRun.state, ExportRun.attempt, func.count()).group_by(ExportRun.state, ExportRun.attempt)
        )
        return {(state, attempt): count for state, attempt, count in rows}


def export_all_rounds(app: Flask, account: Account) -> None:
    """`export-all` with a worker per user, three times: every run delivered on its first attempt."""
    add_users(app, account)
    backend = with_memory_destination(app)
    runner = app.test_cli_runner()
    for round_ in range(1, ROUNDS + 1):
        result = runner.invoke(args=["export-all", "--workers", str(USERS)])
        assert result.exit_code == 0, result.output
        assert f"{USERS} of {USERS} user(s) now have a fresh verified archive" in result.output
        assert runs_by_state_and_attempt(app) == {(RunState.DELIVERED, 1): USERS * round_}
        age_archives(app)
    assert lock_errors(app) == []
    assert len(backend.received) == USERS * ROUNDS


def embedded_pool_rounds(app: Flask, account: Account) -> None:
    """The embedded pool with a worker per user, ticking as `serve` does, three times over."""
    user_ids = add_users(app, account)
    backend = with_memory_destination(app)
    ctx: JobContext = get_context(app)
    pool = EmbeddedRuntime(ctx, workers=USERS)
    stop = threading.Event()

    def ticking() -> None:  # the dispatcher's commits land in the middle of the exports too
        while not stop.wait(0.05):
            now = ctx.clock()
            dispatch.initialise_schedules(ctx.db, now=now)
            dispatch.tick(ctx.db, now=now)
            run_lifecycle.requeue_expired(ctx.db, now=now)

    ticker = threading.Thread(target=ticking, daemon=True)
    ticker.start()
    try:
        for round_ in range(1, ROUNDS + 1):
            for user_id in user_ids:  # everyone presses "Export now" within the same second
                with ctx.db.session(write=True) as session:
                    run_lifecycle.request_run(session, user_id, "manual", now=ctx.clock())
            pool.kick()
            deadline = time.monotonic() + 120
            while _active(app):
                assert time.monotonic() < deadline, runs_by_state_and_attempt(app)
                time.sleep(0.05)
            assert runs_by_state_and_attempt(app) == {(RunState.DELIVERED, 1): USERS * round_}
    finally:
        stop.set()
        ticker.join()
        pool.shutdown(wait=True)
    assert lock_errors(app) == []
    assert len(backend.received) == USERS * ROUNDS


def _active(app: Flask) -> int:
    with get_db(app).session() as session:
        return (
            session.scalar(
                select(func.count())
                .select_from(ExportRun)
                .where(ExportRun.state.in_([s.value for s in run_lifecycle.CLAIMABLE] + ["running"]))
            )
            or 0
        )
