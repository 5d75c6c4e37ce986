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

from sqlalchemy import insert, select, update
from sqlalchemy.dialects import postgresql, sqlite

from jobs.schedule import ScheduleSpec, latest_due, next_run_after, period_key
from store import Database, ExportRun, RunEvent, RunState, Schedule
from store.runs import new_id

log = logging.getLogger("lifeboat.dispatch")


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
        for schedule in schedules:
            spec = ScheduleSpec.from_row(schedule)
            fired = latest_due(spec, now) or schedule.next_run_at or now
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
            schedule_rows.append(
                {"id": schedule.id, "next_run_at": next_run_after(spec, now), "last_period_key": key}
            )
        statement = _insert(database, ExportRun).on_conflict_do_nothing().returning(ExportRun.id)
        created = list(session.scalars(statement, run_rows))
        session.execute(update(Schedule), schedule_rows)
        if created:
            session.execute(
                insert(RunEvent),
                [
                    {"run_id": run_id, "at": now, "level": "info", "kind": "queued", "message": "Scheduled export."}
                    for run_id in created
                ],
            )
    if len(created) < len(run_rows):
        log.info("some due schedules already had a run for the period or an active run",
                 extra={"due": len(run_rows), "created": len(created)})
    return TickResult(due=len(run_rows), created=created)


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
