"""Export schedules: one run per period in the user's zone, across DST, month ends and downtime.

Every time here is passed in; nothing reads the clock. `expected_next` is an
independent oracle (a plain walk over local dates with `zoneinfo`), so the
APScheduler-based implementation is checked against arithmetic that shares
none of its code.
"""

from __future__ import annotations

import calendar
import datetime as dt
import hashlib
import itertools
from collections import Counter
from types import SimpleNamespace
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from errors import InvalidInput
from jobs.schedule import (
    JITTER_WINDOWS,
    ScheduleSpec,
    jitter,
    latest_due,
    next_run_after,
    period_key,
)
from jobs.support_actions import PAUSED_BY_SUPPORT
from jobs.user_schedule import delay_words, describe
from store.schedules import Schedule
from tests.profiles import examples

UTC = dt.UTC
ZONES = [
    "UTC",
    "Europe/Berlin",
    "Europe/Dublin",  # "negative DST" in tzdata
    "America/New_York",
    "America/Los_Angeles",
    "America/Santiago",  # DST starts at midnight: 00:00 does not exist that day
    "America/St_Johns",  # -03:30
    "America/Havana",
    "Asia/Tokyo",
    "Asia/Kathmandu",  # +05:45
    "Australia/Lord_Howe",  # 30-minute DST shift
    "Pacific/Chatham",  # +12:45 / +13:45
    "Pacific/Kiritimati",  # +14
    "Pacific/Pago_Pago",  # -11
    "Africa/Casablanca",
]


def spec(**fields: Any) -> ScheduleSpec:
    values: dict[str, Any] = {
        "frequency": "daily",
        "time_of_day": "02:00",
        "timezone": "UTC",
        "user_id": 1,
    }
    values.update(fields)
    return ScheduleSpec(**values)


def utc(*parts: Any) -> dt.datetime:
    return dt.datetime(*parts).replace(tzinfo=UTC)


def at(zone: str, *parts: Any, fold: int = 0) -> dt.datetime:
    """An instant given as wall time in `zone`, as UTC."""
    return dt.datetime(*parts).replace(tzinfo=ZoneInfo(zone), fold=fold).astimezone(UTC)


def runs(s: ScheduleSpec, after: dt.datetime, count: int) -> list[dt.datetime]:
    out = []
    for _ in range(count):
        after = next_run_after(s, after)
        out.append(after)
    return out


def unjittered(s: ScheduleSpec, fire: dt.datetime) -> dt.datetime:
    return fire - jitter(s)


def local_dates(s: ScheduleSpec, fires: list[dt.datetime]) -> list[dt.date]:
    zone = ZoneInfo(s.timezone)
    return [unjittered(s, f).astimezone(zone).date() for f in fires]


def expected_next(s: ScheduleSpec, after: dt.datetime) -> dt.datetime:
    """Oracle: walk local dates one by one; first matching date's run after `after`."""
    zone = ZoneInfo(s.timezone)
    hour, minute = map(int, s.time_of_day.split(":"))
    shift = jitter(s)
    threshold = after - shift
    day = threshold.astimezone(zone).date() - dt.timedelta(days=3)
    while True:
        last = calendar.monthrange(day.year, day.month)[1]
        if (
            s.frequency == "daily"
            or (s.frequency == "weekly" and day.weekday() == s.weekday)
            or (s.frequency == "monthly" and day.day == min(s.day_of_month, last))
        ):
            # fold=0: in a gap the pre-gap offset (later instant), in an overlap the first.
            base = dt.datetime(day.year, day.month, day.day, hour, minute, tzinfo=zone)
            if base.astimezone(UTC) > threshold:
                return base.astimezone(UTC) + shift
        day += dt.timedelta(days=1)


def user_with_jitter(frequency: str, low: dt.timedelta, high: dt.timedelta) -> int:
    """The first user id whose jitter lies in [low, high): lets a test pick its edge case."""
    for user_id in range(1, 100_000):
        if low <= jitter(spec(frequency=frequency, user_id=user_id)) < high:
            return user_id
    raise AssertionError("no such user")


# --- basics -------------------------------------------------------------------


def test_it_runs_daily_at_the_chosen_time_plus_the_users_jitter() -> None:
    s = spec(time_of_day="02:00")
    fire = next_run_after(s, utc(2026, 11, 25, 4, 0))
    assert fire == utc(2026, 11, 26, 2, 0) + jitter(s)
    assert fire.tzinfo is UTC
    assert period_key(s, fire) == "daily:2026-11-26"


def test_it_runs_weekly_on_the_chosen_weekday() -> None:
    s = spec(frequency="weekly", weekday=4, time_of_day="06:15", timezone="Europe/Berlin")
    fires = runs(s, utc(2026, 11, 25, 4, 0), 3)  # a Wednesday
    assert [unjittered(s, f) for f in fires] == [
        at("Europe/Berlin", 2026, 11, 27, 6, 15),
        at("Europe/Berlin", 2026, 12, 4, 6, 15),
        at("Europe/Berlin", 2026, 12, 11, 6, 15),
    ]
    assert [period_key(s, f) for f in fires] == [
        "weekly:2026-W48",
        "weekly:2026-W49",
        "weekly:2026-W50",
    ]


def test_it_runs_monthly_on_the_chosen_day() -> None:
    s = spec(frequency="monthly", day_of_month=15, time_of_day="03:00")
    fires = runs(s, utc(2026, 11, 25), 3)
    assert [unjittered(s, f) for f in fires] == [
        utc(2026, 12, 15, 3),
        utc(2027, 1, 15, 3),
        utc(2027, 2, 15, 3),
    ]
    assert [period_key(s, f) for f in fires] == [
        "monthly:2026-12",
        "monthly:2027-01",
        "monthly:2027-02",
    ]


def test_it_runs_later_today_when_todays_time_has_not_come() -> None:
    s = spec(time_of_day="23:00")
    assert unjittered(s, next_run_after(s, utc(2026, 11, 25, 4))) == utc(2026, 11, 25, 23)


def test_it_never_returns_the_instant_it_was_given() -> None:
    s = spec()
    fire = next_run_after(s, utc(2026, 11, 25))
    assert next_run_after(s, fire) == fire + dt.timedelta(days=1)
    assert next_run_after(s, fire - dt.timedelta(microseconds=1)) == fire


def test_it_accepts_after_in_any_zone_and_answers_in_utc() -> None:
    s = spec(timezone="Asia/Tokyo")
    instant = utc(2026, 11, 25, 4)
    in_tokyo = instant.astimezone(ZoneInfo("Asia/Tokyo"))
    assert next_run_after(s, in_tokyo) == next_run_after(s, instant)
    assert next_run_after(s, in_tokyo).utcoffset() == dt.timedelta(0)


def test_it_refuses_a_naive_datetime() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        next_run_after(spec(), dt.datetime(2026, 11, 25, 4))


# --- east and west of UTC: periods follow the local date ------------------------


def test_it_keys_tokyo_mornings_by_the_tokyo_date() -> None:
    s = spec(time_of_day="08:00", timezone="Asia/Tokyo")
    fire = next_run_after(s, utc(2026, 11, 25, 0, 0))  # 09:00 in Tokyo, too late today
    assert unjittered(s, fire) == utc(2026, 11, 25, 23, 0)  # UTC date is still the 25th
    assert period_key(s, fire) == "daily:2026-11-26"


def test_it_keys_kiritimati_weekly_runs_by_the_local_iso_week() -> None:
    # +14: Monday 06:00 there is Sunday 16:00 UTC, the previous ISO week in UTC.
    s = spec(frequency="weekly", weekday=0, time_of_day="06:00", timezone="Pacific/Kiritimati")
    fire = next_run_after(s, utc(2026, 11, 25))
    assert unjittered(s, fire) == utc(2026, 11, 29, 16, 0)
    assert utc(2026, 11, 29).isocalendar().week == 48
    assert period_key(s, fire) == "weekly:2026-W49"


def test_it_keys_los_angeles_evenings_by_the_local_date() -> None:
    s = spec(time_of_day="20:00", timezone="America/Los_Angeles")
    fire = next_run_after(s, utc(2026, 11, 25, 5, 0))  # 21:00 on the 24th there
    assert unjittered(s, fire) == utc(2026, 11, 26, 4, 0)  # PST, UTC-8
    assert period_key(s, fire) == "daily:2026-11-25"


def test_it_keys_pago_pago_month_end_by_the_local_month() -> None:
    # -11: 22:00 on 30 November there is 09:00 on 1 December in UTC.
    s = spec(frequency="monthly", day_of_month=31, time_of_day="22:00", timezone="Pacific/Pago_Pago")
    fire = next_run_after(s, utc(2026, 11, 25))
    assert unjittered(s, fire) == utc(2026, 12, 1, 9, 0)
    assert period_key(s, fire) == "monthly:2026-11"
    following = next_run_after(s, fire)
    assert unjittered(s, following) == utc(2027, 1, 1, 9, 0)
    assert period_key(s, following) == "monthly:2026-12"


def test_it_gives_the_same_local_time_the_same_key_in_every_zone() -> None:
    for zone in ZONES:
        s = spec(time_of_day="12:00", timezone=zone)
        fire = next_run_after(s, at(zone, 2026, 11, 25, 0, 0))
        assert unjittered(s, fire) == at(zone, 2026, 11, 25, 12, 0), zone
        assert period_key(s, fire) == "daily:2026-11-25", zone


# --- DST in the user's zone ---------------------------------------------------


def test_it_runs_once_on_berlins_spring_forward_day_an_hour_later() -> None:
    # 2026-03-29 02:00 CET jumps to 03:00 CEST: 02:30 does not exist that day.
    s = spec(time_of_day="02:30", timezone="Europe/Berlin")
    fires = runs(s, utc(2026, 3, 26), 6)
    days = local_dates(s, fires)
    assert days == [dt.date(2026, 3, d) for d in range(26, 32)]
    assert unjittered(s, fires[3]) == at("Europe/Berlin", 2026, 3, 29, 3, 30)
    assert unjittered(s, fires[4]) == at("Europe/Berlin", 2026, 3, 30, 2, 30)


def test_it_still_finds_the_moved_run_when_asked_inside_the_skipped_hour() -> None:
    # APScheduler's own zoned CronTrigger skips the day from here (03:10 CEST).
    s = spec(time_of_day="02:30", timezone="Europe/Berlin")
    asked = at("Europe/Berlin", 2026, 3, 29, 3, 10) + jitter(s)
    assert next_run_after(s, asked) == at("Europe/Berlin", 2026, 3, 29, 3, 30) + jitter(s)


def test_it_runs_once_on_berlins_fall_back_day_at_the_first_0230() -> None:
    # 2026-10-25 03:00 CEST falls back to 02:00 CET: 02:30 happens twice.
    s = spec(time_of_day="02:30", timezone="Europe/Berlin")
    fires = runs(s, utc(2026, 10, 22), 6)
    assert local_dates(s, fires) == [dt.date(2026, 10, d) for d in range(22, 28)]
    assert unjittered(s, fires[3]) == utc(2026, 10, 25, 0, 30)  # 02:30 CEST
    # Asked between the two 02:30s, it moves on to the next day.
    between = at("Europe/Berlin", 2026, 10, 25, 2, 45) + jitter(s)
    assert unjittered(s, next_run_after(s, between)) == at("Europe/Berlin", 2026, 10, 26, 2, 30)
    second_0230 = at("Europe/Berlin", 2026, 10, 25, 2, 30, fold=1) + jitter(s)
    assert unjittered(s, next_run_after(s, second_0230)) == at("Europe/Berlin", 2026, 10, 26, 2, 30)


@pytest.mark.parametrize(
    ("zone", "time_of_day", "start", "transition"),
    [
        ("Europe/Berlin", "02:30", dt.date(2026, 3, 26), dt.date(2026, 3, 29)),
        ("Europe/Berlin", "02:30", dt.date(2026, 10, 22), dt.date(2026, 10, 25)),
        ("Europe/Berlin", "00:00", dt.date(2026, 3, 26), dt.date(2026, 3, 29)),
        ("America/New_York", "02:30", dt.date(2026, 3, 5), dt.date(2026, 3, 8)),
        ("America/New_York", "01:30", dt.date(2026, 10, 29), dt.date(2026, 11, 1)),
        ("America/New_York", "00:00", dt.date(2026, 3, 5), dt.date(2026, 3, 8)),
        ("America/Santiago", "00:00", dt.date(2026, 9, 3), dt.date(2026, 9, 6)),
        ("Australia/Lord_Howe", "02:15", dt.date(2026, 10, 1), dt.date(2026, 10, 4)),
    ],
)
def test_it_runs_exactly_once_per_local_day_across_a_dst_change(
    zone: str, time_of_day: str, start: dt.date, transition: dt.date
) -> None:
    tz = ZoneInfo(zone)
    for user_id in (1, 2, 3, 4, 5):  # different jitters, each searched every 10 minutes
        s = spec(time_of_day=time_of_day, timezone=zone, user_id=user_id)
        begin = dt.datetime.combine(start, dt.time(), tzinfo=tz).astimezone(UTC)
        fires = runs(s, begin, 7)
        days = local_dates(s, fires)
        assert days == [start + dt.timedelta(days=i) for i in range(7)], (zone, user_id)
        assert Counter(days)[transition] == 1
        after = begin
        while after < fires[-1]:
            assert next_run_after(s, after) == expected_next(s, after), (zone, after)
            after += dt.timedelta(minutes=10)


def test_it_keeps_a_run_that_a_dst_gap_pushes_past_midnight_on_its_scheduled_date() -> None:
    # Santiago's midnight does not exist on 2026-09-06; the run moves to 01:00 of that day.
    s = spec(time_of_day="00:00", timezone="America/Santiago")
    fire = next_run_after(s, at("America/Santiago", 2026, 9, 5, 12, 0))
    assert unjittered(s, fire) == at("America/Santiago", 2026, 9, 6, 1, 0)
    assert period_key(s, fire) == "daily:2026-09-06"


# --- month ends ---------------------------------------------------------------


def test_it_runs_day_31_on_the_last_day_of_shorter_months() -> None:
    s = spec(frequency="monthly", day_of_month=31, time_of_day="03:00")
    fires = runs(s, utc(2027, 1, 1), 14)
    assert [unjittered(s, f).date() for f in fires] == [
        dt.date(2027, 1, 31),
        dt.date(2027, 2, 28),
        dt.date(2027, 3, 31),
        dt.date(2027, 4, 30),
        dt.date(2027, 5, 31),
        dt.date(2027, 6, 30),
        dt.date(2027, 7, 31),
        dt.date(2027, 8, 31),
        dt.date(2027, 9, 30),
        dt.date(2027, 10, 31),
        dt.date(2027, 11, 30),
        dt.date(2027, 12, 31),
        dt.date(2028, 1, 31),
        dt.date(2028, 2, 29),  # leap year
    ]


def test_it_runs_day_29_on_february_28_except_in_leap_years() -> None:
    s = spec(frequency="monthly", day_of_month=29)
    dates = [unjittered(s, f).date() for f in runs(s, utc(2027, 1, 1), 14)]
    assert dt.date(2027, 2, 28) in dates
    assert dt.date(2028, 2, 29) in dates
    assert dt.date(2027, 3, 29) in dates


def test_it_runs_day_30_once_in_a_31_day_month() -> None:
    s = spec(frequency="monthly", day_of_month=30)
    dates = [unjittered(s, f).date() for f in runs(s, utc(2027, 1, 1), 4)]
    assert dates == [
        dt.date(2027, 1, 30),
        dt.date(2027, 2, 28),
        dt.date(2027, 3, 30),
        dt.date(2027, 4, 30),
    ]


def test_it_keeps_a_month_end_run_in_its_month_when_jitter_crosses_midnight() -> None:
    user_id = user_with_jitter("monthly", dt.timedelta(hours=1), dt.timedelta(hours=4))
    s = spec(frequency="monthly", day_of_month=31, time_of_day="23:30", user_id=user_id)
    fire = next_run_after(s, utc(2027, 2, 10))
    assert fire.date() == dt.date(2027, 3, 1)  # fires on 1 March...
    assert period_key(s, fire) == "monthly:2027-02"  # ...for February
    assert period_key(s, next_run_after(s, fire)) == "monthly:2027-03"


# --- jitter -------------------------------------------------------------------


def test_it_pins_the_jitter_derivation() -> None:
    # Changing the derivation would move every user's runs and period keys.
    digest = hashlib.sha256(b"lifeboat:schedule-jitter:1").digest()
    assert jitter(spec(user_id=1)) == dt.timedelta(seconds=int.from_bytes(digest[:8], "big") % 1800)
    assert jitter(spec(user_id=1)) == dt.timedelta(minutes=2, seconds=11)


def test_it_gives_a_user_the_same_jitter_whatever_the_time_or_zone() -> None:
    a = spec(user_id=42, time_of_day="02:00", timezone="UTC")
    b = spec(user_id=42, time_of_day="17:45", timezone="Asia/Tokyo")
    assert jitter(a) == jitter(b) == jitter(spec(user_id=42))
    assert jitter(spec(user_id=42)) != jitter(spec(user_id=43))


@pytest.mark.parametrize("frequency", ["daily", "weekly", "monthly"])
def test_it_keeps_jitter_inside_the_window(frequency: str) -> None:
    window = JITTER_WINDOWS[frequency]
    values = [jitter(spec(frequency=frequency, user_id=u)) for u in range(2000)]
    assert all(dt.timedelta(0) <= v < window for v in values)
    assert max(values) - min(values) > window * 0.95


def test_it_spreads_100k_style_crowds_across_the_window() -> None:
    # Everyone chose "daily at 02:00": no minute of the 30 may hold a crowd.
    now = utc(2026, 11, 25, 4, 0)
    fires = [next_run_after(spec(user_id=u), now) for u in range(10_000)]
    minutes = Counter(int((f - utc(2026, 11, 26, 2, 0)).total_seconds() // 60) for f in fires)
    assert sorted(minutes) == list(range(30))
    assert max(minutes.values()) < 10_000 * 0.045  # a uniform share is 3.3 %
    assert min(minutes.values()) > 10_000 * 0.025


# --- catch-up after downtime ----------------------------------------------------


def test_it_catches_up_a_week_of_downtime_with_one_run() -> None:
    s = spec(time_of_day="02:00", timezone="Europe/Berlin", user_id=7)
    last_run = next_run_after(s, utc(2026, 11, 17, 12))  # the 18th: then the service went down
    now = utc(2026, 11, 25, 12)
    due = latest_due(s, now)
    assert due == at("Europe/Berlin", 2026, 11, 25, 2, 0) + jitter(s)
    assert period_key(s, due) == "daily:2026-11-25"
    following = next_run_after(s, due)
    assert following > now
    assert following == next_run_after(s, now)
    # What a dispatcher does: one run for the latest period, then only the future.
    created = [due] if due is not None and due > last_run else []
    assert len(created) == 1


@pytest.mark.parametrize("frequency", ["weekly", "monthly"])
def test_it_catches_up_longer_periods_with_the_latest_one(frequency: str) -> None:
    s = spec(frequency=frequency, weekday=2, day_of_month=31, timezone="America/New_York")
    now = utc(2027, 3, 15, 12)
    due = latest_due(s, now)
    assert due is not None
    assert due <= now < next_run_after(s, due)
    assert next_run_after(s, due - dt.timedelta(microseconds=1)) == due


def test_it_counts_a_run_due_exactly_now_as_due() -> None:
    s = spec()
    fire = next_run_after(s, utc(2026, 11, 25))
    assert latest_due(s, fire) == fire
    assert latest_due(s, fire - dt.timedelta(microseconds=1)) == fire - dt.timedelta(days=1)


# --- order and keys over long runs ----------------------------------------------


@pytest.mark.parametrize(
    "s",
    [
        spec(frequency="daily", time_of_day="02:30", timezone="Europe/Berlin"),
        spec(frequency="weekly", weekday=6, time_of_day="02:30", timezone="America/New_York"),
        spec(frequency="monthly", day_of_month=31, time_of_day="23:30", timezone="Pacific/Chatham"),
    ],
    ids=["daily", "weekly", "monthly"],
)
def test_it_moves_strictly_forward_over_400_runs_with_distinct_periods(s: ScheduleSpec) -> None:
    fires = runs(s, utc(2026, 1, 1), 400)
    assert all(a < b for a, b in itertools.pairwise(fires))
    keys = [period_key(s, f) for f in fires]
    assert len(set(keys)) == 400
    gaps = {b - a for a, b in itertools.pairwise(fires)}
    shortest = {"daily": dt.timedelta(hours=22), "weekly": dt.timedelta(days=6, hours=22)}
    assert min(gaps) > shortest.get(s.frequency, dt.timedelta(days=27))


def test_it_gives_the_same_key_for_the_same_instant_in_any_representation() -> None:
    s = spec(time_of_day="02:30", timezone="Europe/Berlin", user_id=9)
    fire = next_run_after(s, utc(2026, 11, 25))
    as_berlin = fire.astimezone(ZoneInfo("Europe/Berlin"))
    as_offset = fire.astimezone(dt.timezone(dt.timedelta(hours=-7)))
    assert period_key(s, fire) == period_key(s, as_berlin) == period_key(s, as_offset)


def test_it_keys_iso_weeks_across_the_new_year() -> None:
    s = spec(frequency="weekly", weekday=0)
    keys = [period_key(s, f) for f in runs(s, utc(2026, 12, 20), 3)]
    assert keys == ["weekly:2026-W52", "weekly:2026-W53", "weekly:2027-W01"]


zones = st.sampled_from(ZONES)
specs = st.builds(
    ScheduleSpec,
    frequency=st.sampled_from(["daily", "weekly", "monthly"]),
    time_of_day=st.builds("{:02d}:{:02d}".format, st.integers(0, 23), st.integers(0, 59)),
    timezone=zones,
    weekday=st.integers(0, 6),
    day_of_month=st.integers(1, 31),
    user_id=st.integers(1, 10**9),
)
afters = st.datetimes(min_value=dt.datetime(2000, 1, 1), max_value=dt.datetime(2060, 1, 1), timezones=st.just(UTC))


@settings(max_examples=examples(200), deadline=None)
@given(s=specs, after=afters)
def test_it_agrees_with_a_plain_calendar_walk(s: ScheduleSpec, after: dt.datetime) -> None:
    fire = next_run_after(s, after)
    assert fire > after
    assert fire == expected_next(s, after)
    following = next_run_after(s, fire)
    assert following > fire
    assert period_key(s, fire) != period_key(s, following)
    due = latest_due(s, after)
    assert due is not None
    assert due <= after < next_run_after(s, due) == fire


# --- specs from rows, and validation ------------------------------------------


def test_it_reads_a_spec_from_a_schedule_row() -> None:
    row = Schedule(
        user_id=5,
        frequency="monthly",
        time_of_day="04:10",
        weekday=3,
        day_of_month=31,
        timezone="Asia/Kathmandu",
    )
    assert ScheduleSpec.from_row(row) == ScheduleSpec(
        frequency="monthly",
        time_of_day="04:10",
        timezone="Asia/Kathmandu",
        weekday=3,
        day_of_month=31,
        user_id=5,
    )
    duck = SimpleNamespace(user_id=5, frequency="daily", time_of_day="01:00", weekday=0, day_of_month=1, timezone="UTC")
    assert ScheduleSpec.from_row(duck).frequency == "daily"


def test_it_accepts_a_valid_spec() -> None:
    spec(frequency="weekly", weekday=6, time_of_day="23:59", timezone="Pacific/Kiritimati").validate()
    spec(frequency="monthly", day_of_month=31, time_of_day="00:00").validate()


@pytest.mark.parametrize(
    ("fields", "field", "words"),
    [
        ({"frequency": "hourly"}, "frequency", "daily, weekly or monthly"),
        ({"frequency": "Daily"}, "frequency", "daily, weekly or monthly"),
        ({"time_of_day": "2:00"}, "time_of_day", "HH:MM"),
        ({"time_of_day": "24:00"}, "time_of_day", "24-hour"),
        ({"time_of_day": "12:60"}, "time_of_day", "HH:MM"),
        ({"time_of_day": "02:00:00"}, "time_of_day", "HH:MM"),
        ({"time_of_day": "02:00\n"}, "time_of_day", "HH:MM"),
        ({"time_of_day": "\uff10\uff12:\uff10\uff10"}, "time_of_day", "HH:MM"),
        ({"timezone": "Mars/Olympus_Mons"}, "timezone", "Europe/Berlin"),
        ({"timezone": "europe/berlin"}, "timezone", "not a time zone"),
        ({"timezone": "localtime"}, "timezone", "not a time zone"),
        ({"timezone": "../../etc/passwd"}, "timezone", "not a time zone"),
        ({"timezone": ""}, "timezone", "not a time zone"),
        ({"weekday": 7}, "weekday", "0 (Monday) to 6 (Sunday)"),
        ({"weekday": -1}, "weekday", "0 (Monday) to 6 (Sunday)"),
        ({"weekday": True}, "weekday", "0 (Monday) to 6 (Sunday)"),
        ({"day_of_month": 0}, "day_of_month", "1 to 31"),
        ({"day_of_month": 32}, "day_of_month", "last day"),
    ],
)
def test_it_explains_an_invalid_spec(fields: dict[str, object], field: str, words: str) -> None:
    with pytest.raises(ValueError, match="not valid") as caught:
        spec(**fields).validate()
    assert isinstance(caught.value, InvalidInput)
    assert [where for where, _ in caught.value.problems] == [field]
    assert words in str(caught.value)


def test_it_lists_every_problem_at_once() -> None:
    bad = spec(frequency="yearly", time_of_day="noon", timezone="Nowhere", weekday=9, day_of_month=0)
    with pytest.raises(InvalidInput) as caught:
        bad.validate()
    assert [where for where, _ in caught.value.problems] == [
        "frequency",
        "time_of_day",
        "timezone",
        "weekday",
        "day_of_month",
    ]


def test_it_refuses_to_compute_runs_for_an_invalid_spec() -> None:
    for call in (
        lambda s: next_run_after(s, utc(2026, 11, 25)),
        lambda s: latest_due(s, utc(2026, 11, 25)),
        lambda s: period_key(s, utc(2026, 11, 25)),
        jitter,
    ):
        with pytest.raises(InvalidInput):
            call(spec(timezone="Not/AZone"))
        with pytest.raises(InvalidInput):
            call(spec(frequency="hourly"))


def test_a_schedule_paused_by_support_says_paused_once() -> None:
    row = Schedule(
        user_id=1,
        frequency="daily",
        time_of_day="02:00",
        timezone="Europe/Berlin",
        weekday=0,
        day_of_month=1,
        enabled=False,
        paused_reason=PAUSED_BY_SUPPORT,
    )
    assert describe(row) == (
        f"Daily: every day at 02:00 Europe/Berlin, {delay_words(ScheduleSpec.from_row(row))}. Switched off. "
        "Paused by Lifeboat support. Saving your schedule on the Settings page resumes it."
    )
