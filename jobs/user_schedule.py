"""Create, change and switch off one user's export schedule (the row the dispatcher reads).

Why every change goes through here: the dispatcher only looks at `next_run_at`, so a
schedule whose settings change must get its next run recomputed at once, or it
would keep firing at the old time until then. Clearing a pause (a permanent failure
the user has now fixed) happens here too. Moving the time or zone never causes a
second run in a period that already had one (the (user, period) key on export runs
refuses it); a new frequency has periods of its own, so it may run once more.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import TypeVar
from zoneinfo import ZoneInfo

from sqlalchemy import select
from sqlalchemy.orm import Session

from jobs.schedule import ScheduleSpec, next_run_after
from store import Schedule, User

T = TypeVar("T")
# The IANA names of UTC itself: a time in one of them needs no "in UTC" beside it.
_UTC_NAMES = frozenset({"UTC", "Etc/UTC", "Etc/UCT", "UCT", "Universal", "Etc/Universal", "Zulu", "Etc/Zulu"})
WEEKDAYS = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")


@dataclass(frozen=True)
class ScheduleChange:
    """The settings to change; None keeps what the schedule has (or the default for a new one)."""

    frequency: str | None = None
    time_of_day: str | None = None
    timezone: str | None = None
    weekday: int | None = None
    day_of_month: int | None = None


def find_schedule(session: Session, user: User) -> Schedule | None:
    return session.scalar(select(Schedule).where(Schedule.user_id == user.id))


def save_schedule(session: Session, user: User, change: ScheduleChange, *, now: dt.datetime) -> Schedule:
    """Apply `change` (validated first: nothing is written if any field is wrong) and enable the schedule.

    A new schedule is weekly on Monday at 02:00 in the user's own time zone unless
    `change` says otherwise.
    """
    row = find_schedule(session, user)
    current = row or Schedule(
        frequency="weekly", time_of_day="02:00", timezone=user.timezone, weekday=0, day_of_month=1
    )
    spec = ScheduleSpec(
        frequency=_pick(change.frequency, current.frequency),
        time_of_day=_pick(change.time_of_day, current.time_of_day),
        timezone=_pick(change.timezone, current.timezone),
        weekday=_pick(change.weekday, current.weekday),
        day_of_month=_pick(change.day_of_month, current.day_of_month),
        user_id=user.id,
    )
    spec.validate()
    if row is None:
        row = Schedule(user_id=user.id)
        session.add(row)
    row.frequency, row.time_of_day, row.timezone = spec.frequency, spec.time_of_day, spec.timezone
    row.weekday, row.day_of_month = spec.weekday, spec.day_of_month
    if not row.enabled:  # a new row, or one switched off
        # Switched on now: a missed-run alert measures a silence from here at the earliest.
        row.enabled_at = now
    row.enabled, row.paused_reason = True, None
    row.next_run_at = next_run_after(spec, now)
    session.flush()
    return row


def switch_off(session: Session, user: User) -> bool:
    """Stop scheduled exports for `user`; False if there was no schedule. Archives are kept."""
    row = find_schedule(session, user)
    if row is None:
        return False
    row.enabled, row.next_run_at = False, None
    session.flush()
    return True


def describe(row: Schedule | None) -> str:
    """One line a person can check: what runs when, and the next run in the user's zone and UTC."""
    if row is None:
        return "No export schedule."
    spec = ScheduleSpec.from_row(row)
    when = {
        "daily": "every day",
        "weekly": f"every {WEEKDAYS[spec.weekday].capitalize()}",
        "monthly": f"on day {spec.day_of_month} of every month (or its last day)",
    }[spec.frequency]
    text = f"{spec.frequency.capitalize()}: {when} at {spec.time_of_day} {spec.timezone} (plus a fixed per-user delay)."
    if not row.enabled:
        # The reason says who paused it ("Paused by Lifeboat support. ..."): "Paused: Paused by" said it twice.
        reason = f" {row.paused_reason}" if row.paused_reason else ""
        return f"{text} Switched off.{reason}"
    if row.next_run_at is not None:
        text += f" Next run: {next_run_text(row.next_run_at, spec.timezone)}."
    return text


def next_run_text(moment: dt.datetime, zone: str) -> str:
    """`moment` in the user's `zone`, then in UTC only where that reads differently.

    Why not always both: for a user in UTC (or a zone on UTC+0 that day) the two
    are the same text, and "04:02 UTC (04:02 UTC)" reads like a mistake.
    """
    local = f"{moment.astimezone(ZoneInfo(zone)):%Y-%m-%d %H:%M}"
    utc = f"{moment.astimezone(dt.UTC):%Y-%m-%d %H:%M}"
    if local != utc:
        return f"{local} {zone} ({utc} UTC)"
    return f"{local} {zone}" if zone in _UTC_NAMES else f"{local} {zone} (the same in UTC)"


def _pick(new: T | None, old: T) -> T:
    return old if new is None else new
