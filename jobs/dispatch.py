"""The dispatcher's tick: turn due schedules into queued runs, exactly once per period.

Why it is safe to run several dispatchers: due schedules are locked with
`FOR UPDATE SKIP LOCKED` on PostgreSQL (SQLite serialises writers with
BEGIN IMMEDIATE), and runs are inserted with ON CONFLICT DO NOTHING against
the unique (user, period) key and the one-active-run-per-user index. Two
dispatchers that both see a schedule as due create one run between them.

After downtime a schedule is due once, whatever it missed: the run covers the
latest missed period and the next run is computed from now, so a week offline
gives one catch-up run per user, not seven.
"""

from __future__ import annotations

import datetime as dt
import logging
from dataclasses import dataclass
from typing import Any

from sqlalchemy import insert, select, text, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from jobs.schedule import ScheduleSpec, jitter, latest_due, next_run_after, period_key
from store import Database, ExportRun, RunEvent, RunState, Schedule
from store.runs import new_id

log = logging.getLogger("lifeboat.dispatch")
_QUEUED = "Scheduled export."


@dataclass(frozen=True)
class TickResult:
    due: int
    created: list[str]


def _insert(database: Database, table: Any) -> Any:
    dialect = postgresql if database.engine.dialect.name == "postgresql" else sqlite
    return dialect.insert(table)


def tick(database: Database, *, now: dt.datetime, limit: int = 1000) -> TickResult:
    """Claim up to `limit` due schedules, queue one run each, and move them to their next time."""
    with database.session(write=True) as session:
        schedules = list(
            session.scalars(
                select(Schedule)
                .where(Schedule.enabled.is_(True), Schedule.next_run_at <= now)
                .order_by(Schedule.next_run_at)
                .limit(limit)
                .with_for_update(skip_locked=True)
            )
        )
        if not schedules:
            return TickResult(due=0, created=[])
        run_rows: list[dict[str, Any]] = []
        schedule_rows: list[dict[str, Any]] = []
        times = _RunTimes()
        for schedule in schedules:
            spec = ScheduleSpec.from_row(schedule)
            fired, upcoming = _due_and_next(times, spec, schedule.next_run_at, now)
            key = period_key(spec, fired)
            run_rows.append(
                {
                    "id": new_id(),
                    "user_id": schedule.user_id,
                    "trigger": "schedule",
                    "period_key": key,
                    "state": RunState.QUEUED,
                    "not_before": now,
                    "created_at": now,
                    "attempt": 0,
                    "max_attempts": 5,
                    "progress": 0,
                }
            )
            schedule_rows.append({"id": schedule.id, "next_run_at": upcoming, "last_period_key": key})
        if database.engine.dialect.name == "postgresql":
            created = _queue_on_postgresql(session, run_rows, schedule_rows, now)
        else:
            created = _queue(database, session, run_rows, schedule_rows, now)
    if len(created) < len(run_rows):
        log.info(
            "some due schedules already had a run for the period or an active run",
            extra={"due": len(run_rows), "created": len(created)},
        )
    return TickResult(due=len(run_rows), created=created)


def _queue(
    database: Database,
    session: Session,
    run_rows: list[dict[str, Any]],
    schedule_rows: list[dict[str, Any]],
    now: dt.datetime,
) -> list[str]:
    """Insert the runs (skipping conflicts), their history, and move the schedules on."""
    statement = _insert(database, ExportRun).on_conflict_do_nothing().returning(ExportRun.id)
    created = list(session.scalars(statement, run_rows))
    session.execute(update(Schedule), schedule_rows)
    if created:
        session.execute(
            insert(RunEvent),
            [
                {"run_id": run_id, "at": now, "level": "info", "kind": "queued", "message": _QUEUED}
                for run_id in created
            ],
        )
    return created


# The same as `_queue` in two statements, the rows passed as arrays: a multi-row INSERT of
# 1,000 runs plus their events and 1,000 schedule UPDATEs took ~250 ms, these take ~120 ms.
# Columns left out take the same values as `_queue` gives them (see `tick`).
_QUEUE_RUNS = text("""
WITH new AS (
    INSERT INTO export_runs (
        id, user_id, trigger, period_key, state, not_before, created_at, attempt, max_attempts,
        progress
    )
    SELECT r.id, r.user_id, 'schedule', r.period_key, 'queued', :now, :now, 0, 5, 0
    FROM unnest(CAST(:ids AS varchar[]), CAST(:user_ids AS integer[]), CAST(:keys AS varchar[]))
        AS r(id, user_id, period_key)
    ON CONFLICT DO NOTHING
    RETURNING id
), events AS (
    INSERT INTO run_events (run_id, at, level, kind, message)
    SELECT id, :now, 'info', 'queued', :message FROM new
)
SELECT id FROM new
""")
_MOVE_SCHEDULES = text("""
UPDATE schedules AS s SET next_run_at = u.next_run_at, last_period_key = u.period_key
FROM unnest(CAST(:ids AS integer[]), CAST(:next_runs AS timestamp[]), CAST(:keys AS varchar[]))
    AS u(id, next_run_at, period_key)
WHERE s.id = u.id
""")


def _queue_on_postgresql(
    session: Session,
    run_rows: list[dict[str, Any]],
    schedule_rows: list[dict[str, Any]],
    now: dt.datetime,
) -> list[str]:
    created = list(
        session.scalars(
            _QUEUE_RUNS,
            {
                "now": _naive_utc(now),
                "message": _QUEUED,
                "ids": [row["id"] for row in run_rows],
                "user_ids": [row["user_id"] for row in run_rows],
                "keys": [row["period_key"] for row in run_rows],
            },
        )
    )
    session.execute(
        _MOVE_SCHEDULES,
        {
            "ids": [row["id"] for row in schedule_rows],
            "next_runs": [_naive_utc(row["next_run_at"]) for row in schedule_rows],
            "keys": [row["last_period_key"] for row in schedule_rows],
        },
    )
    return created


def _naive_utc(moment: dt.datetime) -> dt.datetime:
    """The store keeps naive UTC (`store.base.UTCDateTime`); raw SQL must bind it that way too."""
    return moment.astimezone(dt.UTC).replace(tzinfo=None)


class _RunTimes:
    """`next_run_after` for many schedules in one tick, sharing the calendar walk between users.

    Why: the walk (APScheduler's cron arithmetic) costs about 0.1 ms, and a tick of
    1,000 due schedules needed four per schedule (0.9 s, measured with
    bench/scheduler_scale.py). Users with the same schedule differ only by their
    fixed jitter: `next_run_after(spec, t)` is the first un-jittered run strictly
    after `t - jitter`, plus the jitter. A walk from threshold `a` that found
    un-jittered run `b` answers every threshold in `[a, b)` with `b` as well, so
    most users' answers are a lookup.
    """

    def __init__(self) -> None:
        self._spans: dict[tuple[object, ...], list[tuple[dt.datetime, dt.datetime]]] = {}
        self._shifts: dict[int, dt.timedelta] = {}

    def after(self, spec: ScheduleSpec, moment: dt.datetime) -> dt.datetime:
        shift = self._shifts.get(spec.user_id)
        if shift is None:
            shift = self._shifts[spec.user_id] = jitter(spec)
        threshold = moment - shift
        weekday = spec.weekday if spec.frequency == "weekly" else 0
        day = spec.day_of_month if spec.frequency == "monthly" else 0
        plan = (spec.frequency, spec.time_of_day, spec.timezone, weekday, day)
        spans = self._spans.setdefault(plan, [])
        for low, base in spans:
            if low <= threshold < base:
                return base + shift
        result = next_run_after(spec, moment)
        spans.append((threshold, result - shift))
        return result


def _due_and_next(
    times: _RunTimes, spec: ScheduleSpec, stored: dt.datetime | None, now: dt.datetime
) -> tuple[dt.datetime, dt.datetime]:
    """The run that came due (the latest at or before `now`) and the first one after `now`.

    Usually the stored `next_run_at` is the run that came due; it is used only if it
    is a run time of the schedule as it is now (an edited schedule may keep a stale
    one) and no later run is due (after downtime only the latest missed period is
    run). Otherwise `latest_due` searches, as before.
    """
    upcoming = times.after(spec, now)
    if (
        stored is not None
        and stored <= now
        and times.after(spec, stored - _SECOND) == stored
        and times.after(spec, stored) == upcoming
    ):
        return stored, upcoming
    return latest_due(spec, now) or stored or now, upcoming


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
