"""Benchmark: the dispatcher at 100,000 and 1,000,000 schedules on PostgreSQL; export throughput.

Why: the scale-out deployment promises that a dispatcher tick stays cheap however
many users there are (one indexed query on `next_run_at`), that a burst of due
schedules turns into queued runs quickly, and that a few worker processes keep up
with typical accounts. Targets (issue 4), on this 2-core machine:

- a tick that finds nothing due: at most 20 ms (median of 20);
- turning 1,000 due schedules into 1,000 queued runs (one `dispatch.tick`): at most
  200 ms (median of 5, the database reset between rounds);
- sustained exports of typical accounts (`account.sample.TYPICAL`: 200 contacts,
  1,000 events, 100 notes) kept on local disk: at least 300 per minute.

Users, schedules and one delivered run per user (the steady state: everyone has
been exported before) are bulk-loaded with COPY into a database of its own,
`lifeboat_bench_<random>`, dropped at the end. Schedules are daily, weekly and
monthly in several zones, with next run times spread over the coming day.

Each due tick's wall time, this process's CPU time and the WAL PostgreSQL wrote
for it are printed per round: the wall time moves with whatever else the machine
runs, CPU and WAL much less. Right after the bulk load a checkpoint is usually in
progress, so nearly every page a tick dirties goes to the WAL as a full-page image;
at 1,000,000 schedules that WAL volume is most of the tick's database time.

    .venv/bin/python bench/scheduler_scale.py [--sizes 100000,1000000] [--export-seconds 60]
        [--export-workers 2] [--profile]
"""

from __future__ import annotations

import argparse
import cProfile
import datetime as dt
import multiprocessing
import os
import pstats
import random
import secrets
import shutil
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

import psycopg
from psycopg import sql

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from jobs import dispatch, run_lifecycle  # noqa: E402
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
TARGETS = {"idle": 20.0, "due": 200.0, "exports": 300.0}


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


def idle_ticks(db: Database, rounds: int = 20) -> tuple[float, float]:
    """Median ms of `dispatch.tick` finding nothing due, and of a whole dispatcher pass
    (initialise + tick + requeue_expired + undispatched, what `Dispatcher.tick_once` runs)."""

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
    return median_ms(ticks), median_ms(passes)


def _latest_run(i: int) -> dt.datetime:
    """The latest run time at or before NOW of schedule `i` as `load` wrote it."""
    spec = ScheduleSpec(
        frequency=FREQUENCIES[i % len(FREQUENCIES)], time_of_day=TIMES[i % len(TIMES)],
        timezone=ZONES[i % len(ZONES)], weekday=i % 7, day_of_month=1 + i % 28, user_id=i,
    )  # fmt: skip
    fired = latest_due(spec, NOW)
    assert fired is not None
    return fired


def due_ticks(
    name: str, db: Database, users: int, rounds: int = 5, profile: bool = False
) -> tuple[list[float], list[float], list[float], float]:
    """Each tick turning 1,000 due schedules into queued runs: wall ms, this process's CPU ms
    and the MB of WAL PostgreSQL wrote for it (the wall time moves with the other load on the
    machine; CPU and WAL, which is mostly full-page images of every page the tick dirtied
    first since the last checkpoint, much less), and the median ms to hand those runs out."""
    rng = random.Random(users)
    ticks, cpus, wals, handouts = [], [], [], []
    with psycopg.connect(dsn(name), autocommit=True) as conn:
        for round_ in range(rounds):
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
            cpu = time.process_time()
            seconds, result = timed(lambda: dispatch.tick(db, now=NOW, limit=1000))
            cpus.append((time.process_time() - cpu) * 1000)
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
    return ticks, cpus, wals, median_ms(handouts)


def _export_worker(url: str, archive_dir: str, user_ids: list[int], seconds: float, start_at: float,
                   results: multiprocessing.Queue[tuple[int, float]]) -> None:  # fmt: skip
    """One worker process: export its users round-robin until the time is up (local disk only)."""
    from jobs.context import JobContext
    from jobs.execute import execute_run
    from store.base import utcnow

    db = Database(url)
    ctx = JobContext(db=db, archive_dir=Path(archive_dir))
    done, busy = 0, 0.0
    time.sleep(max(0.0, start_at - time.time()))
    deadline = start_at + seconds
    while True:
        for user_id in user_ids:
            began = time.time()
            if began >= deadline:
                db.dispose()
                results.put((done, busy))
                return
            with db.session(write=True) as session:
                run, _ = run_lifecycle.request_run(session, user_id, "bench", now=utcnow())
                run_id = run.id
            outcome = execute_run(ctx, run_id, f"bench:{user_id}")
            finished = time.time()
            if outcome == "delivered" and finished <= deadline:
                done += 1
                busy += finished - began


def exports_per_minute(url: str, workers: int, seconds: float) -> tuple[float, int, float]:
    """Typical accounts exported by `workers` processes in `seconds`: per minute, count, mean s."""
    from account.sample import TYPICAL, generate_account
    from store.accounts import replace_account

    db = Database(url)
    per_worker = 3
    user_ids: list[int] = []
    with db.session(write=True) as session:
        for i in range(workers * per_worker):
            account = generate_account(f"typical{i}@bench.example", TYPICAL, seed=i)
            user_ids.append(replace_account(session, account).id)
    db.dispose()
    archive_dir = tempfile.mkdtemp(prefix="lifeboat-bench-archives-")
    context = multiprocessing.get_context("spawn")
    results: multiprocessing.Queue[tuple[int, float]] = context.Queue()
    start_at = time.time() + 5  # after every process has imported everything
    processes = [
        context.Process(
            target=_export_worker,
            args=(
                url,
                archive_dir,
                user_ids[w * per_worker : (w + 1) * per_worker],
                seconds,
                start_at,
                results,
            ),
        )
        for w in range(workers)
    ]
    for process in processes:
        process.start()
    outcomes = [results.get(timeout=seconds + 120) for _ in processes]
    for process in processes:
        process.join()
    shutil.rmtree(archive_dir, ignore_errors=True)
    done = sum(count for count, _ in outcomes)
    busy = sum(spent for _, spent in outcomes)
    return done * 60 / seconds, done, busy / max(done, 1)


def verdict(value: float, target: float, *, at_most: bool) -> str:
    ok = value <= target if at_most else value >= target
    return "ok" if ok else "MISSED"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", default="100000,1000000", help="schedule counts, ascending")
    parser.add_argument("--export-seconds", type=float, default=60.0)
    parser.add_argument("--export-workers", type=int, default=2)
    parser.add_argument("--profile", action="store_true", help="print a profile of the last due tick")
    args = parser.parse_args()
    sizes = sorted(int(size) for size in args.sizes.split(","))

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
            idle_tick, idle_pass = idle_ticks(db)
            due_walls, due_cpus, due_wals, handout = due_ticks(name, db, size, profile=args.profile)
            rows.append((size, load_seconds, idle_tick, idle_pass, due_walls, due_cpus, due_wals, handout))
            print(f"  {size:,} schedules measured", file=sys.stderr, flush=True)
        db.dispose()
        rate, done, mean = exports_per_minute(url, args.export_workers, args.export_seconds)
    finally:
        with psycopg.connect(ADMIN_DSN, autocommit=True) as admin:
            admin.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))

    header = ["schedules", "bulk load (COPY)", "idle tick", "idle dispatcher pass",
              "1,000 due -> queued runs", "its client CPU", "hand out 1,000 runs"]  # fmt: skip
    print()
    print("| " + " | ".join(header) + " |")
    print("|" + "---:|" * len(header))
    for size, load_seconds, idle_tick, idle_pass, due_walls, due_cpus, _wals, handout in rows:
        due_tick = statistics.median(due_walls)
        idle_ok = verdict(idle_tick, TARGETS["idle"], at_most=True)
        due_ok = verdict(due_tick, TARGETS["due"], at_most=True)
        cells = [
            f"{size:,}",
            f"{load_seconds:.1f} s",
            f"{idle_tick:.2f} ms ({idle_ok})",
            f"{idle_pass:.2f} ms",
            f"{due_tick:.0f} ms ({due_ok})",
            f"{statistics.median(due_cpus):.0f} ms",
            f"{handout:.0f} ms",
        ]
        print("| " + " | ".join(cells) + " |")
    print()
    for size, *_, due_walls, due_cpus, due_wals, _handout in rows:
        walls = ", ".join(f"{ms:.0f}" for ms in due_walls)
        cpus = ", ".join(f"{ms:.0f}" for ms in due_cpus)
        wals = ", ".join(f"{mb:.1f}" for mb in due_wals)
        print(f"Due ticks at {size:,} schedules, each round: {walls} ms wall; {cpus} ms client CPU; {wals} MB WAL.")
    print()
    rate_ok = verdict(rate, TARGETS["exports"], at_most=False)
    print(
        f"Exports of typical accounts (200 contacts, 1,000 events, 100 notes) by"
        f" {args.export_workers} worker processes for {args.export_seconds:.0f} s, kept on local"
        f" disk: {done} exports = {rate:.0f}/min ({rate_ok}), {mean:.2f} s per export per worker."
    )
    print(
        f"Targets: idle tick <= {TARGETS['idle']:.0f} ms (median of 20); 1,000 due schedules ->"
        f" queued runs <= {TARGETS['due']:.0f} ms (median of 5); >= {TARGETS['exports']:.0f}"
        f" exports/min. Load average (1 min) before/after: {load_before:.1f}/"
        f"{os.getloadavg()[0]:.1f} on {os.cpu_count()} cores."
    )


if __name__ == "__main__":
    main()
