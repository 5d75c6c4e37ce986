"""The dispatcher's tick on PostgreSQL: conflicts skipped, and its shortcuts exact.

Why here and not with the SQLite unit tests: the PostgreSQL tick queues runs
with its own statements (`unnest` arrays, `ON CONFLICT DO NOTHING` in a CTE),
and the shortcut that avoids most calendar walks is what makes a tick of 1,000
due schedules fast enough (bench/scheduler_scale.py).
"""

from __future__ import annotations

import datetime as dt
import random

import pytest
from sqlalchemy import select, update

from jobs import dispatch
from jobs.schedule import ScheduleSpec, latest_due, next_run_after
from store import Database, ExportRun, RunEvent, RunState, Schedule
from tests.scale.conftest import add_users
from tests.scale.test_month import START, TIMES, ZONES

pytestmark = pytest.mark.scale


def test_a_dispatcher_with_a_stale_view_creates_no_second_run_on_postgresql(
    pg_db: Database,
) -> None:
    """`ON CONFLICT DO NOTHING` against both unique keys, as PostgreSQL (not SQLite) runs it."""
    users = add_users(pg_db, 2, zones=["Europe/Berlin"], times=["02:00"])
    now = dt.datetime(2026, 11, 25, 4, 0, tzinfo=dt.UTC)

    def make_due() -> None:
        with pg_db.session(write=True) as session:
            session.execute(update(Schedule).values(next_run_at=now - dt.timedelta(minutes=5)))

    make_due()
    first = dispatch.tick(pg_db, now=now)
    assert first.due == 2 and len(first.created) == 2
    with pg_db.session(write=True) as session:  # the first user's run is over; the second's still queued
        session.execute(update(ExportRun).where(ExportRun.user_id == users[0]).values(state=RunState.DELIVERED))
    # A dispatcher that read both schedules before they were moved: same period, no new run.
    make_due()
    stale = dispatch.tick(pg_db, now=now)
    assert stale.due == 2 and stale.created == []
    # The next day, only the user without an active run gets one (one active run per user).
    tomorrow = dispatch.tick(pg_db, now=now + dt.timedelta(days=1))
    with pg_db.session() as session:
        rows = session.execute(select(ExportRun.user_id, ExportRun.period_key)).all()
    assert sorted((r.user_id, r.period_key) for r in rows) == [
        (users[0], "daily:2026-11-25"),
        (users[0], "daily:2026-11-26"),
        (users[1], "daily:2026-11-25"),
    ]
    assert len(tomorrow.created) == 1
    with pg_db.session() as session:  # every new run has its "queued" history line
        queued = session.scalars(select(RunEvent.run_id).where(RunEvent.kind == "queued"))
        assert sorted(queued) == sorted([*first.created, *tomorrow.created])


def test_the_ticks_shortcut_finds_the_run_latest_due_finds() -> None:
    """The tick trusts a schedule's stored `next_run_at` and shares calendar walks between users
    (`dispatch._due_and_next`); it must give what `latest_due` and `next_run_after` give, for
    stored times that are the due run, an older run (downtime) or no run at all (stale)."""
    rng = random.Random(4)
    zones = [*ZONES, "Australia/Lord_Howe", "America/Santiago", "Asia/Kathmandu", "Pacific/Chatham"]
    checked = 0
    for _ in range(60):
        times = dispatch._RunTimes()  # one per tick, shared by the tick's schedules
        now = START + dt.timedelta(seconds=rng.randrange(365 * 86_400))
        for _ in range(20):
            spec = ScheduleSpec(
                frequency=rng.choice(["daily", "weekly", "monthly"]),
                time_of_day=rng.choice([*TIMES, "01:30"]),
                timezone=rng.choice(zones),
                weekday=rng.randrange(7),
                day_of_month=rng.randrange(1, 32),
                user_id=rng.randrange(1, 10**6),
            )
            due = latest_due(spec, now)
            stored = rng.choice(
                [
                    due,
                    next_run_after(spec, now - dt.timedelta(days=rng.randrange(1, 60))),
                    now - dt.timedelta(seconds=rng.randrange(40 * 86_400)),
                ]
            )
            if stored is None or stored > now:
                continue
            expected = (due or stored, next_run_after(spec, now))
            assert dispatch._due_and_next(times, spec, stored, now) == expected, (spec, stored, now)
            checked += 1
    assert checked > 900


def test_a_tick_cut_into_parts_queues_each_due_schedule_once_on_postgresql(
    pg_db: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Parts of 3 claimed by two threads: every due schedule gets one run and moves on, `limit` holds,
    and schedules already claimed by another dispatcher are left to it (SKIP LOCKED)."""
    monkeypatch.setattr(dispatch, "_PART", 3)
    users = add_users(pg_db, 14, zones=["UTC", "Europe/Berlin"], times=["02:00", "03:30"])
    now = dt.datetime(2026, 11, 25, 12, 0, tzinfo=dt.UTC)
    with pg_db.session(write=True) as session:
        session.execute(update(Schedule).values(next_run_at=now - dt.timedelta(hours=1)))
    with pg_db.session(write=True) as other:  # another dispatcher holds two of them
        held = other.scalars(select(Schedule.user_id).where(Schedule.user_id.in_(users[:2])).with_for_update()).all()
        first = dispatch.tick(pg_db, now=now, limit=10)
        assert first.due == 10 and len(set(first.created)) == 10
        rest = dispatch.tick(pg_db, now=now, limit=10)
        assert rest.due == 2 and len(rest.created) == 2
        assert dispatch.tick(pg_db, now=now).due == 0
    with pg_db.session() as session:
        runs = session.execute(select(ExportRun.user_id, ExportRun.id)).all()
        moved = session.scalars(select(Schedule.user_id).where(Schedule.next_run_at > now)).all()
        queued = session.scalars(select(RunEvent.run_id).where(RunEvent.kind == "queued")).all()
    assert sorted(user for user, _ in runs) == sorted(set(users) - set(held))
    assert sorted(moved) == sorted(set(users) - set(held))
    assert sorted(queued) == sorted([*first.created, *rest.created]) == sorted(run for _, run in runs)
