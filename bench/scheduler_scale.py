"""Benchmark: the dispatcher at 100,000 and 1,000,000 schedules on PostgreSQL; export throughput.

Why: the scale-out deployment promises that a dispatcher tick stays cheap however
many users there are (one indexed query on `next_run_at`), that a burst of due
schedules turns into queued runs quickly, and that a few worker processes keep up
with typical accounts. Targets (issue 15), on this 2-core machine:

- a tick that finds nothing due: at most 5 ms (median of 20);
- turning 1,000 due schedules into 1,000 queued runs (one `dispatch.tick`) at
  1,000,000 schedules: at most 100 ms (median of 5, the rows reset between rounds);
- typical accounts (`account.sample.TYPICAL`: 200 contacts, 1,000 events, 100 notes)
  exported per minute, archives on local disk: at least 1,000 on PostgreSQL with 2
  Celery workers, and the same order on the embedded SQLite default.

Users, schedules and one delivered run per user (the steady state: everyone has
been exported before) are bulk-loaded with COPY into a database of its own,
`lifeboat_bench_<random>`, dropped at the end. Schedules are daily, weekly and
monthly in several zones, with next run times spread over the coming day.

Each due tick's wall time, this process's CPU time, the database backends' CPU
time and the WAL PostgreSQL wrote for it are printed per round: the wall time
moves with whatever else the machine runs, CPU and WAL much less. Right after the
bulk load a checkpoint is usually in progress, so nearly every page a tick dirties
goes to the WAL as a full-page image; at 1,000,000 schedules that WAL volume is
most of the tick's database time.

Exports run in interleaved rounds of three deployments: real Celery workers
(`celery -A make_celery worker --pool=solo`, one per core) on PostgreSQL, fed by
`jobs.worker.dispatch_queued` from this process; the embedded default
(`EmbeddedRuntime`, export threads in one process, SQLite); and the embedded
runtime with export processes (EMBEDDED_PROCESSES). Each user's next run is queued
as soon as the last one finished, as "Export now" would. Each deployment runs in two
modes: "repeat" (the steady state of periodic runs: every user was exported before and
nothing changed, so the per-user export cache serves unchanged items) and "first" (each
user's export cache is deleted before the run is queued: a first export of an account
already in the store). Besides exports per
minute (wall), each round gives the CPU per export of everything that executed it
(Celery workers and their PostgreSQL backends, read from /proc: Linux only; or the
embedded process and its children), which a shared machine disturbs far less.

    .venv/bin/python bench/scheduler_scale.py [--sizes 100000,1000000] [--rounds 3]
        [--export-seconds 30] [--export-workers 2] [--export-modes repeat,first]
        [--deployments postgres,threads,processes] [--code CHECKOUT] [--profile]

`--sizes 0` skips the dispatcher, `--rounds 0` the exports; `--code /work/main`
measures another checkout's code with this bench (before/after in one session).
"""

from __future__ import annotations

import argparse
import cProfile
import datetime as dt
import functools
import importlib.util
import multiprocessing
import os
import pstats
import queue
import random
import secrets
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from types import ModuleType
from typing import NamedTuple, TypeVar

import psycopg
from psycopg import sql

ROOT = Path(__file__).resolve().parent.parent
# `--code DIR`: measure the Lifeboat checkout in DIR (e.g. main beside a branch) with this bench.
CODE = Path(sys.argv[sys.argv.index("--code") + 1]).resolve() if "--code" in sys.argv[:-1] else ROOT
sys.path.insert(0, str(CODE))

from jobs import dispatch, run_lifecycle  # noqa: E402
from jobs.context import JobContext  # noqa: E402
from jobs.schedule import ScheduleSpec, latest_due  # noqa: E402
from store import Database, migrate  # noqa: E402

ADMIN_DSN = "host=127.0.0.1 port=5432 user=postgres dbname=postgres connect_timeout=3"
NOW = dt.datetime(2026, 11, 25, 12, 0, tzinfo=dt.UTC)
ZONES = [
    "UTC",
    "Europe/Berlin",
    "America/New_York",
    "Asia/Tokyo",
    "Australia/Sydney",
    "Asia/Kolkata",
]
TIMES = ["02:00", "02:00", "02:00", "03:30", "23:15", "06:45"]
FREQUENCIES = ["daily"] * 14 + ["weekly"] * 5 + ["monthly"]  # 70% daily, 25% weekly, 5% monthly
TARGETS = {"idle": 5.0, "due": 100.0, "exports": 1000.0}


def dsn(name: str) -> str:
    return f"host=127.0.0.1 port=5432 user=postgres dbname={name}"


def naive(moment: dt.datetime) -> dt.datetime:
    """The store keeps naive UTC (`store.base.UTCDateTime`)."""
    return moment.astimezone(dt.UTC).replace(tzinfo=None)


def load(name: str, start: int, stop: int) -> float:
    """COPY users `start..stop-1` with their schedules and one delivered run each; seconds taken."""
    rng = random.Random(start)
    began = time.perf_counter()
    created = naive(NOW - dt.timedelta(days=400))
    earlier = naive(NOW - dt.timedelta(days=5))
    with psycopg.connect(dsn(name)) as conn, conn.cursor() as cur:
        with cur.copy("COPY users (id, email, timezone, is_active, is_support, created_at) FROM STDIN") as copy:
            for i in range(start, stop):
                copy.write_row((i, f"user{i}@bench.example", ZONES[i % len(ZONES)], True, False, created))
        with cur.copy(
            "COPY schedules (id, user_id, frequency, time_of_day, weekday, day_of_month, timezone,"
            " enabled, next_run_at) FROM STDIN"
        ) as copy:
            for i in range(start, stop):
                due = naive(NOW + dt.timedelta(seconds=rng.randrange(60, 86_400)))
                copy.write_row(
                    (i, i, FREQUENCIES[i % len(FREQUENCIES)], TIMES[i % len(TIMES)], i % 7,
                     1 + i % 28, ZONES[i % len(ZONES)], True, due)
                )  # fmt: skip
        with cur.copy(
            "COPY export_runs (id, user_id, trigger, period_key, state, stage, progress, attempt,"
            " max_attempts, not_before, created_at, started_at, finished_at) FROM STDIN"
        ) as copy:
            for i in range(start, stop):
                copy.write_row(
                    (uuid.uuid4().hex, i, "schedule", "daily:2026-11-20", "delivered", "done",
                     100, 1, 5, earlier, earlier, earlier, earlier)
                )  # fmt: skip
        for table in ("users", "schedules"):  # COPY gave explicit ids: move the sequences past them
            cur.execute(
                sql.SQL("SELECT setval(pg_get_serial_sequence({}, 'id'), (SELECT max(id) FROM {}))").format(
                    sql.Literal(table), sql.Identifier(table)
                )
            )
        conn.commit()
        for table in ("users", "schedules", "export_runs"):
            cur.execute(sql.SQL("ANALYZE {}").format(sql.Identifier(table)))
        conn.commit()
    return time.perf_counter() - began


def median_ms(samples: list[float]) -> float:
    return statistics.median(samples) * 1000


T = TypeVar("T")


def timed(action: Callable[[], T]) -> tuple[float, T]:
    began = time.perf_counter()
    result = action()
    return time.perf_counter() - began, result


def idle_ticks(db: Database, dispatchers: dict[str, ModuleType], rounds: int = 20) -> dict[str, tuple[float, float]]:
    """Per dispatcher, median ms of `dispatch.tick` finding nothing due, and of a whole dispatcher pass
    (initialise + tick + requeue_expired + undispatched, what `Dispatcher.tick_once` runs); several
    dispatchers (`--compare`) take turns in blocks of 5."""
    found: dict[str, tuple[list[float], list[float]]] = {label: ([], []) for label in dispatchers}
    for block in range(0, rounds, 5):
        for label in list(dispatchers) if block % 10 == 0 else list(dispatchers)[::-1]:
            ticks, passes = _idle_ticks(db, dispatchers[label], min(5, rounds - block))
            found[label][0].extend(ticks)
            found[label][1].extend(passes)
    return {label: (median_ms(ticks), median_ms(passes)) for label, (ticks, passes) in found.items()}


def _idle_ticks(db: Database, dispatch: ModuleType, rounds: int) -> tuple[list[float], list[float]]:

    def dispatcher_pass() -> None:
        dispatch.initialise_schedules(db, now=NOW)
        dispatch.tick(db, now=NOW)
        run_lifecycle.requeue_expired(db, now=NOW)
        run_lifecycle.undispatched(db, now=NOW, redispatch_after=dt.timedelta(minutes=4))

    for _ in range(3):  # warm the pool and the plan cache
        dispatcher_pass()
    ticks, passes = [], []
    for _ in range(rounds):
        seconds, result = timed(lambda: dispatch.tick(db, now=NOW))
        assert result.due == 0, "the benchmark's schedules must not be due at NOW"
        ticks.append(seconds)
        passes.append(timed(dispatcher_pass)[0])
    return ticks, passes


def _latest_run(i: int) -> dt.datetime:
    """The latest run time at or before NOW of schedule `i` as `load` wrote it."""
    spec = ScheduleSpec(
        frequency=FREQUENCIES[i % len(FREQUENCIES)], time_of_day=TIMES[i % len(TIMES)],
        timezone=ZONES[i % len(ZONES)], weekday=i % 7, day_of_month=1 + i % 28, user_id=i,
    )  # fmt: skip
    fired = latest_due(spec, NOW)
    assert fired is not None
    return fired


class Due(NamedTuple):
    walls: list[float]  # ms per tick
    cpus: list[float]  # ms of this process's CPU per tick
    servers: list[float]  # ms on CPU of the PostgreSQL backends per tick (/proc/PID/schedstat)
    wals: list[float]  # MB of WAL per tick (the whole server's: other databases' writes count too)
    handout: float  # median ms to hand the runs out


def other_dispatch(checkout: Path) -> ModuleType:
    """`checkout`'s jobs/dispatch.py as a module of its own, run on this checkout's store and jobs.

    Why: before/after ticks in interleaved rounds of one run, on the same database, are
    the only comparison a shared machine allows (`--compare`); the dispatcher is this file.
    """
    spec = importlib.util.spec_from_file_location("compared_dispatch", checkout / "jobs" / "dispatch.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up
    spec.loader.exec_module(module)
    return module


def due_ticks(
    name: str, db: Database, users: int, dispatchers: dict[str, ModuleType], rounds: int = 5, profile: bool = False
) -> dict[str, Due]:
    """Each tick turning 1,000 due schedules into queued runs: wall ms, this process's CPU ms, the
    database backends' CPU ms and the MB of WAL PostgreSQL wrote for it (the wall time moves with
    the other load on the machine; CPU and WAL, which is mostly full-page images of every page the
    tick dirtied first since the last checkpoint, much less), and the median ms to hand those runs out.
    With several dispatchers (`--compare`), each round runs each of them, in alternating order."""
    rng = random.Random(users)
    measured = {label: ([], [], [], [], []) for label in dispatchers}  # type: ignore[var-annotated]
    with psycopg.connect(dsn(name), autocommit=True) as conn:
        for round_ in range(rounds):
            order = list(dispatchers) if round_ % 2 == 0 else list(dispatchers)[::-1]
            for label in order:
                ticks, cpus, servers, wals, handouts = measured[label]
                dispatch = dispatchers[label]
                chosen = rng.sample(range(1, users + 1), 1000)
                # Due as in production: next_run_at is the run time that came due (not measured).
                with conn.cursor() as cur:
                    cur.executemany(
                        "UPDATE schedules SET next_run_at = %s WHERE id = %s",
                        [(naive(_latest_run(i)), i) for i in chosen],
                    )
                lsn = conn.execute("SELECT pg_current_wal_insert_lsn()").fetchone()[0]  # type: ignore[index]  # one row
                profiler = cProfile.Profile() if profile and round_ == rounds - 1 else None
                if profiler:
                    profiler.enable()
                backends = _backends_on_cpu(name)
                cpu = time.process_time()
                seconds, result = timed(functools.partial(dispatch.tick, db, now=NOW, limit=1000))
                cpus.append((time.process_time() - cpu) * 1000)
                servers.append(sum(cpu - backends.get(pid, 0.0) for pid, cpu in _backends_on_cpu(name).items()) * 1000)
                if profiler:
                    profiler.disable()
                    pstats.Stats(profiler).sort_stats("cumulative").print_stats(25)
                wal = conn.execute("SELECT pg_wal_lsn_diff(pg_current_wal_insert_lsn(), %s)", (lsn,)).fetchone()
                wals.append(float(wal[0]) / 2**20)  # type: ignore[index]  # one row
                created = result.created
                assert len(created) == 1000, f"expected 1,000 new runs, got {len(created)}"
                ticks.append(seconds * 1000)
                seconds, handed = timed(
                    lambda: run_lifecycle.undispatched(db, now=NOW, redispatch_after=dt.timedelta(minutes=4))
                )
                assert len(handed) == 1000
                handouts.append(seconds)
                # Reset: the new runs go, the schedules return to the future.
                conn.execute("DELETE FROM run_events WHERE run_id = ANY(%s)", (created,))
                conn.execute("DELETE FROM export_runs WHERE id = ANY(%s)", (created,))
                conn.execute(
                    "UPDATE schedules SET next_run_at = %s, last_period_key = NULL WHERE id = ANY(%s)",
                    (naive(NOW + dt.timedelta(hours=6)), chosen),
                )
    return {
        label: Due(ticks, cpus, servers, wals, median_ms(handouts))
        for label, (ticks, cpus, servers, wals, handouts) in measured.items()
    }


def _backends_on_cpu(name: str) -> dict[int, float]:
    """Seconds on CPU so far of every PostgreSQL backend connected to database `name`, by pid.

    Why not `_backends`: /proc/PID/stat counts in clock ticks (10 ms), as much as a tenth of
    a due tick; schedstat counts nanoseconds (Linux only).
    """
    with psycopg.connect(dsn(name), autocommit=True) as conn:
        rows = conn.execute(
            "SELECT pid FROM pg_stat_activity WHERE datname = %s AND pid <> pg_backend_pid()", (name,)
        ).fetchall()
    found = {}
    for (pid,) in rows:
        try:
            found[pid] = int(Path(f"/proc/{pid}/schedstat").read_text().split()[0]) / 1e9
        except (OSError, ValueError, IndexError):
            continue
    return found


# --- exports of typical accounts: PostgreSQL + Celery workers, and the embedded SQLite default ---

CLK_TCK = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100
TYPICAL_USERS = 8  # more users than workers, so a finished user's next run is never what a worker waits for
POLL = 0.1  # how often the bench queues the next run of every user whose run finished ("Export now")


def _cpu_of(pid: int) -> float:
    """CPU seconds (user + system, itself and its waited-for children) of process `pid`; Linux only.

    Why /proc: the CPU of other processes (Celery workers, PostgreSQL backends) is what
    shows how much of the two cores an export costs, whatever else the machine runs.
    """
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return sum(int(value) for value in fields[11:15]) / CLK_TCK


def _backends(name: str) -> dict[int, float]:
    """CPU seconds so far of every PostgreSQL backend connected to database `name`, by pid."""
    with psycopg.connect(dsn(name), autocommit=True) as conn:
        rows = conn.execute(
            "SELECT pid FROM pg_stat_activity WHERE datname = %s AND pid <> pg_backend_pid()", (name,)
        ).fetchall()
    return {pid: _cpu_of(pid) for (pid,) in rows}


def _typical_users(db: Database) -> list[int]:
    from account.sample import TYPICAL, generate_account
    from store.accounts import replace_account

    with db.session(write=True) as session:
        return [
            replace_account(session, generate_account(f"typical{i}@bench.example", TYPICAL, seed=i)).id
            for i in range(TYPICAL_USERS)
        ]


def _top_up(db: Database, user_ids: list[int], forget: Path | None = None) -> int:
    """Queue a run for every user who has none active (what "Export now" does); how many were queued.

    One read to find them, and a write only when there are some: the bench must cost the
    machine as little as a user pressing a button would. `forget` (the export cache folder,
    `JobContext.export_cache_dir`): each queued user's cache is deleted first, so the run is a
    first export (the cache may go at any time; no run of that user is active then).
    """
    from sqlalchemy import select

    from store import ACTIVE_STATES, ExportRun
    from store.base import utcnow

    with db.session() as session:
        busy = set(session.scalars(select(ExportRun.user_id).where(ExportRun.state.in_(list(ACTIVE_STATES)))))
    idle = [user_id for user_id in user_ids if user_id not in busy]
    if forget is not None:
        for user_id in idle:
            shutil.rmtree(forget / str(user_id), ignore_errors=True)
    if idle:
        with db.session(write=True) as session:
            for user_id in idle:
                run_lifecycle.request_run(session, user_id, "bench", now=utcnow())
    return len(idle)


def _delivered_between(db: Database, start: dt.datetime, stop: dt.datetime) -> int:
    from sqlalchemy import func, select

    from store import ExportRun

    with db.session() as session:
        return (
            session.scalar(
                select(func.count()).where(
                    ExportRun.state == "delivered", ExportRun.finished_at >= start, ExportRun.finished_at < stop
                )
            )
            or 0
        )


def _drain(db: Database, timeout: float = 120.0) -> None:
    """Wait until no run is active, so the next round starts from an idle machine."""
    from sqlalchemy import func, select
    from sqlalchemy.exc import OperationalError

    from store import ACTIVE_STATES, ExportRun

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with db.session() as session:
                if not session.scalar(select(func.count()).where(ExportRun.state.in_(list(ACTIVE_STATES)))):
                    return
        except OperationalError:  # the shared server restarting: the round's figures say so, wait for it
            print("  database unreachable while draining; waiting", file=sys.stderr, flush=True)
            time.sleep(1)
        time.sleep(0.1)
    raise RuntimeError("runs still active after the round; a worker is stuck")


class Round(NamedTuple):
    exports: int
    seconds: float
    cpu: float  # CPU seconds of everything that executed the runs (workers, their database backends)
    dispatcher_cpu: float  # CPU seconds of whoever queued and dispatched them (this bench, or the web process)
    server_cpu: float = 0.0  # of `cpu`: the PostgreSQL backends'

    @property
    def per_minute(self) -> float:
        return self.exports * 60 / self.seconds

    @property
    def cpu_ms(self) -> float:
        return self.cpu * 1000 / max(self.exports, 1)


class CeleryWorkers:
    """`workers` real Celery worker processes (`--pool=solo`: one export at a time each) on PostgreSQL.

    This process plays the web process and dispatcher: it queues runs ("Export now") and
    hands them to Redis with `jobs.worker.dispatch_queued`, exactly as `jobs.kick` does.
    """

    def __init__(self, name: str, url: str, workers: int, code: Path, folder: Path) -> None:
        import redis

        self.name, self.code, self.folder = name, code, folder
        self.broker = redis.Redis(host="127.0.0.1", port=6379)
        for index in random.sample(range(1, 16), 15):  # an empty Redis database of our own, as the tests do
            client = redis.Redis(host="127.0.0.1", port=6379, db=index)
            if client.dbsize() == 0 and client.set("lifeboat-bench-owner", secrets.token_hex(8), nx=True):
                self.broker = client
                break
            client.close()
        else:
            raise RuntimeError("no empty Redis database index (1-15) for the bench's broker")
        broker_url = f"redis://127.0.0.1:6379/{self.broker.connection_pool.connection_kwargs['db']}"
        self.env = {
            **os.environ,
            "LIFEBOAT_DATABASE_URL": url,
            "LIFEBOAT_ARCHIVE_DIR": str(folder / "archives"),
            "LIFEBOAT_INSTANCE_DIR": str(folder / "instance"),
            "LIFEBOAT_CELERY_BROKER_URL": broker_url,
            "LIFEBOAT_SECRET_KEY": "bench-secret-key",
            "PYTHONPATH": str(code),
            "PYTHONUNBUFFERED": "1",
        }
        from app import create_app
        from jobs import get_context
        from store import get_db

        self.app = create_app(
            {
                "TESTING": True,
                "DATABASE_URL": url,
                "ARCHIVE_DIR": self.env["LIFEBOAT_ARCHIVE_DIR"],
                "INSTANCE_PATH": self.env["LIFEBOAT_INSTANCE_DIR"],
                "CELERY_BROKER_URL": broker_url,
                "SECRET_KEY": "bench-secret-key",
            }
        )
        self.ctx = get_context(self.app)
        self.db = get_db(self.app)
        self.users = _typical_users(self.db)
        self.processes: list[subprocess.Popen[bytes]] = []
        for i in range(workers):
            log = folder / f"worker{i}.log"
            command = [
                str(Path(sys.executable).parent / "celery"), "-A", "make_celery", "worker", "--pool=solo",
                "--without-gossip", "--without-mingle", "--without-heartbeat", "--loglevel=INFO",
                "-n", f"bench{i}-{secrets.token_hex(3)}@%h",
            ]  # fmt: skip
            with log.open("wb") as out:
                self.processes.append(
                    subprocess.Popen(command, cwd=code, env=self.env, stdout=out, stderr=subprocess.STDOUT)
                )
        deadline = time.monotonic() + 120
        for i, process in enumerate(self.processes):
            log = folder / f"worker{i}.log"
            while "ready." not in log.read_text(errors="replace"):
                if process.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"Celery worker {i} did not start:\n{log.read_text(errors='replace')}")
                time.sleep(0.1)

    def round(self, seconds: float, mode: str) -> Round:
        """Exports for `seconds`: `mode` "repeat" (each user exported before, account unchanged) or "first"."""
        from jobs.worker import dispatch_queued
        from store.base import utcnow

        forget = _cache_folder(self.ctx, mode)
        with self.app.app_context():
            for _ in range(2):  # warm-up: every worker has exported and holds its connections
                _top_up(self.db, self.users, forget)
                dispatch_queued(self.ctx)
                _drain(self.db)
            pids = [process.pid for process in self.processes]
            start, began = utcnow(), time.perf_counter()
            workers, backends, mine = sum(map(_cpu_of, pids)), _backends(self.name), time.process_time()
            while time.perf_counter() - began < seconds:
                if _top_up(self.db, self.users, forget):
                    dispatch_queued(self.ctx)
                time.sleep(POLL)
            stop, took = utcnow(), time.perf_counter() - began
            workers = sum(map(_cpu_of, pids)) - workers
            after = _backends(self.name)
            backend = sum(cpu - backends.get(pid, 0.0) for pid, cpu in after.items())
            mine = time.process_time() - mine
            _drain(self.db)
            return Round(_delivered_between(self.db, start, stop), took, workers + backend, mine, backend)

    def close(self) -> None:
        for process in self.processes:
            process.terminate()
        for process in self.processes:
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                process.kill()
        self.app.extensions["celery"].close()
        self.db.dispose()
        self.broker.flushdb()
        self.broker.close()


MODES = {
    "repeat": "repeat (exported before, unchanged)",
    "first": "first (no export cache)",
}


def _cache_folder(ctx: JobContext, mode: str) -> Path | None:
    """The export cache folder the bench empties per user before each run of a "first" round; else None."""
    if mode not in MODES:
        raise ValueError(f"unknown export mode {mode!r}; one of {', '.join(MODES)}")
    return getattr(ctx, "export_cache_dir", None) if mode == "first" else None


def _bench_context(folder: str) -> JobContext:
    """The embedded round's job context (in the round's process, or in each export process)."""
    from jobs.context import JobContext

    return JobContext(db=Database(f"sqlite:///{folder}/lifeboat.sqlite3"), archive_dir=Path(folder) / "archives")


def supports_processes() -> bool:
    """Whether the measured code has export processes (EMBEDDED_PROCESSES); main before issue 15 had not."""
    import inspect

    from jobs.embedded import EmbeddedRuntime

    return "processes" in inspect.signature(EmbeddedRuntime).parameters


def _embedded_round(
    folder: str, seconds: float, workers: int, processes: bool, mode: str, results: multiprocessing.Queue[Round]
) -> None:
    """One embedded process (SQLite, `EmbeddedRuntime` with `workers` export threads or processes).

    As `lifeboat serve` runs it; its own thread plays the web process's "Export now": it
    queues each user's next run and kicks the pool. The CPU counted is the whole process's
    (SQLite runs inside it) and its export processes'.
    """
    from jobs.embedded import EmbeddedRuntime
    from store.base import utcnow

    ctx = _bench_context(folder)
    db = ctx.db
    forget = _cache_folder(ctx, mode)
    known = Path(folder, "users")  # the first round imports the accounts, later ones reuse them
    if not known.exists():
        migrate.upgrade(db)
        known.write_text(" ".join(map(str, _typical_users(db))))
    users = [int(value) for value in known.read_text().split()]
    if processes:
        runtime = EmbeddedRuntime(ctx, workers=workers, processes=functools.partial(_bench_context, folder))
        assert runtime.children is not None
        runtime.children.start()
    else:
        runtime = EmbeddedRuntime(ctx, workers=workers)
    for _ in range(2):  # warm-up, as a long-running process is
        _top_up(db, users, forget)
        runtime.kick()
        _drain(db)
    pool = getattr(runtime, "children", None)  # None: threads (and code from before export processes)
    children = pool.pids() if pool is not None else []
    start, began = utcnow(), time.perf_counter()
    cpu = time.process_time() + sum(map(_cpu_of, children))
    while time.perf_counter() - began < seconds:
        if _top_up(db, users, forget):
            runtime.kick()
        time.sleep(POLL)
    stop, took = utcnow(), time.perf_counter() - began
    cpu = time.process_time() + sum(map(_cpu_of, children)) - cpu
    _drain(db)
    runtime.shutdown()
    results.put(Round(_delivered_between(db, start, stop), took, cpu, 0.0))
    db.dispose()


def embedded_round(folder: Path, seconds: float, workers: int, processes: bool, mode: str) -> Round:
    context = multiprocessing.get_context("spawn")
    results: multiprocessing.Queue[Round] = context.Queue()
    process = context.Process(target=_embedded_round, args=(str(folder), seconds, workers, processes, mode, results))
    process.start()
    deadline = time.monotonic() + seconds + 300
    while True:
        try:
            outcome = results.get(timeout=5)
            break
        except queue.Empty:
            if not process.is_alive() or time.monotonic() > deadline:
                raise RuntimeError(
                    f"the embedded round's process ended without a result ({process.exitcode})"
                ) from None
    process.join()
    return outcome


def export_rounds(name: str, url: str, args: argparse.Namespace) -> dict[str, list[Round]]:
    """Interleaved rounds, `args.rounds` times: PostgreSQL + Celery workers, the embedded SQLite
    default (export threads), and the embedded deployment with export processes where the code has
    them; each in every mode of `args.export_modes` (repeat exports, first exports)."""
    folder = Path(tempfile.mkdtemp(prefix="lifeboat-bench-exports-"))
    (folder / "sqlite").mkdir()
    n = args.export_workers
    deployments = {
        "postgres": f"PostgreSQL + {n} Celery workers (solo pool)",
        "threads": f"embedded SQLite default ({n} export threads, one process)",
        "processes": f"embedded SQLite, EMBEDDED_PROCESSES=true ({n} export processes)",
    }
    wanted = [d for d in args.deployments.split(",") if d]
    unknown = [d for d in wanted if d not in deployments]
    if unknown:
        raise SystemExit(f"unknown deployments {unknown}; choose from {', '.join(deployments)}")
    if "processes" in wanted and not supports_processes():
        wanted.remove("processes")
    modes = [m for m in args.export_modes.split(",") if m]
    if any(mode not in MODES for mode in modes):
        raise SystemExit(f"unknown export modes in {modes}; choose from {', '.join(MODES)}")
    results: dict[str, list[Round]] = {f"{deployments[d]}, {MODES[m]}": [] for d in wanted for m in modes}
    celery = CeleryWorkers(name, url, n, CODE, folder) if "postgres" in wanted else None
    try:
        for round_ in range(args.rounds):
            for mode in modes:
                for deployment in wanted:
                    if deployment == "postgres":
                        assert celery is not None
                        outcome = celery.round(args.export_seconds, mode)
                    else:
                        processes = deployment == "processes"
                        outcome = embedded_round(folder / "sqlite", args.export_seconds, n, processes, mode)
                    results[f"{deployments[deployment]}, {MODES[mode]}"].append(outcome)
            print(f"  export round {round_ + 1} of {args.rounds} done", file=sys.stderr, flush=True)
    finally:
        if celery is not None:
            celery.close()
        shutil.rmtree(folder, ignore_errors=True)
    return results


def spread(values: list[float], fmt: str = "{:.0f}") -> str:
    """The median, then the lowest and highest in brackets."""
    return f"{fmt.format(statistics.median(values))} ({fmt.format(min(values))}–{fmt.format(max(values))})"


def verdict(value: float, target: float, *, at_most: bool) -> str:
    ok = value <= target if at_most else value >= target
    return "ok" if ok else "MISSED"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", default="100000,1000000", help="schedule counts, ascending; 0: no dispatcher part")
    parser.add_argument("--export-seconds", type=float, default=30.0, help="length of one export round")
    parser.add_argument("--rounds", type=int, default=3, help="interleaved export rounds (PostgreSQL, SQLite)")
    parser.add_argument("--export-workers", type=int, default=2, help="Celery workers; embedded export threads")
    parser.add_argument(
        "--export-modes",
        default="repeat,first",
        help="repeat: each user exported before, account unchanged (periodic runs); first: no export cache",
    )
    parser.add_argument("--deployments", default="postgres,threads,processes", help="which export deployments")
    parser.add_argument("--code", type=Path, default=ROOT, help="the Lifeboat checkout to measure (default: this one)")
    parser.add_argument("--profile", action="store_true", help="print a profile of the last due tick")
    parser.add_argument(
        "--compare", type=Path, help="also tick with this checkout's jobs/dispatch.py, in interleaved rounds"
    )
    args = parser.parse_args()
    dispatchers = {"measured": dispatch}
    if args.compare:
        dispatchers = {"compared": other_dispatch(args.compare.resolve()), **dispatchers}
    sizes = sorted(int(size) for size in args.sizes.split(",") if int(size) > 0)

    load_before = os.getloadavg()[0]
    name = f"lifeboat_bench_{secrets.token_hex(4)}"
    with psycopg.connect(ADMIN_DSN, autocommit=True) as admin:
        admin.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    url = f"postgresql+psycopg://postgres@127.0.0.1:5432/{name}"
    rows = []
    try:
        db = Database(url)
        migrate.upgrade(db)
        loaded = 0
        for size in sizes:
            load_seconds = load(name, loaded + 1, size + 1)
            loaded = size
            idle = idle_ticks(db, dispatchers)
            dues = due_ticks(name, db, size, dispatchers, profile=args.profile)
            rows += [(size, load_seconds, label, *idle[label], dues[label]) for label in dispatchers]
            print(f"  {size:,} schedules measured", file=sys.stderr, flush=True)
        db.dispose()
        exports = export_rounds(name, url, args) if args.rounds > 0 else {}
    finally:
        with psycopg.connect(ADMIN_DSN, autocommit=True) as admin:
            admin.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))

    print(f"\nLifeboat code measured: {CODE} ({_commit_of(CODE)})")
    if args.compare:
        print(f"Dispatcher compared (its jobs/dispatch.py): {args.compare} ({_commit_of(args.compare)})")
    if rows:
        header = ["code", "schedules", "bulk load (COPY)", "idle tick", "idle dispatcher pass",
                  "1,000 due -> queued runs, wall", "client CPU", "server CPU", "WAL MB",
                  "hand out 1,000 runs"]  # fmt: skip
        print("\nDispatcher on PostgreSQL: medians (min–max) of 20 idle ticks and of 5 due ticks.")
        print("| " + " | ".join(header) + " |")
        print("|" + "---:|" * len(header))
        for size, load_seconds, label, idle_tick, idle_pass, due in rows:
            cells = [
                label,
                f"{size:,}",
                f"{load_seconds:.1f} s",
                f"{idle_tick:.2f} ms ({verdict(idle_tick, TARGETS['idle'], at_most=True)})",
                f"{idle_pass:.2f} ms",
                f"{spread(due.walls)} ms ({verdict(statistics.median(due.walls), TARGETS['due'], at_most=True)})",
                f"{spread(due.cpus)} ms",
                f"{spread(due.servers)} ms",
                spread(due.wals, "{:.1f}"),
                f"{due.handout:.0f} ms",
            ]
            print("| " + " | ".join(cells) + " |")
        print()
        for size, _, label, *_, due in rows:
            walls = ", ".join(f"{ms:.0f}" for ms in due.walls)
            cpus = ", ".join(f"{ms:.0f}" for ms in due.cpus)
            servers = ", ".join(f"{ms:.0f}" for ms in due.servers)
            wals = ", ".join(f"{mb:.1f}" for mb in due.wals)
            print(
                f"Due ticks at {size:,} schedules ({label}), each round: {walls} ms wall; {cpus} ms client CPU;"
                f" {servers} ms server CPU; {wals} MB WAL."
            )
        by_code = {(size, label): due for size, _, label, *_, due in rows}
        for size in sizes if args.compare else []:
            new, old = by_code[size, "measured"], by_code[size, "compared"]
            wall_ratios = [a / b for a, b in zip(new.walls, old.walls, strict=True)]
            cpu_ratios = [
                (a + c) / (b + d) for a, b, c, d in zip(new.cpus, old.cpus, new.servers, old.servers, strict=True)
            ]
            print(
                f"Measured / compared at {size:,} schedules, per round: wall {spread(wall_ratios, '{:.2f}')};"
                f" client + server CPU {spread(cpu_ratios, '{:.2f}')}."
            )
    if exports:
        cores = os.cpu_count() or 1
        print(
            f"\nExports of typical accounts (200 contacts, 1,000 events, 100 notes), archives on local disk;"
            f" {args.rounds} interleaved rounds of {args.export_seconds:.0f} s, medians (min–max). CPU per export"
            f" counts the workers and their PostgreSQL backends (Celery), or the whole embedded process;"
            f" 'CPU-bound rate' is what {cores} cores would export if they did nothing else:"
            f" {cores} x 60 s / CPU per export."
        )
        columns = ["deployment, exports", "exports/min (wall)", "CPU ms per export", "CPU-bound rate /min",
                   "dispatcher CPU ms per export"]  # fmt: skip
        print("| " + " | ".join(columns) + " |")
        print("|---|---:|---:|---:|---:|")
        for label, results in exports.items():
            rate = [r.per_minute for r in results]
            cpu = [r.cpu_ms for r in results]
            bound = [cores * 60_000 / ms for ms in cpu]
            dispatcher = [r.dispatcher_cpu * 1000 / max(r.exports, 1) for r in results]
            dispatched = spread(dispatcher, "{:.1f}") if any(dispatcher) else "in CPU"
            print(
                f"| {label} | {spread(rate)} ({verdict(statistics.median(rate), TARGETS['exports'], at_most=False)})"
                f" | {spread(cpu)} | {spread(bound)} | {dispatched} |"
            )
        for label, results in exports.items():
            each = "; ".join(
                f"{r.exports} in {r.seconds:.0f} s, {r.cpu_ms:.0f} ms CPU each"
                + (f" ({r.server_cpu * 1000 / max(r.exports, 1):.0f} of them PostgreSQL's)" if r.server_cpu else "")
                for r in results
            )
            print(f"{label} rounds: {each}.")
    print(
        f"\nTargets (issue 15): idle tick <= {TARGETS['idle']:.0f} ms; 1,000 due schedules -> queued runs"
        f" <= {TARGETS['due']:.0f} ms at 1,000,000 schedules; >= {TARGETS['exports']:.0f} exports/min."
        f" Load average (1 min) before/after: {load_before:.1f}/{os.getloadavg()[0]:.1f} on {os.cpu_count()} cores."
    )


def _commit_of(folder: Path) -> str:
    try:
        found = subprocess.run(
            ["git", "-C", str(folder), "log", "-1", "--format=%h %s"], capture_output=True, text=True, check=True
        )
    except (OSError, subprocess.CalledProcessError):
        return "not a git checkout"
    return found.stdout.strip()[:80]


if __name__ == "__main__":
    main()
