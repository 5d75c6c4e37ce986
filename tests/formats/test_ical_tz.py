"""Every VTIMEZONE we write says what zoneinfo says, for every zone, at every instant a calendar may use.

Why these readers: icalendar, `ical`, `recurring_ical_events` and vobject all look an
IANA TZID up in their own zone database and ignore the VTIMEZONE, so a wrong
VTIMEZONE goes unseen by them; clients that trust the file (and these same readers,
for a TZID they do not know) are misled. So the onsets are read back with icalendar's
parser and dateutil (not our code) and compared with zoneinfo, and the readers are
made to use our VTIMEZONE by renaming the zone to a name no database knows.
"""

from __future__ import annotations

import datetime as dt
import functools
import zoneinfo
from zoneinfo import _zoneinfo as pure_zoneinfo  # type: ignore[attr-defined]  # stdlib's pure-Python TZif reader, private

import icalendar
import pytest
import recurring_ical_events
import vobject
from dateutil.rrule import rrulestr
from ical.calendar_stream import IcsCalendarStream

from account.records import CalendarInfo, Event, When
from exporters.ical.timezones import vtimezone
from exporters.ical.writer import iter_calendar

UTC = dt.UTC
# RRULE onsets are checked up to 2100, and for 29 years at least. Why that is enough: a
# yearly rule's dates depend only on the kind of year (weekday of January 1, leap or
# not), and any 28 years in 1901-2099 hold all 14 kinds.
END = dt.datetime(2100, 1, 1)
CYCLE = dt.timedelta(days=29 * 366)
ZONES = sorted(zoneinfo.available_timezones())
STAMP = dt.datetime(2026, 5, 1, 12, tzinfo=UTC)


@functools.cache
def onsets(tzid: str) -> list[tuple[dt.datetime, dt.timedelta, dt.timedelta, str, str]]:
    """(UTC instant, TZOFFSETFROM, TZOFFSETTO, kind, TZNAME) of every onset, read by icalendar + dateutil."""
    component = icalendar.Component.from_ical(vtimezone(tzid).decode())
    assert component.name == "VTIMEZONE" and str(component["TZID"]) == tzid
    assert "COMMENT" not in component  # RFC 5545 3.6.5 allows none here
    out: list[tuple[dt.datetime, dt.timedelta, dt.timedelta, str, str]] = []
    for obs in component.subcomponents:
        start = obs.decoded("DTSTART")
        before, after = obs.decoded("TZOFFSETFROM"), obs.decoded("TZOFFSETTO")
        local = [start]
        rdates = obs.get("RDATE", [])
        for rdate in rdates if isinstance(rdates, list) else [rdates]:
            local += [d.dt for d in rdate.dts]
        if "RRULE" in obs:
            until = max(END, start + CYCLE)
            rule = obs["RRULE"]
            assert isinstance(rule, icalendar.vRecur)
            local += list(rrulestr(rule.to_ical().decode(), dtstart=start).between(start, until))
        out += [(t - before, before, after, str(obs.name), str(obs["TZNAME"])) for t in local]
    return sorted(out)


def offset_at(tz: zoneinfo.ZoneInfo, utc: dt.datetime) -> tuple[dt.timedelta, bool, str]:
    local = utc.replace(tzinfo=UTC).astimezone(tz)
    return local.utcoffset(), bool(local.dst()), local.tzname()  # type: ignore[return-value]  # aware: never None


def assert_onsets_are_zoneinfos_transitions(tzid: str) -> None:
    second = dt.timedelta(seconds=1)
    tz = zoneinfo.ZoneInfo(tzid)
    found = onsets(tzid)
    first, *changes = found
    assert first[0] + first[1] == dt.datetime(1601, 1, 1), tzid
    assert offset_at(tz, dt.datetime(1601, 1, 3))[0] == first[2], tzid  # before any change
    for utc, before, after, kind, name in changes:
        assert offset_at(tz, utc - second)[0] == before, (tzid, utc)
        assert offset_at(tz, utc) == (after, kind == "DAYLIGHT", name), (tzid, utc)
    # Nothing in between: zoneinfo keeps each observance's offset until the next onset.
    following_starts = [onset[0] for onset in found[1:]] + [found[-1][0] + dt.timedelta(days=1)]
    for (utc, _, after, _, _), following in zip(found, following_starts, strict=True):
        middle = max(utc, dt.datetime(1601, 1, 3)) + (following - max(utc, dt.datetime(1601, 1, 3))) / 2
        assert offset_at(tz, middle)[0] == after, (tzid, middle)


def assert_no_listed_transition_is_missing(tzid: str) -> None:
    # Midpoints cannot see a change that is undone before the next onset; the stdlib's own
    # reading of the TZif file lists every change, so each must be one of our onsets.
    listed = pure_zoneinfo.ZoneInfo.no_cache(tzid)._trans_utc  # private: the stdlib's parse
    tz = zoneinfo.ZoneInfo(tzid)
    ours = {o[0] for o in onsets(tzid)}
    end = max(ours)
    for ts in listed:
        utc = dt.datetime(1970, 1, 1) + dt.timedelta(seconds=ts)
        moved = offset_at(tz, utc - dt.timedelta(seconds=1)) != offset_at(tz, utc)
        if dt.datetime(1602, 1, 1) < utc <= end and moved:
            assert utc in ours, (tzid, utc)


# Zones whose rules are odd in some way: spring-forward gaps of 30 minutes (Lord Howe),
# rules at 24:00, 25:00, 26:00, 50:00 or -1:00 (Cairo, Santiago, Jerusalem, Gaza, Nuuk),
# negative daylight time (Dublin), Ramadan breaks listed to 2087 (Casablanca), a day
# skipped at the date line (Apia), local mean times with seconds, no change at all.
ODD_ZONES = [
    "America/New_York",
    "Europe/Berlin",
    "Europe/London",
    "Australia/Lord_Howe",
    "Africa/Cairo",
    "America/Santiago",
    "Asia/Jerusalem",
    "Asia/Gaza",
    "America/Nuuk",
    "Europe/Dublin",
    "Africa/Casablanca",
    "Pacific/Apia",
    "Asia/Kolkata",
    "Etc/UTC",
]


@pytest.mark.parametrize("tzid", ODD_ZONES)
def test_every_onset_of_odd_zones_is_zoneinfos_transition(tzid: str) -> None:
    assert_onsets_are_zoneinfos_transitions(tzid)
    assert_no_listed_transition_is_missing(tzid)


@pytest.mark.slow  # about 10 s: all 599 zones, from 1601 to 2100 at least
def test_every_onset_of_every_zone_in_tzdata_is_zoneinfos_transition() -> None:
    for tzid in ZONES:
        assert_onsets_are_zoneinfos_transitions(tzid)
        assert_no_listed_transition_is_missing(tzid)


@pytest.mark.parametrize(
    ("tzid", "onset", "local"),
    [
        ("America/New_York", dt.datetime(2021, 3, 14, 7), "20210314T020000"),
        ("Europe/Berlin", dt.datetime(2021, 3, 28, 1), "20210328T020000"),
        ("Europe/London", dt.datetime(2021, 3, 28, 1), "20210328T010000"),
        ("Australia/Lord_Howe", dt.datetime(2020, 10, 3, 15, 30), "20201004T020000"),
    ],
)
def test_spring_forward_is_written_at_the_local_time_before_the_change(
    tzid: str, onset: dt.datetime, local: str
) -> None:
    daylight = [o for o in onsets(tzid) if o[0] == onset]
    assert [(o[0] + o[1]).strftime("%Y%m%dT%H%M%S") for o in daylight] == [local]
    assert daylight[0][3] == "DAYLIGHT"


# --- readers that trust our VTIMEZONE ---------------------------------------------------

CASES = [  # (zone, local wall time, the UTC instant zoneinfo gives)
    ("Europe/Berlin", dt.datetime(2101, 7, 1, 12), dt.datetime(2101, 7, 1, 10)),
    ("America/New_York", dt.datetime(1965, 7, 1, 12), dt.datetime(1965, 7, 1, 16)),
    ("America/New_York", dt.datetime(2021, 3, 14, 3, 30), dt.datetime(2021, 3, 14, 7, 30)),
    ("Europe/Berlin", dt.datetime(2021, 3, 28, 3, 30), dt.datetime(2021, 3, 28, 1, 30)),
    ("Europe/London", dt.datetime(2021, 3, 28, 2, 30), dt.datetime(2021, 3, 28, 1, 30)),
    ("Australia/Lord_Howe", dt.datetime(2020, 10, 4, 2, 45), dt.datetime(2020, 10, 3, 15, 45)),
    ("Europe/Berlin", dt.datetime(1890, 6, 1, 12), dt.datetime(1890, 6, 1, 11, 6, 32)),
    ("Africa/Cairo", dt.datetime(2030, 11, 1, 12), dt.datetime(2030, 11, 1, 10)),
    ("Asia/Jerusalem", dt.datetime(2350, 3, 30, 12), dt.datetime(2350, 3, 30, 9)),
]


def renamed_calendar(tzid: str, local: dt.datetime) -> str:
    event = Event(uid="u", start=When(datetime=local, tz=tzid), summary="x")
    data = b"".join(iter_calendar(CalendarInfo(name="c"), [event], [tzid], stamp=STAMP)).decode()
    # A TZID no reader knows, so it must use our VTIMEZONE; one per zone, as icalendar
    # caches the zone it builds from a VTIMEZONE by TZID for the whole process.
    return data.replace(tzid, f"Lifeboat Test {tzid}")


def by_icalendar(text: str) -> dt.datetime:
    return icalendar.Calendar.from_ical(text).walk("VEVENT")[0].decoded("DTSTART")


def by_ical(text: str) -> dt.datetime:
    return IcsCalendarStream.calendar_from_ics(text).events[0].dtstart  # type: ignore[return-value]  # a DATE-TIME start


def by_recurring_ical_events(text: str) -> dt.datetime:
    cal = icalendar.Calendar.from_ical(text)
    (event,) = recurring_ical_events.of(cal).between(dt.datetime(1800, 1, 1), dt.datetime(2400, 1, 1))
    return event.decoded("DTSTART")


def by_vobject(text: str) -> dt.datetime:
    return vobject.readOne(text).vevent.dtstart.value


@pytest.mark.parametrize("read", [by_icalendar, by_ical, by_recurring_ical_events, by_vobject])
@pytest.mark.parametrize(("tzid", "local", "utc"), CASES)
def test_readers_that_trust_our_vtimezone_place_times_where_zoneinfo_does(
    read, tzid: str, local: dt.datetime, utc: dt.datetime
) -> None:
    assert local.replace(tzinfo=zoneinfo.ZoneInfo(tzid)).astimezone(UTC) == utc.replace(tzinfo=UTC)  # the oracle
    start = read(renamed_calendar(tzid, local))
    assert start.replace(tzinfo=None) == local
    assert start.astimezone(UTC) == utc.replace(tzinfo=UTC)


@pytest.mark.parametrize("read", [by_icalendar, by_ical, by_vobject])
def test_a_weekly_series_far_past_2100_keeps_its_offset_in_readers_that_trust_our_vtimezone(read) -> None:
    text = renamed_calendar("America/New_York", dt.datetime(2024, 1, 1, 9)).replace(
        "SUMMARY:x", "SUMMARY:x\r\nRRULE:FREQ=WEEKLY"
    )
    tz = read(text).tzinfo
    for year in (1900, 1965, 2021, 2101, 2300):
        for month in (1, 7):
            local = dt.datetime(year, month, 15, 9)
            expected = local.replace(tzinfo=zoneinfo.ZoneInfo("America/New_York")).utcoffset()
            assert local.replace(tzinfo=tz).utcoffset() == expected, local
