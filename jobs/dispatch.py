"""The dispatcher's tick: turn due schedules into queued runs, exactly once per period.

Why it is safe to run several dispatchers: due schedules are locked with
`FOR UPDATE SKIP LOCKED` on PostgreSQL (SQLite serialises writers with
BEGIN IMMEDIATE), and runs are inserted with ON CONFLICT DO NOTHING against
the unique (user, period) key and the one-active-run-per-user index. Two
dispatchers that both see a schedule as due create one run between them; the
two transactions one PostgreSQL tick may use (`_PART`) are no different.

After downtime a schedule is due once, whatever it missed: the run covers the
latest missed period and the next run is computed from now, so a week offline
gives one catch-up run per user, not seven.
"""

from __future__ import annotations

import bisect
import contextlib
import datetime as dt
import json
import logging
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, NamedTuple

from sqlalchemy import String, insert, literal_column, select, text, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from jobs.run_lifecycle import add_event
from jobs.schedule import ScheduleSpec, jitter, latest_due, next_run_after, period_key
from store import ACTIVE_STATES, Database, ExportRun, RunEvent, RunState, Schedule
from store.runs import new_id

log = logging.getLogger("lifeboat.dispatch")
_QUEUED = "Scheduled export."


@dataclass(frozen=True)
class TickResult:
    due: int
    created: list[str]


class _Queued(NamedTuple):
    """One due schedule's outcome: the run to insert and where the schedule moves to."""

    schedule_id: int
    user_id: int
    run_id: str
    period_key: str
    next_run_at: dt.datetime
    tid: str | None = None  # PostgreSQL: where the locked row is (see `_TID`)


# Plain columns, not `Schedule` objects, read on the session's connection: the tick only reads
# them, and for 1,000 rows ORM instances cost ~6 ms of CPU, Core rows ~3 ms.
_DUE_COLUMNS = (
    Schedule.id,
    Schedule.user_id,
    Schedule.frequency,
    Schedule.time_of_day,
    Schedule.weekday,
    Schedule.day_of_month,
    Schedule.timezone,
    Schedule.next_run_at,
)
# On PostgreSQL the claim also reads where each row is. The rows stay locked by the claiming
# transaction until it commits, so nothing can move them, and the UPDATE that moves the
# schedules on finds each by it (a TID scan) instead of descending `pk_schedules` once per
# schedule: at 1,000,000 schedules that is a random leaf page each (~1,000 of the tick's reads).
_TID = literal_column("CAST(schedules.ctid AS text)", String).label("tid")


def _insert(database: Database, table: Any) -> Any:
    dialect = postgresql if database.engine.dialect.name == "postgresql" else sqlite
    return dialect.insert(table)


# Due schedules claimed per transaction on PostgreSQL. Why split a tick: nearly all of its time
# is the database visiting ~6 random pages per schedule (the schedule, two of its indexes, the
# runs' per-user key, the user row and index the runs' foreign key locks), one after another in
# one backend on one core. Two transactions of 500, the second claimed (SKIP LOCKED) while the
# first computes and queues its runs, put both cores of the 2-core target machine on it. Measured
# at 1,000,000 schedules (bench/scheduler_scale.py --compare, interleaved rounds, load 12): wall
# 0.80x (0.73-1.11) of one transaction; the slower part's queue statement 130 ms against 203 ms
# for all 1,000 in one (EXPLAIN ANALYZE); CPU 1.10x (a second transaction and thread).
_PART = 500


def tick(database: Database, *, now: dt.datetime, limit: int = 1000) -> TickResult:
    """Claim up to `limit` due schedules, queue one run each, and move them to their next time.

    On PostgreSQL the claim is cut into transactions of `_PART` schedules. A second one
    starts, in a helper thread, only when the first came back full (so a tick that finds
    little or nothing costs what it did), and each thread goes on while its parts come back
    full and `limit` is not used up. Each part is its own all-or-nothing transaction with
    its own `FOR UPDATE SKIP LOCKED` claim: a process that dies between parts leaves the
    later schedules due for the next tick, and two parts (like two dispatchers) never see
    the same schedule. SQLite has one writer at a time: one transaction, as before.
    """
    times = _RunTimes()
    if database.engine.dialect.name != "postgresql":
        return _tick_part(database, now, limit, times, None)
    budget = _Budget(limit)
    shared = _Shared(times)
    helper: list[Future[list[TickResult]]] = []
    pool: ThreadPoolExecutor | None = None

    def start_helper() -> None:
        nonlocal pool
        if not helper and budget.left() > 0:
            pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="lifeboat-tick")
            helper.append(pool.submit(_parts, database, now, budget, shared, None))

    try:
        results = _parts(database, now, budget, shared, start_helper)
        for future in helper:
            results += future.result()
    finally:
        if pool is not None:
            pool.shutdown(wait=True)
    return TickResult(due=sum(r.due for r in results), created=[run for r in results for run in r.created])


class _Budget:
    """How many more schedules this tick may claim, shared by its threads."""

    def __init__(self, limit: int) -> None:
        self._left = limit
        self._lock = threading.Lock()

    def take(self, most: int) -> int:
        with self._lock:
            taken = min(most, self._left)
            self._left -= taken
            return taken

    def left(self) -> int:
        with self._lock:
            return self._left

    def close(self) -> None:
        with self._lock:
            self._left = 0


@dataclass(frozen=True)
class _Shared:
    """The tick's calendar walks, shared by its threads (one at a time: the walks are pure Python)."""

    times: _RunTimes
    lock: threading.Lock = field(default_factory=threading.Lock)


def _parts(
    database: Database, now: dt.datetime, budget: _Budget, shared: _Shared, on_full: Callable[[], None] | None
) -> list[TickResult]:
    """Claim and queue parts of up to `_PART` schedules until one comes back short or the budget is spent."""
    results = []
    while (size := budget.take(_PART)) > 0:
        result = _tick_part(database, now, size, shared.times, on_full, shared.lock)
        results.append(result)
        if result.due < size:  # nothing more is due (or the rest is another dispatcher's)
            budget.close()
            break
    return results


def _tick_part(
    database: Database,
    now: dt.datetime,
    limit: int,
    times: _RunTimes,
    on_full: Callable[[], None] | None,
    walking: threading.Lock | None = None,
) -> TickResult:
    """One transaction: claim up to `limit` due schedules, queue their runs, move them on.

    `on_full` is called as soon as the claim came back full, before the runs are
    computed and written, so that a next part can be claimed meanwhile.
    """
    with database.session(write=True) as session:
        due = (
            session.connection()
            .execute(
                select(*_DUE_COLUMNS, *([_TID] if database.engine.dialect.name == "postgresql" else []))
                .where(Schedule.enabled.is_(True), Schedule.next_run_at <= now)
                .order_by(Schedule.next_run_at)
                .limit(limit)
                .with_for_update(skip_locked=True)
            )
            .all()
        )
        if not due:
            return TickResult(due=0, created=[])
        if on_full is not None and len(due) == limit:
            on_full()
        with walking or contextlib.nullcontext():
            queued = _runs_for(times, due, now)
        if database.engine.dialect.name == "postgresql":
            _commit_without_waiting_for_the_disk(session)
            created = _queue_on_postgresql(session, queued, now)
        else:
            created = _queue(database, session, queued, now)
        if len(created) < len(queued):
            made = set(created)
            _note_folded(session, [q for q in queued if q.run_id not in made], now)
    return TickResult(due=len(queued), created=created)


def _runs_for(times: _RunTimes, due: Sequence[Any], now: dt.datetime) -> list[_Queued]:
    """The run each claimed schedule gets, and where the schedule moves to (`due`: rows of `_DUE_COLUMNS`,
    on PostgreSQL with `_TID`)."""
    queued = []
    for row in due:
        spec = ScheduleSpec.from_row(row)
        fired, upcoming = _due_and_next(times, spec, row.next_run_at, now)
        tid = getattr(row, "tid", None)
        queued.append(_Queued(row.id, row.user_id, new_id(), times.period_key(spec, fired), upcoming, tid))
    return queued


def _note_folded(session: Session, skipped: list[_Queued], now: dt.datetime) -> None:
    """Say in the history of a user's active run that a scheduled period was folded into it.

    Why: at most one run per user may be active, so a period that comes due while an
    export is still queued, running or retrying gets no run of its own; that run's
    archive serves it. The user and support should see that, not just a log line.
    A period that already has its run (another dispatcher made it) needs no note.
    """
    users = [q.user_id for q in skipped]
    keys = {q.period_key for q in skipped}
    served = {
        (user, key)
        for user, key in session.execute(
            select(ExportRun.user_id, ExportRun.period_key).where(
                ExportRun.user_id.in_(users), ExportRun.period_key.in_(keys)
            )
        )
    }
    active = {
        user: run_id
        for user, run_id in session.execute(
            select(ExportRun.user_id, ExportRun.id).where(
                ExportRun.user_id.in_(users), ExportRun.state.in_(ACTIVE_STATES)
            )
        )
    }
    folded = 0
    for item in skipped:
        run_id = active.get(item.user_id)
        if (item.user_id, item.period_key) in served or run_id is None:
            continue
        when = item.period_key.partition(":")[2]
        add_event(
            session,
            run_id,
            "folded",
            f"The scheduled export for {when} was folded into this run, which was still in progress.",
            at=now,
        )
        folded += 1
    log.info(
        "due schedules without a new run",
        extra={
            "due": len(skipped),
            "folded_into_active_runs": folded,
            "period_already_had_a_run": len(skipped) - folded,
        },
    )


def _queue(database: Database, session: Session, queued: list[_Queued], now: dt.datetime) -> list[str]:
    """Insert the runs (skipping conflicts), their history, and move the schedules on."""
    statement = _insert(database, ExportRun).on_conflict_do_nothing().returning(ExportRun.id)
    run_rows = [
        {
            "id": item.run_id,
            "user_id": item.user_id,
            "trigger": "schedule",
            "period_key": item.period_key,
            "state": RunState.QUEUED,
            "not_before": now,
            "created_at": now,
            "attempt": 0,
            "max_attempts": 5,
            "progress": 0,
        }
        for item in queued
    ]
    created = list(session.scalars(statement, run_rows))
    moves = [{"id": q.schedule_id, "next_run_at": q.next_run_at, "last_period_key": q.period_key} for q in queued]
    session.execute(update(Schedule), moves)
    if created:
        session.execute(
            insert(RunEvent),
            [
                {"run_id": run_id, "at": now, "level": "info", "kind": "queued", "message": _QUEUED}
                for run_id in created
            ],
        )
    return created


# The same as `_queue` in one statement, the rows passed as one JSON array: a multi-row INSERT
# of 1,000 runs plus their events and 1,000 schedule UPDATEs took ~250 ms; as two statements
# over `unnest` arrays ~120 ms. One statement saves a round trip, and one JSON document costs
# the client ~2 ms to build and encode where psycopg's five array parameters took ~6 ms of CPU.
# Columns left out take the same values as `_queue` gives them (see `tick`).
_QUEUE_RUNS = text("""
WITH due AS MATERIALIZED (
    SELECT * FROM jsonb_to_recordset(CAST(:rows AS jsonb))
        AS d(run_id varchar, user_id integer, period_key varchar, tid text, next_run_at timestamptz)
), new AS (
    INSERT INTO export_runs (
        id, user_id, trigger, period_key, state, not_before, created_at, attempt, max_attempts,
        progress
    )
    SELECT run_id, user_id, 'schedule', period_key, 'queued', :now, :now, 0, 5, 0 FROM due
    ON CONFLICT DO NOTHING
    RETURNING id
), events AS (
    INSERT INTO run_events (run_id, at, level, kind, message)
    SELECT id, :now, 'info', 'queued', :message FROM new
), moved AS (
    UPDATE schedules AS s
    SET next_run_at = due.next_run_at AT TIME ZONE 'UTC', last_period_key = due.period_key
    FROM due
    WHERE s.ctid = CAST(due.tid AS tid)
)
SELECT id FROM new
""")


def _queue_on_postgresql(session: Session, queued: list[_Queued], now: dt.datetime) -> list[str]:
    rows = [
        {
            "run_id": item.run_id,
            "user_id": item.user_id,
            "period_key": item.period_key,
            "tid": item.tid,
            "next_run_at": item.next_run_at.isoformat(),  # aware: the offset travels with it
        }
        for item in queued
    ]
    parameters = {"now": _naive_utc(now), "message": _QUEUED, "rows": json.dumps(rows)}
    return list(session.connection().execute(_QUEUE_RUNS, parameters).scalars())


def _commit_without_waiting_for_the_disk(session: Session) -> None:
    """Let this tick's COMMIT return before PostgreSQL has flushed its WAL to disk.

    Why it is safe: the tick's only effects are rows in this transaction (runs, their
    "queued" lines, schedules moved on); it sends no message and nothing outside the
    database acts on it before a later transaction. If the server crashes within the
    ~0.6 s before the WAL writer flushes it, the whole tick is lost at once, never half
    of it, and the next tick finds the same schedules due and queues them again, as
    after any failed tick. Anything that depends on its runs (a claim, `undispatched`
    handing them to the queue) commits synchronously, which flushes the WAL up to its
    own commit record and so this tick's too: no run is claimed, sent or exported that
    a crash could take back. Why: a tick writes several MB of WAL (full-page images of
    the ~1,000 random pages it dirties at 1,000,000 schedules), and waiting for that
    flush was 7-24 ms of the tick on this machine (bench/scheduler_scale.py; the
    PostgreSQL manual calls this "non-critical transactions", `synchronous_commit`).
    """
    session.connection().exec_driver_sql("SET LOCAL synchronous_commit = off")


def _naive_utc(moment: dt.datetime) -> dt.datetime:
    """The store keeps naive UTC (`store.base.UTCDateTime`); raw SQL must bind it that way too."""
    return moment.astimezone(dt.UTC).replace(tzinfo=None)


_Plan = tuple[str, str, str, int, int]


class _Chain:
    """Consecutive un-jittered run times of one plan, walked once and shared by a tick's users.

    `bases[0]` is the first run strictly after `low` and each later one the first run strictly
    after the one before it, so every threshold in `[low, bases[-1])` is answered by a bisect:
    the first base greater than it.
    """

    def __init__(self, low: dt.datetime, first: dt.datetime) -> None:
        self.low = low
        self.bases = [first]

    def first_after(self, threshold: dt.datetime, walk: Callable[[dt.datetime], dt.datetime]) -> dt.datetime:
        """The first base strictly after `threshold`, walking (`walk(t)`: first base after t) if unknown."""
        bases = self.bases
        if threshold < self.low:
            found = walk(threshold)
            if found < bases[0] and walk(found) == bases[0]:  # the run just before the chain
                bases.insert(0, found)
            elif found != bases[0]:  # far before: start again from here
                self.bases = [found]
            self.low = threshold
            return found
        if threshold >= bases[-1]:
            following = walk(bases[-1])
            if following <= threshold:  # far past the chain's end: start again from here
                following = walk(threshold)
                self.low, self.bases = threshold, []
            self.bases.append(following)
            return following
        return bases[bisect.bisect_right(bases, threshold)]


class _RunTimes:
    """`next_run_after` and `period_key` for many schedules in one tick, sharing the calendar walk.

    Why: the walk (APScheduler's cron arithmetic) costs about 0.1 ms, and a tick of
    1,000 due schedules needed four per schedule (0.9 s, measured with
    bench/scheduler_scale.py). Users with the same schedule differ only by their
    fixed jitter: `next_run_after(spec, t)` is the first un-jittered run strictly
    after `t - jitter`, plus the jitter. The un-jittered runs of a schedule are one
    sequence for all its users (`_Chain`), so most users' answers are a bisect, and
    a plan's period key depends only on the un-jittered run it names. In the
    benchmark's ticks (68 distinct schedules among 1,000 due users) that is 136
    walks, two per schedule; caching (threshold, run) spans per user took ~200.
    """

    def __init__(self) -> None:
        self._chains: dict[_Plan, _Chain] = {}
        self._shifts: dict[int, dt.timedelta] = {}
        self._keys: dict[tuple[_Plan, dt.datetime], str] = {}

    def after(self, spec: ScheduleSpec, moment: dt.datetime) -> dt.datetime:
        shift = self._shift(spec)
        threshold = moment - shift
        plan = _plan(spec)
        chain = self._chains.get(plan)

        def walk(base: dt.datetime) -> dt.datetime:
            return next_run_after(spec, base + shift) - shift

        if chain is None:
            first = walk(threshold)
            self._chains[plan] = _Chain(threshold, first)
            return first + shift
        return chain.first_after(threshold, walk) + shift

    def period_key(self, spec: ScheduleSpec, fired: dt.datetime) -> str:
        """`period_key(spec, fired)`, computed once per plan and un-jittered run."""
        cache = (_plan(spec), fired - self._shift(spec))
        key = self._keys.get(cache)
        if key is None:
            key = self._keys[cache] = period_key(spec, fired)
        return key

    def _shift(self, spec: ScheduleSpec) -> dt.timedelta:
        shift = self._shifts.get(spec.user_id)
        if shift is None:
            shift = self._shifts[spec.user_id] = jitter(spec)
        return shift


def _plan(spec: ScheduleSpec) -> _Plan:
    """What the calendar arithmetic depends on (fields the frequency ignores are zeroed)."""
    weekday = spec.weekday if spec.frequency == "weekly" else 0
    day = spec.day_of_month if spec.frequency == "monthly" else 0
    return (spec.frequency, spec.time_of_day, spec.timezone, weekday, day)


def _due_and_next(
    times: _RunTimes, spec: ScheduleSpec, stored: dt.datetime | None, now: dt.datetime
) -> tuple[dt.datetime, dt.datetime]:
    """The run that came due (the latest at or before `now`) and the first one after `now`.

    Usually the stored `next_run_at` is the run that came due; it is used only if it
    is a run time of the schedule as it is now (an edited schedule may keep a stale
    one) and no later run is due (after downtime only the latest missed period is
    run). Otherwise `latest_due` searches, as before. The checks walk forward from
    the stored time before `now` is asked, so a schedule's chain is walked in order.
    """
    if (
        stored is not None
        and stored <= now
        and times.after(spec, stored - _SECOND) == stored
        and times.after(spec, stored) > now  # the same as "== times.after(spec, now)"
    ):
        return stored, times.after(spec, now)
    return latest_due(spec, now) or stored or now, times.after(spec, now)


_SECOND = dt.timedelta(seconds=1)


def initialise_schedules(database: Database, *, now: dt.datetime, limit: int = 1000) -> int:
    """Give schedules without a next run time their first one (new or re-enabled schedules)."""
    with database.session(write=True) as session:
        fresh = list(
            session.scalars(
                select(Schedule)
                .where(Schedule.enabled.is_(True), Schedule.next_run_at.is_(None))
                .limit(limit)
                .with_for_update(skip_locked=True)
            )
        )
        for schedule in fresh:
            schedule.next_run_at = next_run_after(ScheduleSpec.from_row(schedule), now)
        return len(fresh)


def oldest_due_lag(database: Database, *, now: dt.datetime) -> float:
    """Seconds the most overdue enabled schedule has been waiting (0 when none): a health signal."""
    with database.session() as session:
        oldest = session.scalar(
            select(Schedule.next_run_at)
            .where(Schedule.enabled.is_(True), Schedule.next_run_at <= now)
            .order_by(Schedule.next_run_at)
            .limit(1)
        )
    return max(0.0, (now - oldest).total_seconds()) if oldest else 0.0
