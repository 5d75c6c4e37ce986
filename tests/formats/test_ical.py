"""The iCalendar exporter writes files other programs read as we meant, and reads them back.

Why three readers: our own reader proves nothing is lost (records in == records out);
the `ical` package (an independent parser) and `recurring_ical_events` prove other
programs see the same text and, above all, the same instances of recurring events,
which we compute independently from the records with dateutil.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import re
import tracemalloc
from collections.abc import Generator, Iterator
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
import recurring_ical_events
from dateutil.rrule import rrulestr
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from ical.calendar_stream import IcsCalendarStream
from icalendar import Calendar as VCalendar

from account.jsonio import account_from_dict
from account.records import Alarm, Attendee, Calendar, CalendarInfo, Event, Override, Person, When
from errors import InvalidInput
from exporters.ical.reader import read_calendar, stream_calendar
from exporters.ical.writer import (
    canonical_duration,
    canonical_rrule,
    event_to_ics,
    iter_calendar,
    zones_used,
)
from tests.profiles import examples
from tests.strategies.events import calendars, events

ALICE = Path(__file__).parent.parent / "data" / "alice.json"
DATA = Path(__file__).parent.parent / "data" / "ical"
BERLIN, NEW_YORK = "Europe/Berlin", "America/New_York"
STAMP = dt.datetime(2026, 5, 1, 12, 30, tzinfo=dt.UTC)  # export time: DTSTAMP of events without one


def export(cal: Calendar) -> bytes:
    tzids = set().union(set(), *(zones_used(e) for e in cal.events))
    return b"".join(iter_calendar(cal.info, cal.events, tzids, stamp=STAMP))


@pytest.fixture(scope="module")
def alice() -> tuple[Calendar, ...]:
    return account_from_dict(json.loads(ALICE.read_text("utf-8"))).calendars


def berlin(*args: Any) -> When:
    return When(datetime=dt.datetime(*args), tz=BERLIN)


# --- round trip ------------------------------------------------------------------------


def test_it_round_trips_alice_calendars(alice: tuple[Calendar, ...]) -> None:
    for cal in alice:
        assert read_calendar(export(cal)) == cal


def test_it_writes_each_event_alone_for_caldav(alice: tuple[Calendar, ...]) -> None:
    for event in (e for cal in alice for e in cal.events):
        data = event_to_ics(event, stamp=STAMP)
        assert read_calendar(data).events == (event,)
        assert data.count(b"BEGIN:VTIMEZONE") == len(zones_used(event))
        IcsCalendarStream.calendar_from_ics(data.decode())


@settings(max_examples=examples(80), deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(calendars())
def test_it_round_trips_generated_calendars_with_hostile_text(cal: Calendar) -> None:
    data = export(cal)
    assert read_calendar(data) == cal
    assert_well_formed(data)
    parsed = IcsCalendarStream.calendar_from_ics(data.decode())
    # The independent parser unescapes our text to the same strings.
    masters = [e for e in parsed.events if e.recurrence_id is None]
    assert [e.uid for e in masters] == [e.uid for e in cal.events]
    assert [e.summary for e in masters] == [e.summary for e in cal.events]
    assert [e.description for e in masters] == [e.description for e in cal.events]
    # ical 14 also splits CATEGORIES at escaped commas (RFC 5545 3.3.11: `\\,` is text).
    plain = [i for i, e in enumerate(cal.events) if not any("," in c for c in e.categories)]
    assert [list(masters[i].categories) for i in plain] == [list(cal.events[i].categories) for i in plain]


_any_text = st.text(max_size=30)  # surrogates, CR, NUL: nothing canonical about it


@settings(max_examples=examples(60), deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(events(), _any_text, _any_text, _any_text, _any_text, _any_text)
def test_it_never_writes_a_corrupt_file_for_any_string(
    event: Event, text: str, rrule: str, trigger: str, url: str, name: str
) -> None:
    odd = Event(
        uid=text or "x",
        start=event.start,
        summary=text,
        description=text + "\r\n\r",
        rrule=rrule or None,
        rdates=event.rdates,
        status=text,
        transparency=text,
        url=url or None,
        categories=(text, ""),
        organizer=Person(email=text, name=name),
        attendees=(Attendee(email=name, name=text, role=name),),
        alarms=(Alarm(trigger=trigger, action=text, description=text),),
        overrides=tuple(Override(recurrence_id=o.recurrence_id, summary=text) for o in event.overrides),
    )
    info = CalendarInfo(name=text, color=name, description=text)
    data = b"".join(iter_calendar(info, [odd], zones_used(odd), stamp=STAMP))
    assert_well_formed(data)
    IcsCalendarStream.calendar_from_ics(data.decode())
    read_calendar(data)


def assert_well_formed(data: bytes) -> None:
    assert data.endswith(b"\r\n")
    lines = data.split(b"\r\n")[:-1]
    assert all(b"\r" not in line and b"\n" not in line for line in lines), "bare CR or LF"
    # exporters.contentlines goes past 75 octets only inside a whitespace run of about a
    # line (a blank continuation line would be dropped by vobject, so by Radicale).
    for line in (line for line in lines if len(line) > 75):
        runs = re.findall(r"\s+", line.decode("utf-8"))
        assert max((len(run.encode()) for run in runs), default=0) >= 70, line
    data.decode("utf-8")  # folding never splits a character


def test_it_keeps_defaults_it_had_to_add_out_of_the_records() -> None:
    event = Event(
        uid="d-1",
        start=berlin(2024, 1, 8, 9),
        end=berlin(2024, 1, 8, 10),
        summary="Sync",
        location="Room 1",
        rrule="FREQ=WEEKLY",
        alarms=(Alarm(trigger="-PT5M"),),
        overrides=(Override(recurrence_id=berlin(2024, 1, 15, 9), summary="Sync (renamed)"),),
    )
    data = event_to_ics(event, stamp=STAMP)
    parsed = VCalendar.from_ical(data)
    alarm = parsed.walk("VALARM")[0]
    assert str(alarm["ACTION"]) == "DISPLAY" and str(alarm["DESCRIPTION"]) == "Sync"  # RFC 5545 needs both
    moved = next(e for e in parsed.walk("VEVENT") if "RECURRENCE-ID" in e)
    assert str(moved["LOCATION"]) == "Room 1"  # inherited, so other clients show it
    assert moved.decoded("DURATION") == dt.timedelta(hours=1)
    assert read_calendar(data).events == (event,)


def test_it_keeps_backslash_n_literally() -> None:
    # icalendar's own escaper reads a literal backslash-N as a line break.
    event = Event(uid="p-1", start=When(date=dt.date(2024, 1, 1)), summary="C:\\New folder\\N;x,y")
    data = event_to_ics(event, stamp=STAMP)
    assert b"SUMMARY:C:\\\\New folder\\\\N\\;x\\,y\r\n" in data
    assert read_calendar(data).events == (event,)
    assert IcsCalendarStream.calendar_from_ics(data.decode()).events[0].summary == event.summary


def test_it_writes_a_url_with_spaces_as_a_valid_uri() -> None:
    event = Event(uid="u-1", start=When(date=dt.date(2024, 1, 1)), url="https://example.com/my file")
    data = event_to_ics(event, stamp=STAMP)
    assert b"URL:https://example.com/my%20file\r\n" in data
    assert read_calendar(data).events[0].url == "https://example.com/my file"


def test_it_encodes_odd_email_addresses_in_mailto() -> None:
    event = Event(
        uid="m-1",
        start=When(date=dt.date(2024, 1, 1)),
        attendees=(Attendee(email="a,b c%@example.com", name='Quote "me"\nplease'),),
    )
    data = event_to_ics(event, stamp=STAMP)
    unfolded = data.replace(b"\r\n ", b"")
    assert b"mailto:a%2Cb%20c%25@example.com" in unfolded
    assert b"CN=\"Quote ^'me^'^nplease\"" in unfolded  # RFC 6868
    assert read_calendar(data).events == (event,)


# --- structure -------------------------------------------------------------------------


def test_it_writes_each_vtimezone_once_before_the_events() -> None:
    start = When(datetime=dt.datetime(2024, 3, 1, 9), tz=NEW_YORK)
    evs = [Event(uid=f"z-{i}", start=start if i % 2 else berlin(2024, 3, 1, 9)) for i in range(6)]
    data = export(Calendar(CalendarInfo(name="Zones"), tuple(evs)))
    assert data.count(b"BEGIN:VTIMEZONE") == 2
    assert re.findall(rb"\r\nTZID:([^\r]*)", data) == [b"America/New_York", b"Europe/Berlin"]
    assert data.rindex(b"END:VTIMEZONE") < data.index(b"BEGIN:VEVENT")
    assert_well_formed(data)


def test_it_describes_zones_for_ever_with_the_zones_current_rule() -> None:
    # An unbounded series needs no horizon: the rule itself is written as RRULEs, and
    # the zone's whole history before it (tests/formats/test_ical_tz.py checks every onset).
    event = Event(uid="l-1", start=berlin(2024, 1, 1, 9), rrule="FREQ=YEARLY")
    data = event_to_ics(event, stamp=STAMP)
    zone = data[data.index(b"BEGIN:VTIMEZONE") : data.index(b"END:VTIMEZONE")]
    assert b"DTSTART:16010101T000000\r\n" in zone  # before the first change (local mean time)
    assert b"RRULE:FREQ=YEARLY;BYMONTH=3;BYDAY=-1SU\r\n" in zone
    assert b"RRULE:FREQ=YEARLY;BYMONTH=10;BYDAY=-1SU\r\n" in zone
    assert b"COMMENT" not in zone  # RFC 5545 allows none directly in VTIMEZONE


def test_archive_calendars_describe_zones_beyond_2100_and_before_1970() -> None:
    # Archives used to get 1970-2100 whatever their events: icalendar's VTIMEZONE
    # reader (which trusts the file for a TZID it does not know) put these an hour off.
    cases = [
        (When(datetime=dt.datetime(2101, 7, 1, 12), tz=BERLIN), dt.datetime(2101, 7, 1, 10, tzinfo=dt.UTC)),
        (When(datetime=dt.datetime(1965, 7, 1, 12), tz=NEW_YORK), dt.datetime(1965, 7, 1, 16, tzinfo=dt.UTC)),
    ]
    events = [Event(uid=f"s-{i}", start=start) for i, (start, _) in enumerate(cases)]
    data = export(Calendar(CalendarInfo(name="Span"), tuple(events))).decode()
    for tzid in (BERLIN, NEW_YORK):
        data = data.replace(tzid, f"Span test {tzid}")  # unknown to every database: the VTIMEZONE decides
    starts = {str(e["UID"]): e.decoded("DTSTART") for e in VCalendar.from_ical(data).walk("VEVENT")}
    assert [starts[f"s-{i}"].astimezone(dt.UTC) for i in range(2)] == [utc for _, utc in cases]


def test_events_without_timestamps_are_stamped_with_the_export_time() -> None:
    plain = Event(uid="d-1", start=berlin(2024, 1, 1, 9), rrule="FREQ=DAILY")
    plain = dataclasses.replace(plain, overrides=(Override(recurrence_id=berlin(2024, 1, 2, 9), summary="moved"),))
    changed = Event(uid="d-2", start=berlin(2024, 1, 1, 9), updated=dt.datetime(2023, 2, 3, 4, 5, 6, tzinfo=dt.UTC))
    data = export(Calendar(CalendarInfo(name="Stamps"), (plain, changed)))
    stamps = {
        str(e["UID"]) + ("*" if "RECURRENCE-ID" in e else ""): e.decoded("DTSTAMP")
        for e in VCalendar.from_ical(data).walk("VEVENT")
    }
    assert stamps == {"d-1": STAMP, "d-1*": STAMP, "d-2": dt.datetime(2023, 2, 3, 4, 5, 6, tzinfo=dt.UTC)}
    assert b"19700101T000000Z" not in data
    assert read_calendar(data).events == (plain, changed)  # the stamp is not read back as a change time


def test_a_calendar_without_events_still_holds_a_component_and_round_trips() -> None:
    # RFC 5545 3.4 wants at least one component; strict readers refuse an empty VCALENDAR.
    cal = Calendar(CalendarInfo(name="Holidays (none yet)", color="#ff0000", description="later"))
    data = b"".join(iter_calendar(cal.info, [], [], stamp=STAMP, home_zone="Asia/Tokyo"))
    parsed = VCalendar.from_ical(data)
    assert [c.name for c in parsed.subcomponents] == ["VTIMEZONE"]
    assert str(parsed.subcomponents[0]["TZID"]) == "Asia/Tokyo"
    IcsCalendarStream.calendar_from_ics(data.decode())
    assert read_calendar(data) == cal
    fallback = b"".join(iter_calendar(cal.info, [], [], stamp=STAMP, home_zone="Not/A_Zone"))
    assert b"TZID:Etc/UTC\r\n" in fallback and read_calendar(fallback) == cal


def test_it_is_deterministic(alice: tuple[Calendar, ...]) -> None:
    assert [export(cal) for cal in alice] == [export(cal) for cal in alice]


def test_it_refuses_an_event_whose_zone_was_not_announced() -> None:
    chunks = iter_calendar(CalendarInfo(name="x"), [Event(uid="e-9", start=berlin(2024, 1, 1, 9))], [], stamp=STAMP)
    next(chunks)
    with pytest.raises(ValueError, match=r"e-9.*Europe/Berlin"):
        next(chunks)


def test_it_pulls_events_one_at_a_time() -> None:
    pulled = 0

    def many() -> Iterator[Event]:
        nonlocal pulled
        for i in range(20_000):
            pulled += 1
            yield Event(uid=f"n-{i}", start=berlin(2024, 1, 1, 9), summary="x" * 200, rrule="FREQ=DAILY")

    tracemalloc.start()
    try:
        chunks = iter_calendar(CalendarInfo(name="Big"), many(), [BERLIN], stamp=STAMP)
        assert b"BEGIN:VTIMEZONE" in next(chunks) and pulled == 0
        for n in range(1, 301):
            assert b"UID:n-%d\r\n" % (n - 1) in next(chunks)
            assert pulled == n
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert isinstance(chunks, Generator)
    chunks.close()
    assert peak < 5_000_000  # nothing accumulates per event


# --- recurrence: what other programs expand --------------------------------------------


def expected_instances(cal: Calendar, lo: dt.datetime, hi: dt.datetime) -> set[tuple]:
    """Instances computed from the records alone, with dateutil (no iCalendar involved)."""
    out = set()
    for event in cal.events:
        start, all_day = _py(event.start), event.start.date is not None
        length = (_py(event.end) - start) if event.end else dt.timedelta(days=1 if all_day else 0)
        if event.rrule:
            after, before = (b if start.tzinfo else b.replace(tzinfo=None) for b in (lo, hi))
            starts = list(rrulestr(event.rrule, dtstart=start).between(after, before, inc=True))
        else:
            starts = [start]
        starts += [_py(w) for w in event.rdates]
        starts = [s for s in starts if s not in [_py(w) for w in event.exdates]]
        instances = {s: (s, s + length, event.summary) for s in starts}
        for o in event.overrides:
            rid = _py(o.recurrence_id)
            new_start = _py(o.start) if o.start else rid
            new_end = _py(o.end) if o.end else new_start + length
            instances[rid] = (new_start, new_end, o.summary or event.summary)
        for s, e, summary in instances.values():
            first, last = (s.date(), e.date()) if all_day else (s, e)
            out.add((event.uid, _key(first), _key(last), summary))
    return out


def _py(when: When) -> dt.datetime:
    if when.date is not None:
        return dt.datetime.combine(when.date, dt.time())
    assert when.datetime is not None
    return when.datetime.replace(tzinfo=ZoneInfo(when.tz)) if when.tz else when.datetime


def _key(value: dt.date) -> tuple:
    if not isinstance(value, dt.datetime):
        return ("date", value)
    return ("floating", value) if value.tzinfo is None else ("utc", value.astimezone(dt.UTC))


def expanded_by_recurring_ical_events(data: bytes, lo: dt.datetime, hi: dt.datetime) -> set[tuple]:
    out = set()
    for comp in recurring_ical_events.of(VCalendar.from_ical(data)).between(lo, hi):
        start = comp["DTSTART"].dt
        if "DTEND" in comp:
            end = comp["DTEND"].dt
        else:
            end = start + (comp["DURATION"].dt if "DURATION" in comp else dt.timedelta(0))
        out.add((str(comp["UID"]), _key(start), _key(end), comp.get("SUMMARY") and str(comp["SUMMARY"])))
    return out


def expanded_by_ical(data: bytes, lo: dt.datetime, hi: dt.datetime) -> set[tuple]:
    parsed = IcsCalendarStream.calendar_from_ics(data.decode())
    return {(e.uid, _key(e.start), _key(e.end), e.summary) for e in parsed.timeline_tz(dt.UTC).overlapping(lo, hi)}


EXPANDERS = [expanded_by_recurring_ical_events, expanded_by_ical]
WINDOW = (dt.datetime(2009, 1, 1, tzinfo=dt.UTC), dt.datetime(2012, 1, 1, tzinfo=dt.UTC))


@pytest.mark.parametrize("expand", EXPANDERS)
def test_other_programs_expand_alice_like_the_records(alice: tuple[Calendar, ...], expand) -> None:
    for cal in alice:
        expected = expected_instances(cal, *WINDOW)
        assert expand(export(cal), *WINDOW) == expected
    weekly = {i for i in expected_instances(alice[0], *WINDOW) if i[0] == "e-0001@example.com"}
    assert len(weekly) == 9  # COUNT=10 minus the EXDATE; the moved one is there at 10:00
    assert (
        "e-0001@example.com",
        _key(dt.datetime(2009, 10, 19, 8, 0, tzinfo=dt.UTC)),
        _key(dt.datetime(2009, 10, 19, 8, 30, tzinfo=dt.UTC)),
        "Weekly sync (moved)",
    ) in weekly


def tricky_calendar() -> Calendar:
    """Series across a DST change, defaults inherited by overrides, RDATE, zero length."""
    ny = lambda *a: When(datetime=dt.datetime(*a), tz=NEW_YORK)  # noqa: E731
    return Calendar(
        CalendarInfo(name="Tricky"),
        (
            Event(
                uid="t-dst",
                start=ny(2021, 3, 12, 9),
                end=ny(2021, 3, 12, 10),
                summary="Daily",
                rrule=canonical_rrule("FREQ=DAILY;UNTIL=20210317T090000", ny(2021, 3, 12, 9)),
                rdates=(ny(2021, 3, 20, 9),),
                exdates=(ny(2021, 3, 13, 9),),
                overrides=(
                    Override(recurrence_id=ny(2021, 3, 15, 9), summary="Renamed only"),
                    Override(
                        recurrence_id=ny(2021, 3, 16, 9),
                        start=When(datetime=dt.datetime(2021, 3, 16, 20, tzinfo=dt.UTC)),
                    ),
                ),
            ),
            Event(
                uid="t-allday",
                start=When(date=dt.date(2021, 3, 1)),
                summary="Weekly day",
                rrule="FREQ=WEEKLY;COUNT=4",
                exdates=(When(date=dt.date(2021, 3, 8)),),
                rdates=(When(date=dt.date(2021, 3, 31)),),
            ),
            Event(
                uid="t-floating",
                start=When(datetime=dt.datetime(2021, 3, 2, 7)),
                summary="Wake",
                end=When(datetime=dt.datetime(2021, 3, 2, 7, 15)),
                rrule="FREQ=DAILY;COUNT=3",
                overrides=(
                    Override(
                        recurrence_id=When(datetime=dt.datetime(2021, 3, 3, 7)),
                        start=When(datetime=dt.datetime(2021, 3, 3, 9)),
                    ),
                ),
            ),
            Event(
                uid="t-kathmandu",
                start=When(datetime=dt.datetime(2021, 3, 1, 18, 45), tz="Asia/Kathmandu"),
                end=When(datetime=dt.datetime(2021, 3, 1, 19, 45), tz="Asia/Kathmandu"),
                summary="Monthly",
                rrule=canonical_rrule("FREQ=MONTHLY;BYDAY=1MO;COUNT=3"),
            ),
            Event(
                uid="t-zero",
                start=When(datetime=dt.datetime(2021, 3, 5, 12, tzinfo=dt.UTC)),
                end=When(datetime=dt.datetime(2021, 3, 5, 12, tzinfo=dt.UTC)),
                summary="Instant",
            ),
        ),
    )


@pytest.mark.parametrize("expand", EXPANDERS)
def test_other_programs_expand_tricky_series_like_the_records(expand) -> None:
    cal = tricky_calendar()
    window = (dt.datetime(2021, 1, 1, tzinfo=dt.UTC), dt.datetime(2021, 7, 1, tzinfo=dt.UTC))
    data = export(cal)
    assert read_calendar(data) == cal
    expected = expected_instances(cal, *window)
    assert (
        "t-dst",
        _key(dt.datetime(2021, 3, 15, 13, tzinfo=dt.UTC)),  # 09:00 EDT after the change
        _key(dt.datetime(2021, 3, 15, 14, tzinfo=dt.UTC)),
        "Renamed only",
    ) in expected
    assert expand(data, *window) == expected


# --- canonical forms -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "canonical"),
    [
        ("FREQ=WEEKLY;BYDAY=MO;COUNT=10", "FREQ=WEEKLY;COUNT=10;BYDAY=MO"),
        ("rrule:freq=monthly;byday=-1su;", "FREQ=MONTHLY;BYDAY=-1SU"),
        (
            " FREQ=DAILY;INTERVAL=02;UNTIL=20301231T000000Z ",
            "FREQ=DAILY;UNTIL=20301231T000000Z;INTERVAL=2",
        ),
    ],
)
def test_it_gives_rrules_one_text_form(raw: str, canonical: str) -> None:
    assert canonical_rrule(raw) == canonical
    assert canonical_rrule(canonical) == canonical


def test_it_gives_until_the_value_type_of_the_start() -> None:
    rule = "FREQ=DAILY;UNTIL=20240310"
    assert canonical_rrule(rule, When(date=dt.date(2024, 3, 1))) == "FREQ=DAILY;UNTIL=20240310"
    assert canonical_rrule(rule, berlin(2024, 3, 1, 9)) == "FREQ=DAILY;UNTIL=20240310T225959Z"
    floating = When(datetime=dt.datetime(2024, 3, 1, 9))
    assert canonical_rrule("FREQ=DAILY;UNTIL=20240310T090000Z", floating) == "FREQ=DAILY;UNTIL=20240310T090000"


@pytest.mark.parametrize(
    ("raw", "problem"),
    [
        ("", "FREQ is missing"),
        ("garbage", "not a rule part"),
        ("FREQ=HOURLY;FREQ=DAILY", "twice"),
        ("FREQ=DAILY;COUNT=2;UNTIL=20240101", "not both"),
        ("FREQ=DAILY;BYMONTH=13", "valid RRULE"),
        ("FREQ=FORTNIGHTLY", "valid RRULE"),
        ("FREQ=DAILY;FOO=1", "not a rule part"),
    ],
)
def test_it_explains_invalid_rrules(raw: str, problem: str) -> None:
    with pytest.raises(ValueError, match=problem):
        canonical_rrule(raw)


@pytest.mark.parametrize(
    ("raw", "canonical"),
    [
        ("-PT15M", "-PT15M"),
        ("-pt15m", "-PT15M"),
        ("+PT90M", "PT1H30M"),
        ("P1W", "P7D"),
        ("PT24H", "P1D"),
        ("-P1DT2H", "-P1DT2H"),
        ("PT0S", "P0D"),
    ],
)
def test_it_gives_durations_one_text_form(raw: str, canonical: str) -> None:
    assert canonical_duration(raw) == canonical


@pytest.mark.parametrize("raw", ["", "P", "PT", "15M", "-P1H", "P1D1H", "PT1.5H", "P99999999999W"])
def test_it_explains_invalid_durations(raw: str) -> None:
    with pytest.raises(ValueError, match="duration"):
        canonical_duration(raw)


# --- other programs' files -------------------------------------------------------------


def test_it_reads_a_google_export() -> None:
    cal = read_calendar((DATA / "google-recurring.ics").read_bytes())
    assert cal.info == CalendarInfo(name="Team, shared", description="Line one\nLine two")
    (event,) = cal.events
    assert event.rrule == "FREQ=WEEKLY;UNTIL=20230130T085959Z;BYDAY=MO;WKST=MO"
    assert event.status == "CONFIRMED" and event.location is None
    assert event.organizer == Person(email="carol@example.com", name="Carol")
    assert event.attendees == (Attendee("dan@example.com", "Dan O'Brien", "REQ-PARTICIPANT", "ACCEPTED"),)
    assert event.alarms == (Alarm(trigger="-PT10M", action="DISPLAY", description="This is an event reminder"),)
    assert event.overrides[0].start == berlin(2023, 1, 16, 12)
    assert read_calendar(export(cal)) == cal


def test_it_reads_windows_zone_names_durations_and_absolute_alarms() -> None:
    cal = read_calendar((DATA / "outlook-windows-zone.ics").read_bytes())
    review, dinner = cal.events
    assert review.start == berlin(2024, 3, 4, 14) and review.end == berlin(2024, 3, 4, 15, 30)
    assert review.rrule == "FREQ=DAILY;UNTIL=20240308T130000Z"  # floating UNTIL read in the zone
    assert review.rdates == (berlin(2024, 3, 11, 14),)  # a PERIOD's start
    assert [a.trigger for a in review.alarms] == ["PT1H", "-PT15M"]  # RELATED=END, absolute
    # A zone only this file defines: kept as the absolute time it means.
    assert dinner.start == When(datetime=dt.datetime(2024, 3, 5, 16, tzinfo=dt.UTC))
    assert read_calendar(export(cal)) == cal


def test_it_makes_a_series_of_overrides_whose_series_is_missing() -> None:
    (event,) = read_calendar((DATA / "orphan-overrides.ics").read_bytes()).events
    utc = lambda *a: When(datetime=dt.datetime(*a).replace(tzinfo=dt.UTC))  # noqa: E731
    assert (event.start, event.rdates) == (utc(2024, 5, 6, 8), (utc(2024, 5, 13, 8),))
    assert [(o.start, o.status) for o in event.overrides] == [
        (utc(2024, 5, 6, 9), None),
        (utc(2024, 5, 13, 8), "CANCELLED"),
    ]


def test_it_reads_backslashes_in_parameters_literally() -> None:
    # As Radicale serves a name ending in a backslash: RFC 5545 has no escapes there.
    data = (
        b"BEGIN:VCALENDAR\r\nVERSION:2.0\r\nBEGIN:VEVENT\r\nUID:b-1\r\n"
        b"DTSTART:20240101T090000Z\r\nSUMMARY:a\\;b\r\n"
        b"ATTENDEE;CN=Ann\\;PARTSTAT=ACCEPTED:mailto:ann@example.com\r\n"
        b'ORGANIZER;CN="C:\\Users\\,x":mailto:c@example.com\r\n'
        b"END:VEVENT\r\nEND:VCALENDAR\r\n"
    )
    (event,) = read_calendar(data).events
    assert event.summary == "a;b"  # values keep their TEXT escapes
    assert event.attendees == (Attendee("ann@example.com", "Ann\\", partstat="ACCEPTED"),)
    assert event.organizer == Person("c@example.com", "C:\\Users\\,x")


def test_it_writes_one_rdate_per_line_in_vtimezones() -> None:
    # vobject (and so Radicale) keeps only the first value of an RDATE list there.
    data = event_to_ics(Event(uid="v-1", start=berlin(2024, 1, 1, 9)), stamp=STAMP)
    zone = data[data.index(b"BEGIN:VTIMEZONE") : data.index(b"END:VTIMEZONE")]
    assert b"RDATE:19810329T020000\r\n" in zone and b"," not in zone  # 02:00 CET: the spring-forward onset


@pytest.mark.parametrize("data", [b"", b"hello", b"BEGIN:VCARD\r\nEND:VCARD\r\n"])
def test_it_refuses_files_that_are_not_calendars(data: bytes) -> None:
    with pytest.raises(InvalidInput):
        read_calendar(data)


@pytest.mark.parametrize(("duration", "trigger"), [("20200101", "-PT15M"), ("PT1H", "20200101")])
def test_it_refuses_a_date_where_a_duration_belongs(duration: str, trigger: str) -> None:
    # icalendar reads these as dates; the reader used to fail with a TypeError (found by mypy).
    data = "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nBEGIN:VEVENT\r\nUID:odd-duration\r\nDTSTART:20200101T100000Z\r\n"
    data += f"DURATION:{duration}\r\nBEGIN:VALARM\r\nACTION:DISPLAY\r\nTRIGGER:{trigger}\r\nEND:VALARM\r\n"
    data += "END:VEVENT\r\nEND:VCALENDAR\r\n"
    with pytest.raises(InvalidInput, match="odd-duration"):
        read_calendar(data.encode())


def test_it_names_the_event_without_a_start() -> None:
    data = b"BEGIN:VCALENDAR\r\nVERSION:2.0\r\nBEGIN:VEVENT\r\nUID:no-start\r\n"
    data += b"END:VEVENT\r\nEND:VCALENDAR\r\n"
    with pytest.raises(InvalidInput, match="no-start"):
        read_calendar(data)


def _one_event(*lines: str) -> bytes:
    body = "".join(f"{line}\r\n" for line in lines)
    return f"BEGIN:VCALENDAR\r\nVERSION:2.0\r\nBEGIN:VEVENT\r\n{body}END:VEVENT\r\nEND:VCALENDAR\r\n".encode()


def _problems(data: bytes, how: str) -> list[tuple[str, str]]:
    with pytest.raises(InvalidInput) as refused:
        if how == "whole":
            read_calendar(data)
        else:
            list(stream_calendar([data], lean=how == "lean")[1])
    return refused.value.problems


BROKEN_DATES = [
    ("DTSTART:20261301T000000", "DTSTART '20261301T000000' is not a date or a date-time"),
    ("DTSTART;TZID=Europe/Berlin:20261201T25", "DTSTART '20261201T25' is not a date or a date-time"),
    ("DTSTART:2026-12-01", "DTSTART '2026-12-01' is not a date or a date-time"),
]


@pytest.mark.parametrize("how", ["whole", "lean", "icalendar"])
@pytest.mark.parametrize(("line", "said"), BROKEN_DATES)
def test_a_broken_dtstart_is_one_line_naming_the_event_the_value_and_how_to_write_it(
    line: str, said: str, how: str
) -> None:
    """In our words, not icalendar's ("Cannot access 'dt' on broken property ..."), by every reading path."""
    ((where, what),) = _problems(_one_event("UID:meet-1", "SUMMARY:Standup", line), how)
    assert where == "event 'meet-1'"
    assert what == f"{said}: write it as YYYYMMDD (all day) or YYYYMMDDTHHMMSS (Z at the end for UTC)"


@pytest.mark.parametrize("how", ["whole", "lean", "icalendar"])
def test_an_event_without_uid_is_named_by_its_summary_not_a_made_up_uid(how: str) -> None:
    ((where, what),) = _problems(_one_event("SUMMARY:Standup", "DTSTART:20261301T000000"), how)
    assert where == "event without UID, summary 'Standup'"
    assert what.startswith("DTSTART '20261301T000000' is not a date")
