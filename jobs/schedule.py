"""When each user's export is due: the pure time arithmetic of export schedules.

Why a separate, pure module: the dispatcher stores `next_run_at` on each
schedule row and claims due rows with one conditional UPDATE; everything it
needs to know about time (the next run, the run to catch up after downtime,
the period a run belongs to) is computed here from plain values and a `now`
the caller passes in. No database, no clock.

The rules, in the user's own time zone:

* A schedule fires once per *scheduled local date*: every date (daily), one
  weekday (weekly) or one day of the month, clamped to the month's last day
  (monthly, so "the 31st" runs on 28/29 February and 30 April).
* DST gap (spring forward): a wall time that does not exist is read with the
  offset in force before the gap, so it moves later by the gap's length
  ("02:30" in Europe/Berlin on 2026-03-29 runs at 03:30 CEST). DST overlap
  (fall back): a wall time that happens twice runs at its first occurrence only.
* Each user's runs are shifted by a fixed `jitter` so that 100,000 users who
  chose "daily at 02:00" do not all start at the same instant.

Calendar matching is done by APScheduler 3's `CronTrigger`, but on the *wall
clock* (the trigger runs in UTC over local wall times), and the conversion from
wall time to instant is done here with `zoneinfo`. Why not give the trigger the
user's zone directly: measured with APScheduler 3.11.3 and zoneinfo, a zoned
`CronTrigger` fires twice on fall-back days (02:30 CEST and 02:30 CET in
Berlin), silently skips a spring-forward day's shifted run when the search
starts inside the gap's hour (Berlin 02:30, searched from 03:10 CEST), and
skips whole days after a transition when it increments the day across it
("daily 00:00" in America/Santiago never fires on 2026-09-06; "daily 00:00" in
Berlin searched from 00:25 on 2026-03-29 returns 03-31). Over wall times in UTC
there are no transitions, so its calendar arithmetic is exact.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import re
from dataclasses import dataclass
from functools import lru_cache
from importlib import resources
from typing import Protocol
from zoneinfo import ZoneInfo

from apscheduler.triggers.cron import CronTrigger

from errors import InvalidInput

FREQUENCIES = ("daily", "weekly", "monthly")

# How far a user's runs are spread after the chosen time: wide enough to flatten
# the load of everyone choosing 02:00, short enough that the run still happens
# "at night". Always shorter than the period, so the order of runs is kept.
JITTER_WINDOWS: dict[str, dt.timedelta] = {
    "daily": dt.timedelta(minutes=30),
    "weekly": dt.timedelta(hours=2),
    "monthly": dt.timedelta(hours=4),
}

# The longest gap between two runs of a schedule (a month is at most 31 days).
PERIODS: dict[str, dt.timedelta] = {
    "daily": dt.timedelta(days=1),
    "weekly": dt.timedelta(days=7),
    "monthly": dt.timedelta(days=31),
}

# A search starts this much earlier than asked, in wall time, so that it never
# begins past a date whose run was moved later by a DST gap, nor after a wall
# time that a fall-back repeats. Longer than any UTC-offset change there has been.
_LOOKBACK = dt.timedelta(days=2)
_MAX_STEPS = 64  # a handful suffice; the bound turns a logic error into an exception
_TIME = re.compile(r"([01][0-9]|2[0-3]):([0-5][0-9])")
_WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
_UTC = dt.UTC


class ScheduleRow(Protocol):
    """What `ScheduleSpec.from_row` reads: the attributes of `store.schedules.Schedule`."""

    user_id: int
    frequency: str
    time_of_day: str
    weekday: int
    day_of_month: int
    timezone: str


@dataclass(frozen=True, kw_only=True)
class ScheduleSpec:
    """One user's schedule as plain values: what the time arithmetic needs and nothing more.

    Keyword-only because several fields are small integers that are easy to swap.
    """

    frequency: str  # "daily" | "weekly" | "monthly"
    time_of_day: str  # "HH:MM", 24-hour clock, the user's wall time
    timezone: str  # IANA zone name, e.g. "Europe/Berlin"
    weekday: int = 0  # 0 = Monday; used by weekly
    day_of_month: int = 1  # 1..31, clamped to the month's last day; used by monthly
    user_id: int

    @classmethod
    def from_row(cls, row: ScheduleRow) -> ScheduleSpec:
        """Copy the schedule fields of a row (duck-typed; no database access)."""
        return cls(
            frequency=row.frequency,
            time_of_day=row.time_of_day,
            timezone=row.timezone,
            weekday=row.weekday,
            day_of_month=row.day_of_month,
            user_id=row.user_id,
        )

    def validate(self) -> None:
        """Raise `InvalidInput` (a `ValueError`) naming every field the user must fix."""
        problems = _problems(self)
        if problems:
            raise InvalidInput(
                "The export schedule is not valid: " + " ".join(msg for _, msg in problems),
                problems=problems,
            )


def jitter(spec: ScheduleSpec) -> dt.timedelta:
    """Return this user's fixed offset after the scheduled time, in `[0, window)`.

    Derived from SHA-256 of the user id, not `hash()`: it must be the same in
    every process and across restarts, or two dispatchers would disagree on
    when (and in which period) a run is due.
    """
    spec.validate()
    window = int(JITTER_WINDOWS[spec.frequency].total_seconds())
    digest = hashlib.sha256(f"lifeboat:schedule-jitter:{spec.user_id}".encode()).digest()
    return dt.timedelta(seconds=int.from_bytes(digest[:8], "big") % window)


def next_run_after(spec: ScheduleSpec, after: dt.datetime) -> dt.datetime:
    """Return the first run strictly after `after` (aware), as aware UTC, jitter included.

    The jitter is subtracted before the search and added back after it, so the
    result is never <= `after` and never goes backwards as `after` grows.
    """
    plan = _plan_for(spec)
    shift = jitter(spec)
    return _next_base(plan, _aware(after, "after") - shift) + shift


def latest_due(spec: ScheduleSpec, now: dt.datetime) -> dt.datetime | None:
    """Return the most recent run at or before `now`, or None if none in two periods.

    Used for catch-up: after downtime the dispatcher makes one run, for the
    latest missed period, and then continues with `next_run_after(now)`; the
    periods in between are deliberately not replayed.
    """
    spec.validate()
    now = _aware(now, "now")
    latest = None
    fire = next_run_after(spec, now - 2 * PERIODS[spec.frequency])
    for _ in range(_MAX_STEPS):
        if fire > now:
            return latest
        latest = fire
        fire = next_run_after(spec, fire)
    raise RuntimeError(f"no end to the runs of {spec!r} before {now.isoformat()}")


def period_key(spec: ScheduleSpec, fire_time: dt.datetime) -> str:
    """Name the period a run belongs to, in the user's zone: `daily:2026-11-25`,
    `weekly:2026-W48` (ISO week), `monthly:2026-11`.

    The key is computed from the *scheduled local date*, not from the fire
    time's own date, so a jitter that carries a 23:50 run past midnight, or a
    DST gap that moves it, does not change the period. Two dispatchers that
    compute it for the same instant get the same string; the database's unique
    (user, period_key) is what stops a period from running twice.
    """
    plan = _plan_for(spec)
    day = _scheduled_date(plan, _aware(fire_time, "fire_time") - jitter(spec))
    if spec.frequency == "daily":
        return f"daily:{day.isoformat()}"
    if spec.frequency == "weekly":
        year, week, _ = day.isocalendar()
        return f"weekly:{year:04d}-W{week:02d}"
    return f"monthly:{day.year:04d}-{day.month:02d}"


# --- validation ---------------------------------------------------------------


@lru_cache(maxsize=1)
def _zone_names() -> frozenset[str]:
    """The IANA zone names, from the `tzdata` package so they do not depend on the machine.

    (`zoneinfo.available_timezones()` also lists the system's `localtime`,
    which is whatever zone the server happens to be in.)
    """
    text = resources.files("tzdata").joinpath("zones").read_text(encoding="utf-8")
    return frozenset(text.split()) - {"Factory"}


zone_names = _zone_names  # public: the API documents the accepted names (web.api.schemas)


def _problems(spec: ScheduleSpec) -> list[tuple[str, str]]:
    problems: list[tuple[str, str]] = []
    if not isinstance(spec.frequency, str) or spec.frequency not in FREQUENCIES:
        problems.append(("frequency", f"Choose daily, weekly or monthly, not {spec.frequency!r}."))
    if not isinstance(spec.time_of_day, str) or not _TIME.fullmatch(spec.time_of_day):
        problems.append(
            (
                "time_of_day",
                f"Give the time as HH:MM on a 24-hour clock, such as 02:00 or 23:30, not {spec.time_of_day!r}.",
            )
        )
    if not isinstance(spec.timezone, str) or spec.timezone not in _zone_names():
        problems.append(
            (
                "timezone",
                f"{spec.timezone!r} is not a time zone name; use one such as Europe/Berlin or America/New_York.",
            )
        )
    if not _int_in(spec.weekday, 0, 6):
        problems.append(("weekday", f"Choose a weekday from 0 (Monday) to 6 (Sunday), not {spec.weekday!r}."))
    if not _int_in(spec.day_of_month, 1, 31):
        problems.append(
            (
                "day_of_month",
                f"Choose a day of the month from 1 to 31 (months without it run on their "
                f"last day), not {spec.day_of_month!r}.",
            )
        )
    return problems


def _int_in(value: object, low: int, high: int) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and low <= value <= high


def _aware(value: dt.datetime, name: str) -> dt.datetime:
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValueError(f"{name} must be a timezone-aware datetime, got {value!r}")
    return value.astimezone(_UTC)


# --- the calendar walk --------------------------------------------------------


@dataclass(frozen=True)
class _Candidates:
    """One wall-clock `CronTrigger` and the latest day of month it may fire on.

    `max_day` is None when every fire time counts; for "monthly on the 31st"
    the `day="last"` trigger only counts in months shorter than the 31st.
    """

    trigger: CronTrigger
    max_day: int | None = None


@dataclass(frozen=True)
class _Plan:
    hour: int
    minute: int
    zone: ZoneInfo
    sources: tuple[_Candidates, ...]


def _plan_for(spec: ScheduleSpec) -> _Plan:
    spec.validate()
    return _plan(spec.frequency, spec.time_of_day, spec.timezone, spec.weekday, spec.day_of_month)


@lru_cache(maxsize=4096)
def _plan(frequency: str, time_of_day: str, timezone: str, weekday: int, day: int) -> _Plan:
    """Build (once per distinct schedule, shared by all users who chose it) the triggers."""
    hour, minute = (int(part) for part in time_of_day.split(":"))

    def cron(**fields: object) -> CronTrigger:
        # UTC here means "no transitions": the trigger walks the user's wall clock.
        return CronTrigger(hour=hour, minute=minute, second=0, timezone=_UTC, **fields)

    if frequency == "daily":
        sources: tuple[_Candidates, ...] = (_Candidates(cron()),)
    elif frequency == "weekly":
        sources = (_Candidates(cron(day_of_week=_WEEKDAYS[weekday])),)
    elif day <= 28:
        sources = (_Candidates(cron(day=day)),)
    else:
        # day=N alone skips shorter months; day="last" alone is wrong in longer
        # ones. Take the N-th where it exists, the last day where it does not.
        sources = (_Candidates(cron(day=day)), _Candidates(cron(day="last"), max_day=day - 1))
    return _Plan(hour, minute, ZoneInfo(timezone), sources)


def _next_base(plan: _Plan, threshold: dt.datetime) -> dt.datetime:
    """Return the first un-jittered run instant strictly after `threshold` (UTC)."""
    return min(_first_after(plan, source, threshold) for source in plan.sources)


def _first_after(plan: _Plan, source: _Candidates, threshold: dt.datetime) -> dt.datetime:
    # Wall times, labelled UTC for the trigger's sake.
    cursor = (threshold - _LOOKBACK).astimezone(plan.zone).replace(tzinfo=_UTC)
    for _ in range(_MAX_STEPS):
        wall = source.trigger.get_next_fire_time(None, cursor)
        day = wall.date()
        if source.max_day is None or day.day <= source.max_day:
            instant = _resolve(plan, day)
            # Strictly later: also drops a date that a DST change made coincide
            # with the previous one (a zone skipping a whole calendar day).
            if instant > threshold:
                return instant
        cursor = wall + dt.timedelta(seconds=1)
    raise RuntimeError(f"no run found after {threshold.isoformat()}")


def _resolve(plan: _Plan, day: dt.date) -> dt.datetime:
    """Turn the scheduled wall time on `day` into an instant.

    `fold=0` gives exactly the policy in the module docstring: in a gap it uses
    the offset from before the gap (the run moves later by the gap's length), in
    an overlap it picks the first of the two instants.
    """
    wall = dt.datetime(day.year, day.month, day.day, plan.hour, plan.minute, tzinfo=plan.zone)
    return wall.astimezone(_UTC)


def _scheduled_date(plan: _Plan, base: dt.datetime) -> dt.date:
    """Return the local date whose scheduled run is `base`.

    Usually the local date of `base`; the day before when a DST gap pushed a
    late-evening run past midnight. For an instant that is not a scheduled run,
    the local date it falls on.
    """
    local_day = base.astimezone(plan.zone).date()
    for day in (local_day, local_day - dt.timedelta(days=1)):
        if _resolve(plan, day) == base:
            return day
    return local_day
