"""Two dispatchers, three workers, hundreds of users, a simulated month: one archive per user per period.

How: a fake clock advances in 6-hour steps. At each step two dispatchers,
each with its own engine (as two processes would have), start their tick at
the same instant (a barrier) and race over the same due schedules; then three
workers, each with its own engine and owner name, drain the queue the
dispatchers filled. The queue hands every run out *twice*, as an
at-least-once broker may, so every run is also offered to a second executor.

The month (15 October to 14 November 2026) spans the end of summer time in
Europe (25 October) and in North America (1 November), and the users' local
times include 02:30 (repeated when Berlin falls back) and times near
midnight, so a period key computed differently by two dispatchers would show.
"""

from __future__ import annotations

import datetime as dt
import os
import queue
import threading
from collections import Counter, defaultdict
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from account.sample import SampleSize, generate_account
from delivery.contract import Delivery, Payload, Receipt
from exporters.archive.reader import verify_archive
from jobs import dispatch, run_lifecycle
from jobs.context import JobContext
from jobs.execute import execute_run
from jobs.export import ArchiveInfo, ExportResult, archive_filename
from jobs.schedule import ScheduleSpec, next_run_after, period_key
from store import Archive, Database, ExportRun, RunEvent, RunState, Schedule, User
from store.accounts import Counts, replace_account
from store.archive_files import ArchiveFiles
from store.runs import new_id
from tests.archives import write_archive
from tests.scale.conftest import add_users

pytestmark = pytest.mark.scale

START = dt.datetime(2026, 10, 15, tzinfo=dt.UTC)
STEP = dt.timedelta(hours=6)
LEASE = dt.timedelta(minutes=10)  # in fake-clock time; runs finish within one step
BATCH = 20  # schedules per dispatcher transaction
ZONES = [
    "UTC", "Europe/Berlin", "America/New_York", "Asia/Tokyo", "Australia/Sydney",
    "America/Sao_Paulo", "Asia/Kolkata", "Pacific/Auckland", "America/Los_Angeles",
]  # fmt: skip
THREADS = 2  # executor threads per worker, as `celery worker --pool=threads -c 2`
# 500 users on daily schedules make 15,000 runs in a month: about four minutes on two busy
# cores (each run is 5 transactions, ~20 round trips), too long for the suite. By default
# one user in eight exports daily, three weekly and four monthly (about 2,900 runs, all
# three kinds of period keys); LIFEBOAT_SCALE_ALL_DAILY=1 runs the full daily month.
ALL_DAILY = bool(os.environ.get("LIFEBOAT_SCALE_ALL_DAILY"))
FREQUENCIES = ["daily"] if ALL_DAILY else ["daily"] + ["weekly"] * 3 + ["monthly"] * 4
TIMES = ["02:00", "02:30", "23:45", "00:10", "12:00", "18:30"]
# User i takes ZONES[i % 9], TIMES[i % 6] and FREQUENCIES[i % 8]: every 72 users repeat every
# combination, so 200 users cover each at least twice, in about a minute. The race is the same
# at 500 (LIFEBOAT_SCALE_USERS=500, the size measured when this test was written), only longer.
USERS = 500 if ALL_DAILY else int(os.environ.get("LIFEBOAT_SCALE_USERS", "200"))


class Clock:
    """The simulated time, shared by dispatchers and workers; moved only between steps."""

    def __init__(self, start: dt.datetime) -> None:
        self.now = start

    def __call__(self) -> dt.datetime:
        return self.now


class MemoryDelivery(Delivery):
    """Records every archive delivered (thread-safe): the user's side of "exactly once"."""

    kind = "memory"

    def __init__(self) -> None:
        self.received: list[tuple[str, Path]] = []
        self._lock = threading.Lock()

    def deliver(self, payload: Payload) -> Receipt:
        with self._lock:
            self.received.append((payload.user_email, payload.path))
        return Receipt(location=f"memory://{payload.path.name}")


class Dispatcher:
    """One dispatcher process: its own engine; one pass is what `Dispatcher.tick_once` does
    on the Celery path, with an in-memory queue standing in for Redis.

    Schedules are claimed in small batches (the service's batch is 1,000) until none is
    due, so the two dispatchers interleave and split each step's due schedules between
    them through `FOR UPDATE SKIP LOCKED`, rather than one of them taking everything.
    """

    def __init__(self, url: str, out: queue.Queue[str | None]) -> None:
        self.db = Database(url)
        self.out = out
        self.created = 0

    def tick(self, now: dt.datetime, start_together: threading.Barrier) -> None:
        start_together.wait(timeout=30)
        dispatch.initialise_schedules(self.db, now=now)
        while (result := dispatch.tick(self.db, now=now, limit=BATCH)).due:
            self.created += len(result.created)
        run_lifecycle.requeue_expired(self.db, now=now)
        while ids := run_lifecycle.undispatched(self.db, now=now, redispatch_after=2 * LEASE, limit=BATCH):
            for run_id in ids:
                self.out.put(run_id)
                self.out.put(run_id)  # at-least-once delivery: the same message again


class Worker:
    """One worker process: its own engine and owner names, `threads` executors (`celery -c`)."""

    def __init__(self, name: str, url: str, archive_dir: Path, clock: Clock, backend: Delivery,
                 inbox: queue.Queue[str | None], *, threads: int) -> None:  # fmt: skip
        self.name = name
        self.db = Database(url, pool_size=threads)
        self.ctx = JobContext(
            db=self.db,
            archive_dir=archive_dir,
            lease=LEASE,
            clock=clock,
            destinations=_only(backend),
        )
        self.inbox = inbox
        self.outcomes: Counter[str] = Counter()
        self.errors: list[BaseException] = []
        self._lock = threading.Lock()
        self.threads = [
            threading.Thread(target=self._loop, args=(f"{name}:{i}",), name=f"{name}:{i}", daemon=True)
            for i in range(threads)
        ]

    def _loop(self, owner: str) -> None:
        while True:
            run_id = self.inbox.get()
            try:
                if run_id is None:
                    return
                outcome = str(execute_run(self.ctx, run_id, owner))
                with self._lock:
                    self.outcomes[outcome] += 1
            except BaseException as exc:
                self.errors.append(exc)
            finally:
                self.inbox.task_done()


def _only(backend: Delivery) -> Callable[[Session, User], Sequence[tuple[int | None, Delivery]]]:
    return lambda _session, _user: [(None, backend)]


def _tiny_export(template: Path) -> Callable[..., ExportResult]:
    """Stand-in for `export_user` that copies one small, real, verified archive.

    Why: 15,000 real exports would take minutes on two busy cores, and what this
    test checks is who runs what, not the archive's content (the formats have
    their own tests; `test_full_exports_...` below runs the real exporter). The
    stand-in still puts a complete zip under its final name and returns an
    unsaved `Archive` row for the run to record, as `export_user` does.
    """
    info = verify_archive(template)
    size = template.stat().st_size
    import hashlib

    sha256 = hashlib.sha256(template.read_bytes()).hexdigest()

    def export_user(session: Session, user: User, files: ArchiveFiles, *, now: dt.datetime, **kw: Any) -> ExportResult:
        archive_id = new_id()
        relpath = f"{user.id}/{archive_id}.zip"
        files.put(relpath, template, sha256=sha256, size=size)
        if kw.get("progress") is not None:
            kw["progress"]("verified", 100)
        archive = Archive(
            id=archive_id, user_id=user.id, filename=archive_filename(user, now),
            relpath=relpath,
            sha256=sha256, size=size, created_at=now, verified_at=now,
        )  # fmt: skip
        info_ = ArchiveInfo(relpath, files.local_path(relpath), sha256, size, info)
        return ExportResult(archive, info_, Counts(0, 0, 0, 0, 0))

    return export_user


def _expected_periods(database: Database, end: dt.datetime) -> dict[int, set[str]]:
    """Each user's periods with a run time in (START, end], from the schedule arithmetic."""
    expected: dict[int, set[str]] = {}
    with database.session() as session:
        for schedule in session.scalars(select(Schedule)):
            spec = ScheduleSpec.from_row(schedule)
            fire = next_run_after(spec, START)
            while fire <= end:
                expected.setdefault(schedule.user_id, set()).add(period_key(spec, fire))
                fire = next_run_after(spec, fire)
    return expected


def simulate_month(url: str, archive_dir: Path, *, days: int) -> tuple[MemoryDelivery, list[Worker], list[int]]:
    """Run two dispatchers and three workers from START for `days`; return what they did."""
    clock = Clock(START)
    inbox: queue.Queue[str | None] = queue.Queue()
    backend = MemoryDelivery()
    dispatchers = [Dispatcher(url, inbox) for _ in range(2)]
    workers = [Worker(f"worker{i}", url, archive_dir, clock, backend, inbox, threads=THREADS) for i in range(3)]
    threads = [thread for worker in workers for thread in worker.threads]
    for thread in threads:
        thread.start()
    try:
        with ThreadPoolExecutor(max_workers=2) as pool:
            while clock.now <= START + dt.timedelta(days=days):
                barrier = threading.Barrier(2)
                for future in [pool.submit(d.tick, clock.now, barrier) for d in dispatchers]:
                    future.result()
                inbox.join()  # the workers drained the queue: every run of this step is done
                clock.now += STEP
    finally:
        for _ in threads:
            inbox.put(None)
        for thread in threads:
            thread.join(timeout=30)
        for database in [d.db for d in dispatchers] + [w.db for w in workers]:
            database.dispose()
    return backend, workers, [d.created for d in dispatchers]


def assert_one_archive_per_user_per_period(
    database: Database,
    archive_dir: Path,
    backend: MemoryDelivery,
    workers: list[Worker],
    created: list[int],
    days: int,
) -> int:
    assert [e for w in workers for e in w.errors] == []
    end = START + dt.timedelta(days=days)
    expected = _expected_periods(database, end)
    with database.session() as session:
        rows = session.execute(
            select(
                ExportRun.user_id,
                ExportRun.period_key,
                ExportRun.state,
                ExportRun.attempt,
                ExportRun.archive_id,
            )
        ).all()
        started = Counter(session.scalars(select(RunEvent.run_id).where(RunEvent.kind == "started")))
        archives = {a.id: a for a in session.scalars(select(Archive))}
        emails = {user_id: email for user_id, email in session.execute(select(User.id, User.email))}
    # Per user: exactly the periods the schedule has in the month, no more, no fewer.
    found: dict[int, list[str]] = defaultdict(list)
    for row in rows:
        found[row.user_id].append(row.period_key)
    assert {user: sorted(keys) for user, keys in found.items()} == {
        user: sorted(keys) for user, keys in expected.items()
    }
    total = sum(len(keys) for keys in expected.values())
    assert len(rows) == sum(created) == total
    # Every run delivered on its first attempt, with an archive of its own ...
    assert Counter((r.state, r.attempt) for r in rows) == {(RunState.DELIVERED, 1): total}
    assert len({r.archive_id for r in rows}) == total and set(archives) == {r.archive_id for r in rows}
    # ... and executed once: one start each, every second copy of a message skipped.
    assert len(started) == total and set(started.values()) == {1}
    outcomes = sum((w.outcomes for w in workers), Counter())
    assert outcomes == {RunState.DELIVERED: total, "skipped": total}
    # The users received one archive per period; every zip on disk is a recorded archive.
    assert len({path for _, path in backend.received}) == len(backend.received) == total
    per_user = Counter(email for email, _ in backend.received)
    assert per_user == {emails[user]: len(keys) for user, keys in expected.items()}
    on_disk = {p.relative_to(archive_dir).as_posix() for p in archive_dir.glob("*/*.zip")}
    assert on_disk == {a.relpath for a in archives.values()}
    return total


@pytest.mark.timeout(900 if ALL_DAILY else 280)
def test_two_dispatchers_and_three_workers_deliver_one_archive_per_user_per_period_for_a_month(
    pg_db: Database, pg_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    template_dir = tmp_path / "template"
    template_dir.mkdir()
    write_archive(template_dir, "t.zip", [], {"user": "t@scale.example"}, START)
    monkeypatch.setattr("jobs.execute.export_user", _tiny_export(template_dir / "t.zip"))
    archive_dir = tmp_path / "archives"
    add_users(pg_db, USERS, zones=ZONES, times=TIMES, frequencies=FREQUENCIES)
    backend, workers, created = simulate_month(pg_url, archive_dir, days=30)
    total = assert_one_archive_per_user_per_period(pg_db, archive_dir, backend, workers, created, days=30)
    assert all(created)  # both dispatchers won some of the schedules they raced for
    daily = sum(1 for i in range(USERS) if FREQUENCIES[i % len(FREQUENCIES)] == "daily")
    assert total >= daily * 29  # the month really ran: daily users about every day


def test_full_exports_by_racing_dispatchers_and_workers_are_one_per_user_per_period(
    pg_db: Database, pg_url: str, tmp_path: Path
) -> None:
    """The same month, shorter and smaller, with the real exporter writing every archive."""
    archive_dir = tmp_path / "archives"
    ids = add_users(pg_db, 30, zones=ZONES, times=TIMES, frequencies=["daily", "daily", "weekly"])
    tiny = SampleSize(contacts=2, events=2, notes=1, calendars=1, photo_ratio=0, attachment_ratio=0)
    with pg_db.session(write=True) as session:
        for i in range(len(ids)):
            replace_account(session, generate_account(f"user{i:05d}@scale.example", tiny, seed=i))
    backend, workers, created = simulate_month(pg_url, archive_dir, days=5)
    total = assert_one_archive_per_user_per_period(pg_db, archive_dir, backend, workers, created, days=5)
    with pg_db.session() as session:
        assert session.scalar(select(func.min(Archive.contacts))) == 2  # real content, not a stand-in
    for path in archive_dir.glob("*/*.zip"):
        verify_archive(path)
    assert total >= 20 * 4 + 10
