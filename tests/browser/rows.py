"""Rows the browser tests put behind the dashboard: archives, runs and a schedule for Alice."""

from __future__ import annotations

import datetime as dt

from jobs.user_schedule import ScheduleChange, save_schedule
from store import Archive, Database, ExportRun, User

T0 = dt.datetime(2026, 11, 20, 9, 30, tzinfo=dt.UTC)


def add_archives(db: Database, user_id: int, n: int, *, size: int = 2048) -> None:
    with db.session(write=True) as session:
        for i in range(n):
            session.add(
                Archive(
                    user_id=user_id,
                    filename=f"lifeboat-alice-{i}.zip",
                    relpath=f"{user_id}/missing-{i}.zip",
                    sha256=f"{i:02d}" + "ab" * 31,
                    size=size * (i + 1),
                    contacts=3,
                    calendars=2,
                    events=4,
                    notes=3,
                    attachments=1,
                    created_at=T0 + dt.timedelta(days=i),
                )
            )


def add_run(db: Database, user_id: int, **values: object) -> str:
    with db.session(write=True) as session:
        run = ExportRun(user_id=user_id, trigger="manual", created_at=T0, not_before=T0, **values)
        session.add(run)
        session.flush()
        return run.id


def update_run(db: Database, run_id: str, **values: object) -> None:
    with db.session(write=True) as session:
        run = session.get(ExportRun, run_id)
        assert run is not None
        for key, value in values.items():
            setattr(run, key, value)


def set_schedule(db: Database, user_id: int, *, now: dt.datetime) -> None:
    with db.session(write=True) as session:
        user = session.get(User, user_id)
        assert user is not None
        save_schedule(session, user, ScheduleChange(frequency="daily", time_of_day="02:00"), now=now)
