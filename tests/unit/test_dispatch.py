"""The dispatcher's shortcuts, without a database: time-ordered run ids and shared calendar walks.

Why: a tick of 1,000 due schedules is fast because run ids sort by creation time
(new rows land on the last pages of the key's B-tree) and because the calendar
walk is shared between users of the same schedule (`dispatch._RunTimes`). Both
must give exactly what the plain functions give; the tick's PostgreSQL path is
tested in tests/scale/test_dispatch.py.
"""

from __future__ import annotations

import datetime as dt
import random
import threading
import time
import uuid

import pytest

from jobs import dispatch
from jobs.schedule import ScheduleSpec, next_run_after, period_key
from store import runs as store_runs
from store.runs import new_id


def test_new_ids_sort_in_creation_order_and_never_repeat() -> None:
    ids = [new_id() for _ in range(20_000)]  # many per millisecond: the sequence orders them
    assert ids == sorted(ids) and len(set(ids)) == len(ids)
    assert all(len(run_id) == 32 and run_id == run_id.lower() for run_id in ids)
    parsed = uuid.UUID(ids[0])
    assert parsed.version == 7 and parsed.variant == uuid.RFC_4122
    # The first 48 bits are the creation time in Unix milliseconds.
    created = dt.datetime.fromtimestamp(int(ids[0][:12], 16) / 1000, dt.UTC)
    assert abs(created - dt.datetime.now(dt.UTC)) < dt.timedelta(minutes=1)


def test_new_ids_keep_increasing_when_the_clock_steps_back(monkeypatch: pytest.MonkeyPatch) -> None:
    now = time.time_ns()
    clock = iter([now, now - 1_000_000_000, now - 1_000_000_000])  # an NTP step back of a second
    monkeypatch.setattr(time, "time_ns", lambda: next(clock))  # the module store.runs reads it from
    monkeypatch.setattr(store_runs, "_last_stamp", 0)  # restored afterwards
    first, second, third = new_id(), new_id(), new_id()
    assert first < second < third


def test_new_ids_from_many_threads_are_unique_and_ordered_per_thread() -> None:
    made: list[list[str]] = [[] for _ in range(4)]

    def make(out: list[str]) -> None:
        out.extend(new_id() for _ in range(5_000))

    threads = [threading.Thread(target=make, args=(out,)) for out in made]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert all(out == sorted(out) for out in made)
    assert len({run_id for out in made for run_id in out}) == 20_000


def test_shared_calendar_walks_answer_as_next_run_after_and_period_key_do() -> None:
    """Few schedules, many users (different jitters), moments asked in any order, some exactly
    on a run: each answer must be the one the plain functions give, whatever was cached."""
    rng = random.Random(7)
    zones = ["Europe/Berlin", "America/New_York", "Australia/Lord_Howe", "Asia/Kathmandu", "UTC"]
    start = dt.datetime(2026, 3, 20, tzinfo=dt.UTC)  # spans the March and April DST changes
    checked = 0
    for _ in range(6):
        times = dispatch._RunTimes()  # one per tick
        plans = [
            (rng.choice(["daily", "weekly", "monthly"]), rng.choice(["00:30", "02:30", "23:45"]), rng.choice(zones))
            for _ in range(3)
        ]
        for _ in range(60):
            frequency, time_of_day, zone = rng.choice(plans)
            spec = ScheduleSpec(
                frequency=frequency,
                time_of_day=time_of_day,
                timezone=zone,
                weekday=3,
                day_of_month=31,
                user_id=rng.randrange(1, 10**6),
            )
            moment = start + dt.timedelta(seconds=rng.randrange(45 * 86_400))
            if rng.random() < 0.5:  # exactly on a run or just before it, as the tick asks
                moment = next_run_after(spec, moment) - rng.choice([dt.timedelta(0), dt.timedelta(seconds=1)])
            expected = next_run_after(spec, moment)
            assert times.after(spec, moment) == expected, (spec, moment)
            assert times.period_key(spec, expected) == period_key(spec, expected), (spec, expected)
            checked += 1
    assert checked == 360
