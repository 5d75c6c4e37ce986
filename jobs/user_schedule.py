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

from jobs.schedule import FREQUENCIES, JITTER_WINDOWS, ScheduleSpec, jitter, next_run_after
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
    shorter = " (or the last day of a shorter month)" if spec.day_of_month > 28 else ""
    when = {
        "daily": "every day",
        "weekly": f"every {WEEKDAYS[spec.weekday].capitalize()}",
        "monthly": f"on day {spec.day_of_month} of every month{shorter}",
    }[spec.frequency]
    text = f"{spec.frequency.capitalize()}: {when} at {spec.time_of_day} {spec.timezone}, {delay_words(spec)}."
    if not row.enabled:
        # The reason says who paused it ("Paused by Lifeboat support. ..."): "Paused: Paused by" said it twice.
        reason = f" {row.paused_reason}" if row.paused_reason else ""
        return f"{text} Switched off.{reason}"
    if row.next_run_at is not None:
        text += f" Next run: {next_run_text(row.next_run_at, spec.timezone)}."
    return text


def span_words(span: dt.timedelta) -> str:
    """`30 minutes`, `2 hours`, `1 hour 32 minutes`: a delay in words (whole minutes)."""
    hours, minutes = divmod(int(span.total_seconds()) // 60, 60)
    parts = [f"{hours} hour{'s' if hours != 1 else ''}"] if hours else []
    if minutes or not hours:
        parts.append(f"{minutes} minute{'s' if minutes != 1 else ''}")
    return " ".join(parts)


def delay_words(spec: ScheduleSpec) -> str:
    """This account's fixed delay after the chosen time, in words ("starting 1 hour 32 minutes later")."""
    return f"starting {span_words(jitter(spec))} later (this account's fixed delay)"


def fixed_delay(row: Schedule) -> dt.timedelta:
    """How long after the chosen time this account's runs start (the API's `delay_seconds`)."""
    return jitter(ScheduleSpec.from_row(row))


def preview_delay_words(spec: ScheduleSpec) -> str:
    """Under a preview of next runs: why each is later than the chosen time (user trial 9)."""
    return f"Each time is {span_words(jitter(spec))} after the chosen time: this account's fixed delay."


def own_delay_words(row: Schedule | None) -> str | None:
    """For the settings page: when this account's saved schedule really starts, or None when it is off."""
    if row is None or not row.enabled:
        return None
    spec = ScheduleSpec.from_row(row)
    return f"Your {spec.frequency} exports start {span_words(jitter(spec))} after the chosen time."


def spread_words() -> str:
    """How far runs are spread after the chosen time, per frequency, from `JITTER_WINDOWS` (no copy of them).

    Why say it: "a fixed few minutes" was untrue for weekly (up to 2 hours) and
    monthly (4 hours) schedules, and a run chosen late at night may start on the
    next day (user trial 7).
    """
    return (
        "Each account starts at its own fixed delay after the chosen time, so that not everyone's export "
        "starts at once: up to "
        + ", ".join(f"{span_words(JITTER_WINDOWS[name])} for {name}" for name in FREQUENCIES[:-1])
        + f" and {span_words(JITTER_WINDOWS[FREQUENCIES[-1]])} for {FREQUENCIES[-1]} exports. "
        "So a run chosen late in the day can start on the next day; the times under Next runs are the real ones."
    )


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
