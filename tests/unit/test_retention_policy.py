"""The retention policy alone: restic's keep-last and grandfather-father-son rules, plus "never the newest verified"."""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from delivery.retention_policy import (
    MAX_COUNT,
    NEWEST_VERIFIED,
    NO_POLICY,
    NO_VERIFIED,
    Candidate,
    Decision,
    RetentionPolicy,
    plan_retention,
)
from errors import InvalidInput

UTC = dt.UTC
BERLIN = ZoneInfo("Europe/Berlin")


def daily(start: dt.datetime, days: int, *, verified: bool = True) -> list[Candidate]:
    return [
        Candidate(f"a/{(start + dt.timedelta(days=n)):%Y%m%dT%H%M}.zip", start + dt.timedelta(days=n), verified)
        for n in range(days)
    ]


def kept(plan_decisions: list[Decision]) -> list[str]:
    return [d.key for d in plan_decisions]


def reasons_by_key(candidates: list[Candidate], policy: RetentionPolicy, zone: dt.tzinfo = UTC) -> dict[str, tuple]:
    return {d.key: d.reasons for d in plan_retention(candidates, policy, zone).decisions}


def test_keep_last_keeps_the_newest_n_and_deletes_the_rest() -> None:
    archives = daily(dt.datetime(2026, 1, 1, 4, tzinfo=UTC), 10)
    plan = plan_retention(archives, RetentionPolicy(last=3), UTC)
    assert kept(plan.keep) == [c.key for c in reversed(archives[-3:])]
    assert {d.reasons for d in plan.keep} == {("newest verified", "last 3"), ("last 3",)}
    assert len(plan.delete) == 7


def test_daily_keeps_the_newest_archive_of_each_of_the_newest_n_days() -> None:
    start = dt.datetime(2026, 3, 1, 1, tzinfo=UTC)
    archives = [Candidate(f"k{n}", start + dt.timedelta(hours=8 * n), True) for n in range(12)]  # 3 a day, 4 days
    plan = plan_retention(archives, RetentionPolicy(daily=2), UTC)
    assert kept(plan.keep) == ["k11", "k8"]  # 17:00 on 4 March and on 3 March
    assert plan.keep[1].reasons == ("daily 2026-03-03",)


def test_days_are_counted_in_the_users_time_zone() -> None:
    # 23:30 UTC on 31 March is 01:30 on 1 April in Berlin: April's archive there, March's in UTC.
    late = Candidate("late", dt.datetime(2026, 3, 31, 23, 30, tzinfo=UTC), True)
    early = Candidate("early", dt.datetime(2026, 3, 31, 12, 0, tzinfo=UTC), True)
    in_utc = reasons_by_key([late, early], RetentionPolicy(monthly=2), UTC)
    in_berlin = reasons_by_key([late, early], RetentionPolicy(monthly=2), BERLIN)
    assert in_utc == {"late": ("newest verified", "monthly 2026-03"), "early": ("oldest (fewer than 2 months so far)",)}
    assert in_berlin == {"late": ("newest verified", "monthly 2026-04"), "early": ("monthly 2026-03",)}


def test_weeks_are_iso_weeks_monday_to_sunday() -> None:
    sunday = Candidate("sun", dt.datetime(2026, 12, 6, 12, tzinfo=UTC), True)  # 2026-W49
    saturday = Candidate("sat", dt.datetime(2026, 12, 5, 12, tzinfo=UTC), True)
    monday = Candidate("mon", dt.datetime(2026, 12, 7, 12, tzinfo=UTC), True)  # 2026-W50
    plan = reasons_by_key([sunday, saturday, monday], RetentionPolicy(weekly=2), UTC)
    assert plan == {"mon": ("newest verified", "weekly 2026-W50"), "sun": ("weekly 2026-W49",), "sat": ()}


def test_the_rules_count_on_their_own_and_an_archive_kept_by_several_shows_each_reason() -> None:
    archives = daily(dt.datetime(2026, 11, 1, 4, tzinfo=UTC), 30)  # 1..30 November
    reasons = reasons_by_key(archives, RetentionPolicy(last=1, daily=2, weekly=2, monthly=1), UTC)
    newest = archives[-1].key
    assert reasons[newest] == (NEWEST_VERIFIED, "last 1", "daily 2026-11-30", "weekly 2026-W49", "monthly 2026-11")
    assert reasons[archives[-2].key] == ("daily 2026-11-29", "weekly 2026-W48")  # Sunday 29th ends week 48
    assert sum(1 for r in reasons.values() if r) == 2


def test_a_rule_with_counts_left_also_keeps_the_oldest_archive_as_restic_does() -> None:
    archives = daily(dt.datetime(2026, 1, 10, 4, tzinfo=UTC), 40)  # 10 January .. 18 February
    reasons = reasons_by_key(archives, RetentionPolicy(monthly=12), UTC)
    assert reasons[archives[0].key] == ("oldest (fewer than 12 months so far)",)
    assert reasons[archives[21].key] == ("monthly 2026-01",)  # 31 January
    assert sum(1 for r in reasons.values() if r) == 3


def test_the_oldest_is_not_kept_once_the_rule_is_used_up() -> None:
    archives = daily(dt.datetime(2026, 1, 1, 4, tzinfo=UTC), 60)
    reasons = reasons_by_key(archives, RetentionPolicy(monthly=2), UTC)
    assert reasons[archives[0].key] == ()
    assert sum(1 for r in reasons.values() if r) == 2


def test_the_newest_verified_archive_is_kept_even_when_no_rule_would_keep_it() -> None:
    start = dt.datetime(2026, 6, 1, 4, tzinfo=UTC)
    archives = [*daily(start, 5, verified=True), *daily(start + dt.timedelta(days=5), 3, verified=False)]
    plan = plan_retention(archives, RetentionPolicy(last=1), UTC)
    assert [(d.key, d.reasons) for d in plan.keep] == [
        (archives[-1].key, ("last 1",)),
        (archives[4].key, (NEWEST_VERIFIED,)),
    ]


def test_without_a_verified_archive_nothing_is_deleted() -> None:
    archives = daily(dt.datetime(2026, 6, 1, 4, tzinfo=UTC), 5, verified=False)
    plan = plan_retention(archives, RetentionPolicy(last=1), UTC)
    assert plan.delete == [] and plan.note == NO_VERIFIED


def test_an_empty_policy_keeps_everything() -> None:
    plan = plan_retention(daily(dt.datetime(2026, 6, 1, tzinfo=UTC), 5), RetentionPolicy(), UTC)
    assert plan.delete == [] and plan.note == NO_POLICY


def test_a_pinned_archive_stays_with_its_reason() -> None:
    archives = daily(dt.datetime(2026, 6, 1, 4, tzinfo=UTC), 5)
    plan = plan_retention(archives, RetentionPolicy(last=1), UTC, pinned={archives[0].key: "just delivered"})
    assert kept(plan.keep) == [archives[-1].key, archives[0].key]
    assert plan.keep[1].reasons == ("just delivered",)


def test_the_order_of_the_listing_does_not_matter_and_ties_break_by_key() -> None:
    when = dt.datetime(2026, 6, 1, 4, tzinfo=UTC)
    archives = [Candidate("b", when, True), Candidate("a", when, True), Candidate("c", when, True)]
    assert kept(plan_retention(archives, RetentionPolicy(last=1), UTC).keep) == ["c"]
    assert kept(plan_retention(archives[::-1], RetentionPolicy(last=1), UTC).keep) == ["c"]


@pytest.mark.parametrize(
    ("values", "field"),
    [
        ({"retention_keep": -1}, "retention_keep"),
        ({"retention_daily": True}, "retention_daily"),
        ({"retention_weekly": "4"}, "retention_weekly"),
        ({"retention_monthly": 1.5}, "retention_monthly"),
        ({"retention_yearly": MAX_COUNT + 1}, "retention_yearly"),
    ],
)
def test_a_bad_count_is_refused_naming_its_field(values: dict[str, object], field: str) -> None:
    with pytest.raises(InvalidInput) as caught:
        RetentionPolicy.from_settings(values)
    assert [name for name, _ in caught.value.problems] == [field]
    assert "from 0 (off)" in caught.value.problems[0][1]


def test_settings_round_trip_and_off_rules_are_cleared() -> None:
    policy = RetentionPolicy(last=3, daily=7, weekly=4, monthly=12)
    stored = policy.as_settings()
    assert stored == {
        "retention_keep": 3,
        "retention_daily": 7,
        "retention_weekly": 4,
        "retention_monthly": 12,
        "retention_yearly": None,
    }
    assert RetentionPolicy.from_settings(stored) == policy
    assert RetentionPolicy.from_settings({}) == RetentionPolicy()


@pytest.mark.parametrize(
    ("policy", "words"),
    [
        (RetentionPolicy(), "Keeps every archive (no retention policy)."),
        (
            RetentionPolicy(last=3, daily=7, weekly=4, monthly=12),
            "Keeps the last 3, one a day for 7 days, one a week for 4 weeks and one a month for 12 months; "
            "never the newest verified archive.",
        ),
        (RetentionPolicy(last=1), "Keeps the newest archive; never the newest verified archive."),
        (RetentionPolicy(yearly=1), "Keeps one a year for 1 year; never the newest verified archive."),
    ],
)
def test_the_summary_says_the_policy_in_plain_words(policy: RetentionPolicy, words: str) -> None:
    assert policy.summary() == words


# -- properties --------------------------------------------------------------------------------

counts = st.integers(min_value=0, max_value=15)
policies = st.builds(RetentionPolicy, last=counts, daily=counts, weekly=counts, monthly=counts, yearly=counts).filter(
    lambda p: p.active
)
zones = st.sampled_from([UTC, BERLIN, ZoneInfo("Pacific/Chatham"), ZoneInfo("America/St_Johns")])
instants = st.datetimes(min_value=dt.datetime(2020, 1, 1), max_value=dt.datetime(2030, 1, 1), timezones=st.just(UTC))


@st.composite
def listings(draw: st.DrawFn) -> list[Candidate]:
    made = draw(st.lists(st.tuples(instants, st.booleans()), max_size=60))
    return [Candidate(f"k{n}", when, verified) for n, (when, verified) in enumerate(made)]


def newest_verified(candidates: list[Candidate]) -> str | None:
    verified = [c for c in candidates if c.verified]
    return max(verified, key=lambda c: (c.created_at, c.key)).key if verified else None


@settings(max_examples=300, deadline=None)
@given(listings(), policies, zones)
def test_property_the_newest_verified_archive_is_never_deleted(
    candidates: list[Candidate], policy: RetentionPolicy, zone: dt.tzinfo
) -> None:
    plan = plan_retention(candidates, policy, zone)
    assert newest_verified(candidates) not in {d.key for d in plan.delete}


@settings(max_examples=300, deadline=None)
@given(listings(), policies, zones)
def test_property_applying_the_policy_twice_deletes_nothing_more(
    candidates: list[Candidate], policy: RetentionPolicy, zone: dt.tzinfo
) -> None:
    first = plan_retention(candidates, policy, zone)
    survivors = {d.key for d in first.keep}
    again = plan_retention([c for c in candidates if c.key in survivors], policy, zone)
    assert again.delete == []


@settings(max_examples=300, deadline=None)
@given(listings(), policies, st.tuples(counts, counts, counts, counts, counts), zones)
def test_property_a_policy_keeping_more_never_deletes_more(
    candidates: list[Candidate],
    policy: RetentionPolicy,
    extra: tuple[int, int, int, int, int],
    zone: dt.tzinfo,
) -> None:
    more = RetentionPolicy(
        last=policy.last + extra[0],
        daily=policy.daily + extra[1],
        weekly=policy.weekly + extra[2],
        monthly=policy.monthly + extra[3],
        yearly=policy.yearly + extra[4],
    )
    fewer_deleted = {d.key for d in plan_retention(candidates, more, zone).delete}
    assert fewer_deleted <= {d.key for d in plan_retention(candidates, policy, zone).delete}


@settings(max_examples=200, deadline=None)
@given(listings(), policies, zones)
def test_property_every_archive_is_decided_once_and_kept_ones_say_why(
    candidates: list[Candidate], policy: RetentionPolicy, zone: dt.tzinfo
) -> None:
    plan = plan_retention(candidates, policy, zone)
    assert sorted(d.key for d in plan.decisions) == sorted(c.key for c in candidates)
    if any(c.verified for c in candidates):
        kept_by_rule = {d.key for d in plan.keep if set(d.reasons) - {NEWEST_VERIFIED}}
        assert len(kept_by_rule) <= policy.last + policy.daily + policy.weekly + policy.monthly + policy.yearly + 5
