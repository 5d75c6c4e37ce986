"""Runs on the embedded default (SQLite): claims, retries, leases, schedules, no double runs."""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Sequence
from pathlib import Path

import pytest
from flask import Flask
from sqlalchemy import func, select
from sqlalchemy.orm import Session

import jobs.execute
import jobs.export
from account.records import Account
from delivery.contract import Delivery, Payload, Receipt
from errors import DeliveryError
from jobs import dispatch, export_split, get_context, run_lifecycle
from jobs.context import JobContext
from jobs.execute import execute_run
from store import Archive, Database, ExportRun, RunEvent, RunState, Schedule, User
from store.accounts import replace_account
from tests.archives import write_archive


class Clock:
    def __init__(self, start: dt.datetime) -> None:
        self.now = start

    def __call__(self) -> dt.datetime:
        return self.now

    def advance(self, **kwargs: float) -> None:
        self.now += dt.timedelta(**kwargs)


class FlakyDelivery(Delivery):
    """Fails with the given errors first, then succeeds; records what it received."""

    kind = "memory"

    def __init__(self, *errors: DeliveryError) -> None:
        self.errors = list(errors)
        self.received: list[Payload] = []

    def deliver(self, payload: Payload) -> Receipt:
        if self.errors:
            raise self.errors.pop(0)
        self.received.append(payload)
        return Receipt(location="memory://archive", detail="kept in memory")


@pytest.fixture
def clock(now: dt.datetime) -> Clock:
    return Clock(now)


@pytest.fixture
def ctx(app: Flask, clock: Clock) -> JobContext:
    context = get_context(app)
    context.clock = clock
    return context


@pytest.fixture
def user_id(db: Database, alice: Account) -> int:
    with db.session(write=True) as session:
        return replace_account(session, alice).id


def _with(ctx: JobContext, backend: Delivery) -> JobContext:
    def destinations(_session: Session, _user: User) -> Sequence[tuple[int | None, Delivery]]:
        return [(None, backend)]

    ctx.destinations = destinations
    return ctx


def _queue(db: Database, user_id: int, now: dt.datetime) -> str:
    with db.session(write=True) as session:
        run, created = run_lifecycle.request_run(session, user_id, "manual", now=now)
        assert created
        return run.id


def _history(db: Database, run_id: str) -> list[str]:
    with db.session() as session:
        return list(session.scalars(select(RunEvent.kind).where(RunEvent.run_id == run_id).order_by(RunEvent.id)))


def test_a_run_exports_verifies_and_delivers(ctx: JobContext, db: Database, user_id: int, clock: Clock) -> None:
    backend = FlakyDelivery()
    run_id = _queue(db, user_id, clock())
    assert execute_run(_with(ctx, backend), run_id, "test") == RunState.DELIVERED
    with db.session() as session:
        run = session.get(ExportRun, run_id)
        assert run is not None and run.state == RunState.DELIVERED and run.progress == 100
        assert run.archive is not None and (ctx.archive_dir / run.archive.relpath).is_file()
    assert backend.received[0].sha256 == run.archive.sha256
    kinds = [kind for kind in _history(db, run_id) if kind != "stage"]
    assert kinds == ["queued", "started", "exported", "destination", "delivered"]
    with db.session() as session:
        stages = session.scalars(
            select(RunEvent.message).where(RunEvent.run_id == run_id, RunEvent.kind == "stage").order_by(RunEvent.id)
        )
        assert list(stages) == ["contacts", "calendars", "notes", "readback", "verified", "deliver"]


def test_a_run_with_nothing_to_send_records_its_archive_and_history_in_its_finish(
    ctx: JobContext, db: Database, user_id: int, clock: Clock
) -> None:
    run_id = _queue(db, user_id, clock())
    assert execute_run(ctx, run_id, "test") == RunState.DELIVERED
    with db.session() as session:
        run = session.get(ExportRun, run_id)
        assert run is not None and run.state == RunState.DELIVERED and run.archive is not None
        assert (ctx.archive_dir / run.archive.relpath).is_file()
        lines = list(
            session.execute(
                select(RunEvent.kind, RunEvent.message).where(RunEvent.run_id == run_id).order_by(RunEvent.id)
            )
        )
    assert [kind for kind, _ in lines if kind != "stage"] == ["queued", "started", "exported", "delivered"]
    assert [message for kind, message in lines if kind == "stage"] == [
        "contacts",
        "calendars",
        "notes",
        "readback",
        "verified",
        "deliver",
    ]
    assert lines[-1][1].startswith("Archive kept on Lifeboat's disk")


def test_a_run_taken_over_before_its_finish_leaves_no_archive_row_and_no_zip(
    ctx: JobContext, db: Database, user_id: int, clock: Clock
) -> None:
    run_id = _queue(db, user_id, clock())

    def taken_over(stage: str, _percent: int) -> None:
        if stage == "deliver":  # the export is verified, its row not written: another worker takes the run
            with db.session(write=True) as session:
                run = session.get(ExportRun, run_id)
                assert run is not None
                run.lease_owner = "another-worker"

    ctx.on_progress = taken_over
    assert execute_run(ctx, run_id, "test") == "lost"
    with db.session() as session:
        assert session.scalar(select(func.count()).select_from(Archive)) == 0
        run = session.get(ExportRun, run_id)
        assert run is not None and run.state == RunState.RUNNING and run.archive_id is None
    assert [p for p in ctx.archive_dir.rglob("*") if p.is_file()] == []


@pytest.mark.parametrize("how", ["cancelled", "taken over"])
def test_a_run_cancelled_mid_export_is_logged_as_cancelled_and_only_a_take_over_as_a_lost_lease(
    ctx: JobContext, db: Database, user_id: int, clock: Clock, monkeypatch: pytest.MonkeyPatch, how: str
) -> None:
    """What the executor logs when its heartbeat finds the run no longer its own (`LeaseLost`)."""
    run_id = _queue(db, user_id, clock())
    assert runs_claim(db, run_id, clock())
    if how == "cancelled":
        assert run_lifecycle.cancel(db, run_id, user_id, now=clock()) == RunState.CANCELLED
    else:
        with db.session(write=True) as session:
            run = session.get(ExportRun, run_id)
            assert run is not None
            run.lease_owner = "another-worker"
    said: list[tuple[int, str]] = []

    class Said:  # the execution's log, whatever the app's logging configuration does with it
        def info(self, message: str, *args: object, **kwargs: object) -> None:
            said.append((logging.INFO, message))

        def warning(self, message: str, *args: object, **kwargs: object) -> None:
            said.append((logging.WARNING, message))

    monkeypatch.setattr(jobs.execute, "log", Said())
    jobs.execute._log_lost(ctx, run_id)
    if how == "cancelled":
        assert said == [(logging.INFO, "run cancelled by its user; its export stopped")]
    else:
        assert said == [(logging.WARNING, "run lease lost; another worker owns it now")]


def runs_claim(db: Database, run_id: str, now: dt.datetime) -> bool:
    return run_lifecycle.claim(db, run_id, "test", now=now, lease=dt.timedelta(minutes=5))


def test_only_one_active_run_per_user(db: Database, user_id: int, clock: Clock) -> None:
    first = _queue(db, user_id, clock())
    with db.session(write=True) as session:
        again, created = run_lifecycle.request_run(session, user_id, "manual", now=clock())
    assert not created and again.id == first


def test_a_second_executor_cannot_claim_a_running_run(ctx: JobContext, db: Database, user_id: int) -> None:
    run_id = _queue(db, user_id, ctx.clock())
    assert run_lifecycle.claim(db, run_id, "one", now=ctx.clock(), lease=ctx.lease)
    assert execute_run(ctx, run_id, "two") == "skipped"


def test_transient_failures_retry_with_backoff_and_reuse_the_archive(
    ctx: JobContext, db: Database, user_id: int, clock: Clock
) -> None:
    backend = FlakyDelivery(DeliveryError("timeout", permanent=False, user_message="The bucket timed out."))
    run_id = _queue(db, user_id, clock())
    assert execute_run(_with(ctx, backend), run_id, "test") == RunState.RETRYING
    assert execute_run(ctx, run_id, "test") == "skipped"  # not before the backoff
    clock.advance(seconds=ctx.policy.delay(1).total_seconds())
    assert execute_run(ctx, run_id, "test") == RunState.DELIVERED
    with db.session() as session:
        assert session.scalar(select(func.count()).select_from(Archive)) == 1  # exported once
        run = session.get(ExportRun, run_id)
        assert run is not None and run.attempt == 2
    assert "retry" in _history(db, run_id)


def test_a_permanent_failure_stops_and_tells_the_user(
    ctx: JobContext, db: Database, user_id: int, clock: Clock
) -> None:
    notified: list[str] = []
    ctx.notify_failure = lambda user, run: notified.append(f"{user.email}: {run.error}")
    backend = FlakyDelivery(DeliveryError("403", permanent=True, user_message="Access denied: fix the key."))
    run_id = _queue(db, user_id, clock())
    assert execute_run(_with(ctx, backend), run_id, "test") == RunState.FAILED
    assert len(notified) == 1 and notified[0].startswith("alice@example.com: Access denied: fix the key. ")
    assert "will not retry" in notified[0] and "Export now" in notified[0]


def test_retries_stop_after_the_last_attempt(ctx: JobContext, db: Database, user_id: int, clock: Clock) -> None:
    error = DeliveryError("slow", permanent=False, user_message="Timed out.")
    backend = FlakyDelivery(*[error] * 10)
    _with(ctx, backend)
    run_id = _queue(db, user_id, clock())
    outcomes = []
    for attempt in range(1, ctx.policy.max_attempts + 1):
        outcomes.append(execute_run(ctx, run_id, "test"))
        clock.advance(seconds=ctx.policy.delay(attempt).total_seconds())
    assert outcomes == [RunState.RETRYING] * (ctx.policy.max_attempts - 1) + [RunState.FAILED]


def test_a_run_whose_worker_died_is_requeued_and_completed(
    ctx: JobContext, db: Database, user_id: int, clock: Clock
) -> None:
    run_id = _queue(db, user_id, clock())
    assert run_lifecycle.claim(db, run_id, "dead-worker", now=clock(), lease=ctx.lease)
    assert run_lifecycle.requeue_expired(db, now=clock()) == []  # lease still valid
    clock.advance(seconds=ctx.lease.total_seconds() + 1)
    assert run_lifecycle.requeue_expired(db, now=clock()) == [run_id]
    assert execute_run(ctx, run_id, "live-worker") == RunState.DELIVERED
    # The dead worker's late finish is refused: the run is no longer its own.
    assert not run_lifecycle.finish_delivered(db, run_id, "dead-worker", now=clock(), message="late")


def test_an_unclaimed_run_is_resent_with_a_doubling_wait_and_a_retry_is_sent_at_once(
    ctx: JobContext, db: Database, user_id: int, clock: Clock
) -> None:
    run_id = _queue(db, user_id, clock.now)
    base = dt.timedelta(minutes=4)
    sent: list[float] = []
    start = clock.now
    for _ in range(8 * 60):  # a backlog: nobody claims the run for eight hours
        if run_lifecycle.undispatched(db, now=clock.now, redispatch_after=base) == [run_id]:
            sent.append((clock.now - start) / base)
        clock.advance(minutes=1)
    # sent at once, then after 1, 2, 4, 8, 16 waits, then every 16 (the cap): not 120 times
    assert sent == [0, 1, 3, 7, 15, 31, 47, 63, 79, 95, 111]
    # a failed attempt resets the wait: its retry is sent as soon as it is due
    assert run_lifecycle.claim(db, run_id, "worker-1", now=clock.now, lease=ctx.lease)
    state = run_lifecycle.finish_failed_attempt(
        db, run_id, "worker-1", now=clock.now, error="Boom.", permanent=False, policy=ctx.policy
    )
    assert state == RunState.RETRYING
    with db.session() as session:
        due = session.get(ExportRun, run_id)
        assert due is not None and due.redispatch_at is None
        clock.now = due.not_before
    assert run_lifecycle.undispatched(db, now=clock.now, redispatch_after=base) == [run_id]


def _schedule(db: Database, user_id: int, **fields: object) -> None:
    with db.session(write=True) as session:
        session.add(
            Schedule(
                user_id=user_id,
                frequency="daily",
                time_of_day="02:00",
                timezone="Europe/Berlin",
                weekday=0,
                day_of_month=1,
                enabled=True,
                **fields,
            )
        )


def test_two_dispatchers_create_one_run_per_period(db: Database, user_id: int, clock: Clock) -> None:
    _schedule(db, user_id, next_run_at=clock() - dt.timedelta(minutes=1))
    first = dispatch.tick(db, now=clock())
    # A second dispatcher that saw the same due row (before the first moved it) creates nothing.
    with db.session(write=True) as session:
        session.get(Schedule, 1).next_run_at = clock() - dt.timedelta(minutes=1)  # type: ignore[union-attr]  # schedule 1 exists
    second = dispatch.tick(db, now=clock())
    assert len(first.created) == 1 and second.created == []
    assert "folded" not in _history(db, first.created[0])  # the period has its run: nothing to note


def test_a_period_due_while_a_run_is_active_is_noted_in_that_runs_history(
    db: Database, user_id: int, clock: Clock
) -> None:
    manual = _queue(db, user_id, clock())
    _schedule(db, user_id, next_run_at=clock() - dt.timedelta(minutes=1))
    result = dispatch.tick(db, now=clock())
    assert result.due == 1 and result.created == []  # one active run per user
    assert _history(db, manual)[-1] == "folded"
    with db.session() as session:
        message = session.scalars(select(RunEvent.message).where(RunEvent.kind == "folded")).one()
        assert "scheduled export for 20" in message and "still in progress" in message
    with db.session() as session:
        assert session.scalar(select(func.count()).select_from(ExportRun)) == 1


def test_a_week_of_downtime_gives_one_catch_up_run(ctx: JobContext, db: Database, user_id: int, clock: Clock) -> None:
    _schedule(db, user_id)
    assert dispatch.initialise_schedules(db, now=clock()) == 1
    clock.advance(days=7)
    result = dispatch.tick(db, now=clock())
    assert len(result.created) == 1
    assert execute_run(ctx, result.created[0], "test") == RunState.DELIVERED
    assert dispatch.tick(db, now=clock()).created == []
    with db.session() as session:
        schedule = session.scalar(select(Schedule))
        assert schedule is not None and schedule.next_run_at is not None and schedule.next_run_at > clock()


def test_housekeeping_removes_partial_files_but_keeps_archives(
    ctx: JobContext, db: Database, user_id: int, clock: Clock
) -> None:
    from jobs.housekeeping import run_all

    run_id = _queue(db, user_id, clock())
    execute_run(ctx, run_id, "test")
    partial = ctx.archive_dir / str(user_id) / ".x.zip.partial-abc"
    partial.write_bytes(b"half an archive")
    import os

    old = (clock() - dt.timedelta(days=1)).timestamp()
    os.utime(partial, (old, old))
    result = run_all(ctx, now=clock() + dt.timedelta(days=400))
    assert result["leftovers"] == 1 and not partial.exists()
    assert result["expired"] == 0  # the newest verified archive is never deleted
    assert len(list(Path(ctx.archive_dir).glob("*/*.zip"))) == 1


def test_housekeeping_removes_a_crashed_runs_zip_but_not_another_databases_in_the_same_folder(
    ctx: JobContext, db: Database, user_id: int, clock: Clock
) -> None:
    """An instance switched to another database shares `archives/`: that database's zips are unknown here too."""
    import os
    import shutil

    from jobs.housekeeping import remove_leftovers

    run_id = _queue(db, user_id, clock())
    execute_run(ctx, run_id, "test")
    (ours,) = Path(ctx.archive_dir).glob(f"{user_id}/*.zip")
    crashed = ours.with_name("01crashedbeforeitsrowwascommitted.zip")  # this user's, no row: a crash's leftover
    shutil.copyfile(ours, crashed)
    other_user = Path(ctx.archive_dir) / str(user_id + 1)  # the other database's user 2, unknown here
    other_user.mkdir()
    theirs = other_user / "01fromtheotherdatabase.zip"
    shutil.copyfile(ours, theirs)
    not_ours = ours.with_name("01sameuseridotherperson.zip")  # the same folder, another database's user 1
    write_archive(not_ours.parent, not_ours.name, [], {"user": "someone.else@example.com"}, clock())
    old = (clock() - dt.timedelta(days=1)).timestamp()
    for path in (crashed, theirs, not_ours):
        os.utime(path, (old, old))
    assert remove_leftovers(db, ctx.archive_dir, now=clock(), older_than=dt.timedelta(hours=1)) == 1
    assert not crashed.exists() and theirs.exists() and not_ours.exists() and ours.exists()


def test_housekeeping_removes_the_export_cache_of_a_user_idle_for_45_days_and_keeps_the_rest(
    ctx: JobContext, db: Database, user_id: int, clock: Clock
) -> None:
    import os

    from jobs.housekeeping import run_all

    execute_run(ctx, _queue(db, user_id, clock()), "test")
    own = ctx.export_cache_dir / str(user_id)
    assert any(own.iterdir()), "the export left its item cache"
    idle = ctx.export_cache_dir / "999"
    idle.mkdir()
    (idle / "items.sqlite3").write_bytes(b"x")
    stranger = ctx.export_cache_dir / "notes.txt"
    stranger.write_text("not a cache")
    old = (clock() - dt.timedelta(days=46)).timestamp()
    os.utime(idle / "items.sqlite3", (old, old))
    result = run_all(ctx, now=clock())
    assert result["idle_caches"] == 1 and not idle.exists()
    assert own.exists() and stranger.exists()


def test_a_split_export_whose_second_process_dies_retries_and_says_why_without_a_traceback(
    ctx: JobContext,
    db: Database,
    user_id: int,
    clock: Clock,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    monkeypatch.setattr(jobs.export, "processes_for", lambda *_args, **_kwargs: 2)
    monkeypatch.setattr(export_split, "WORKER", "tests.formats.dying_check_worker")
    monkeypatch.setenv("DYING_CHECK_WORKER", "kill")
    run_id = _queue(db, user_id, clock())
    assert execute_run(ctx, run_id, "test") == RunState.RETRYING
    with db.session() as session:
        run = session.get(ExportRun, run_id)
        assert run is not None and run.error is not None
        assert run.error.startswith("The calendars could not be exported: the second process was killed by SIGKILL")
        assert "unexpectedly" not in run.error and "run the export again" not in run.error  # it retries by itself
    assert not [r for r in caplog.records if r.exc_info], "no traceback is logged for a passing condition"
    monkeypatch.undo()
    clock.advance(seconds=ctx.policy.delay(1).total_seconds())
    assert execute_run(ctx, run_id, "test") == RunState.DELIVERED
