"""The lean VEVENT decoder gives the records icalendar's parse gives, and is what reads our own files.

Why both halves: equality alone would hold if the lean decoder refused every
line (the icalendar path then reads everything), so the tests also prove it
decodes every VEVENT our writer emits. The comparison is of whole streams:
records, the calendar's info, and the problems and messages of files that fail.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from account.jsonio import account_from_dict
from account.records import Calendar, CalendarInfo, Event, Override, When
from account.sample import SampleSize, generate_account
from errors import InvalidInput
from exporters.archive.drill_memo import CalendarSplit, Unsplittable
from exporters.ical import lean, quick, reader
from exporters.ical.reader import stream_calendar, stream_calendar_items
from exporters.ical.writer import iter_calendar, zones_used
from tests.profiles import examples
from tests.strategies.events import calendars
from tests.strategies.text import hostile_text

DATA = Path(__file__).parent.parent / "data"
STAMP = dt.datetime(2026, 5, 1, 12, 30, tzinfo=dt.UTC)
SOME = settings(max_examples=examples(80), deadline=None, suppress_health_check=[HealthCheck.too_slow])


def export(cal: Calendar) -> bytes:
    zones = set().union(set(), *(zones_used(e) for e in cal.events))
    return b"".join(iter_calendar(cal.info, cal.events, zones, stamp=STAMP))


def outcome(data: bytes, *, lean: bool, size: int = 1 << 16) -> tuple[Any, ...]:
    """What a stream gives: (info, events) or the error's type, message and problems, at the point it fails."""
    pieces = [data[i : i + size] for i in range(0, len(data), size)] or [b""]
    try:
        info, events = stream_calendar(pieces, lean=lean)
    except InvalidInput as exc:
        return ("refused", str(exc), exc.problems)
    got: list[Event] = []
    try:
        for event in events:
            got.append(event)
    except InvalidInput as exc:
        return (info, tuple(got), str(exc), exc.problems)
    return (info, tuple(got))


def assert_same(data: bytes, size: int = 1 << 16) -> Any:
    lean = outcome(data, lean=True, size=size)
    assert lean == outcome(data, lean=False, size=size)
    return lean


@pytest.fixture
def decoded(monkeypatch: pytest.MonkeyPatch, one_pass: list[bool]) -> list[bool]:
    """Whether each VEVENT was read without icalendar (True: in one pass, or by the lean decoder) or with it."""
    seen: list[bool] = []
    decode: Callable[[list[str]], Any] = reader._LEAN.decode
    read_in_one_pass: Callable[[list[str]], Any] = quick.quick_event

    def counting(lines: list[str]) -> Any:
        component = decode(lines)
        if lines[0].upper() == "BEGIN:VEVENT":
            seen.append(component is not None)
        return component

    def counting_one_pass(lines: list[str]) -> Any:
        event = read_in_one_pass(lines)
        if event is not None:
            seen.append(True)
        return event

    monkeypatch.setattr(reader._LEAN, "decode", counting)
    monkeypatch.setattr(quick, "quick_event", counting_one_pass)
    return seen


@pytest.fixture
def one_pass(monkeypatch: pytest.MonkeyPatch) -> list[bool]:
    """For each series VEVENT (no RECURRENCE-ID), whether `quick_event` read it (True) or left it to the decoder."""
    seen: list[bool] = []
    read_in_one_pass: Callable[[list[str]], Any] = quick.quick_event

    def counting(lines: list[str]) -> Any:
        event = read_in_one_pass(lines)
        if lines[0] == "BEGIN:VEVENT" and not any(line.startswith("RECURRENCE-ID") for line in lines):
            seen.append(event is not None)
        return event

    monkeypatch.setattr(quick, "quick_event", counting)
    return seen


def test_alices_calendars_decode_lean_to_the_records_icalendar_gives(decoded: list[bool], one_pass: list[bool]) -> None:
    for cal in account_from_dict(json.loads((DATA / "alice.json").read_text("utf-8"))).calendars:
        data = export(cal)
        decoded.clear()
        one_pass.clear()
        assert assert_same(data) == (cal.info, cal.events)
        assert decoded and all(decoded)
        assert one_pass and all(one_pass)


def test_a_generated_account_decodes_lean_to_the_records_icalendar_gives(
    decoded: list[bool], one_pass: list[bool]
) -> None:
    size = SampleSize(contacts=0, events=600, notes=0)
    for cal in generate_account("gen@example.com", size, seed=7).calendars:
        data = export(cal)
        decoded.clear()
        one_pass.clear()
        info, events = assert_same(data, size=4096)
        assert (info, events) == (cal.info, cal.events)
        assert len(decoded) >= len(cal.events) and all(decoded)
        assert len(one_pass) == len(cal.events) and all(one_pass)  # every series in one pass


@SOME
@given(cal=calendars(), size=st.sampled_from([1, 7, 1 << 16]))
def test_generated_calendars_decode_lean_to_what_icalendar_gives(cal: Calendar, size: int) -> None:
    data = export(cal)
    assert assert_same(data, size) == (cal.info, cal.events)


def test_every_vevent_our_writer_emits_takes_the_lean_path(decoded: list[bool], one_pass: list[bool]) -> None:
    """Odd zones, recurrence with moved and cancelled instances, escapes, folding, non-ASCII, alarms."""
    start = When(datetime=dt.datetime(2026, 3, 29, 1, 30), tz="Australia/Lord_Howe")
    text = "Zürich; \\n, \\N; 日本語 " * 40 + "\n\\\\ end"
    event = Event(
        uid="odd;uid,with\\escapes",
        start=start,
        end=When(datetime=dt.datetime(2026, 3, 29, 3, 0), tz="Asia/Kathmandu"),
        summary=text[:200],
        description=text,
        location='Dach, "Ost"; 3:4',
        rrule="FREQ=WEEKLY;BYDAY=SU;COUNT=10",
        rdates=(When(datetime=dt.datetime(2026, 4, 1, 1, 30), tz="Australia/Lord_Howe"),),
        exdates=(When(datetime=dt.datetime(2026, 4, 12, 1, 30), tz="Australia/Lord_Howe"),),
        overrides=(
            Override(recurrence_id=When(datetime=dt.datetime(2026, 4, 5, 1, 30), tz="Australia/Lord_Howe")),
            Override(
                recurrence_id=When(datetime=dt.datetime(2026, 4, 19, 1, 30), tz="Australia/Lord_Howe"),
                summary="moved: ünïcödé",
                start=When(datetime=dt.datetime(2026, 4, 20, 9, 0, tzinfo=dt.UTC)),
                status="CANCELLED",
            ),
        ),
        categories=("a,b", "c;d", "ë"),
        url="https://example.com/ä b",
        status="x-odd status",
        transparency="TRANSPARENT",
        created=dt.datetime(2020, 1, 2, 3, 4, 5, tzinfo=dt.UTC),
        updated=dt.datetime(2021, 1, 2, 3, 4, 5, tzinfo=dt.UTC),
    )
    all_day = Event(uid="day", start=When(date=dt.date(2026, 1, 1)), end=When(date=dt.date(2026, 1, 1)))
    floating = Event(uid="float", start=When(datetime=dt.datetime(2026, 1, 1, 9)), end=When(date=dt.date(2026, 1, 3)))
    cal = Calendar(CalendarInfo("Ödd: cal", "#FF0000", "a\\nb"), (event, all_day, floating))
    data = export(cal)
    assert max(len(line) for line in data.split(b"\r\n")) <= 75  # folded
    _, events = assert_same(data, 5)  # not all canonical records: equal to icalendar's, not to these
    assert [e.uid for e in events] == ["odd;uid,with\\escapes", "day", "float"]
    assert events[0].overrides[1].summary == "moved: ünïcödé" and events[0].description == text
    assert decoded and all(decoded)
    # Each is one the one pass leaves to the decoder: a status kept aside (X-LIFEBOAT-STATUS), a zero-length
    # all-day event (DURATION:P0D) and an end of another kind than its start (X-LIFEBOAT-DTEND).
    assert one_pass == [False, False, False]


# --- files not ours: whatever the lean decoder refuses, icalendar reads as before ---------


@pytest.mark.parametrize("name", sorted(p.name for p in (DATA / "ical").glob("*.ics")))
def test_other_programs_files_read_the_same_either_way(name: str) -> None:
    assert_same((DATA / "ical" / name).read_bytes())


_EVENT = Event(
    uid="base",
    start=When(datetime=dt.datetime(2026, 1, 5, 9, 0), tz="Europe/Berlin"),
    end=When(datetime=dt.datetime(2026, 1, 5, 10, 0), tz="Europe/Berlin"),
    summary="Stand-up",
    rrule="FREQ=DAILY;COUNT=5",
)

# Lines an edited or foreign file may hold, each placed into a VEVENT written by us.
_ODD_LINES = [
    "DTSTART;TZID=W. Europe Standard Time:20260105T090000",  # a Windows zone name
    "DTSTART;TZID=Europe/Berlin:20260105",  # a date with a zone
    "DTSTART;TZID=Europe/Berlin:20260105T090000Z",
    "DTSTART;VALUE=PERIOD:20260105T090000Z/PT1H",
    "DTSTART:20261305T090000",  # month 13
    "DTSTART:20260105T240000",  # hour 24
    "DTSTART:20260105T235960",  # a leap second
    "DTEND:20260229T090000",  # no 29 February in 2026
    "DTSTART:20260105t090000",
    "DTSTART:20260105T090000z",
    "DTSTART:２0260105T090000",  # a full-width digit
    "DTSTART;VALUE=DATE:2026010５",
    "DTEND;TZID=Europe/Berlin:20260105T100000Z",
    "DTSTART:2026-01-05",
    "DTSTART;TZID=Nowhere/Special:20260105T090000",
    "dtstart;tzid=Europe/Berlin:20260105T090000",
    'DTSTART;TZID="Europe/Berlin":20260105T090000',
    "DTSTART:20260105T090000",  # a second DTSTART
    "DTEND;VALUE=DATE:20260106",
    "SUMMARY;VALUE=TEXT:typed",
    "SUMMARY;LANGUAGE=de:Grüße\\, alle",
    "SUMMARY;X-A=a\\;b:backslash in a parameter",
    "SUMMARY:second summary",
    'DESCRIPTION;ALTREP="cid:x:y":quoted colon',
    "UID:",
    "RDATE:",
    "RDATE;VALUE=DATE:20260110,20260111",
    "RDATE:20260110T090000Z/PT1H",
    "EXDATE;TZID=Europe/Berlin:20260106T090000,20260107T090000",
    "EXDATE:20260106T090000Z",
    "X-LIFEBOAT-DTEND:20260105T110000",
    "X-LIFEBOAT-DTEND;VALUE=DATE-TIME;TZID=Asia/Tokyo:20260105T110000",
    "CREATED;TZID=Europe/Berlin:20200101T000000",
    "LAST-MODIFIED:20200101",
    'ATTENDEE;CN="Ann: the \\"boss\\"";PARTSTAT=ACCEPTED:mailto:ann@example.com',
    "ATTENDEE;CN=Bob\\;PARTSTAT=DECLINED:mailto:bob@example.com",
    "ORGANIZER:mailto:x@example.com",
    "CATEGORIES:a\\,b,c",
    "STATUS:confirmed",
    "TRIGGER:-PT15M",
    "X-LIFEBOAT-RRULE:not a rule",
    "BEGIN:VTODO",
    "END:VTODO",
    "BEGIN:VALARM",
    "END:VALARM",
    "RRULE:FREQ=NEVER",
    "DURATION:20260101",
    "NOCOLON",
    ":novalue",
]


@SOME
@given(
    lines=st.lists(st.sampled_from(_ODD_LINES) | hostile_text().map(lambda t: "SUMMARY:" + t), max_size=4),
    at=st.integers(1, 12),
)
def test_edited_vevents_read_the_same_either_way(lines: list[str], at: int) -> None:
    data = export(Calendar(CalendarInfo("Edited"), (_EVENT, replace(_EVENT, uid="next"))))
    text = data.decode()
    head, _, rest = text.partition("BEGIN:VEVENT\r\n")
    body = rest.split("\r\n")
    at = min(at, len(body) - 1)
    edited = head + "BEGIN:VEVENT\r\n" + "\r\n".join(body[:at] + [line.replace("\r", "") for line in lines] + body[at:])
    assert_same(edited.encode())


@pytest.mark.parametrize("line", _ODD_LINES)
def test_each_odd_line_reads_the_same_either_way(line: str) -> None:
    data = export(Calendar(CalendarInfo("Edited"), (_EVENT,)))
    assert_same(data.replace(b"SUMMARY:Stand-up\r\n", line.encode() + b"\r\n"))
    assert_same(data.replace(b"SUMMARY:Stand-up\r\n", b"SUMMARY:Stand-up\r\n" + line.encode() + b"\r\n"))


def test_long_lines_are_read_alike_and_not_remembered() -> None:
    """A foreign 50 KB X- property on every event is read the same either way and kept in no memo."""
    events = tuple(replace(_EVENT, uid=f"long-{i}") for i in range(3))
    data = export(Calendar(CalendarInfo("Long"), events)).decode()
    long_lines = [f"X-ALT-DESC;FMTTYPE=text/html:{'<p>' + str(i) * 20_000}" for i in range(3)]
    parts = data.split("SUMMARY:Stand-up\r\n")
    edited = parts[0] + "".join(
        f"SUMMARY:Stand-up\r\n{line}\r\n{rest}" for line, rest in zip(long_lines, parts[1:], strict=True)
    )
    assert assert_same(edited.encode())[1] == events
    assert not any(len(line) > lean.KEPT_LINE_CHARS for line in quick._LINES)


# --- one event group straight from its bytes (`quick.read_block`, what the fidelity drill's memo calls) ---


def streamed_alone(head: bytes, group: bytes) -> Event | None:
    """What the drill's stream gives for one group after the calendar's header: its one event, else None."""
    try:
        _, events = stream_calendar_items([head, group, b"END:VCALENDAR\r\n"])
        found = list(events)
    except InvalidInput:
        return None
    return found[0] if len(found) == 1 and isinstance(found[0], Event) else None


def assert_groups_read_as_the_stream_reads_them(data: bytes) -> list[Event | None]:
    """Each event group read by `read_block` is None or the one event the stream reads from it."""
    split = CalendarSplit([data])
    alone: list[Event | None] = []
    try:
        for group in split.groups():
            assert split.head is not None
            quick_one = quick.read_block(group)
            if quick_one is not None:
                assert quick_one == streamed_alone(split.head, group)
            alone.append(quick_one)
    except Unsplittable:  # not cut as the writer usually lays it out (a UID folded before its colon): read in full
        return []
    return alone


@SOME
@given(cal=calendars())
def test_each_group_read_alone_is_the_event_the_stream_gives(cal: Calendar) -> None:
    assert_groups_read_as_the_stream_reads_them(export(cal))


def test_every_group_of_a_generated_account_is_read_alone_a_series_with_overrides_too() -> None:
    account = generate_account("groups@example.com", SampleSize(contacts=1, events=60, notes=1), seed=3)
    assert any(event.overrides for cal in account.calendars for event in cal.events)
    for cal in account.calendars:
        alone = assert_groups_read_as_the_stream_reads_them(export(cal))
        assert len(alone) == len(cal.events)
        assert all(got is not None for got in alone)


_OVERRIDE_AT = "RECURRENCE-ID;TZID=Europe/Berlin:20260106T090000\r\n"


@SOME
@given(
    lines=st.lists(st.sampled_from(_ODD_LINES) | hostile_text().map(lambda t: "SUMMARY:" + t), min_size=1, max_size=3),
    before=st.booleans(),
)
def test_an_edited_override_is_read_alone_as_the_stream_reads_it_or_left_to_it(lines: list[str], before: bool) -> None:
    moved = Override(recurrence_id=When(datetime=dt.datetime(2026, 1, 6, 9, 0), tz="Europe/Berlin"), summary="m")
    data = export(Calendar(CalendarInfo("Edited"), (replace(_EVENT, overrides=(moved,)), replace(_EVENT, uid="next"))))
    odd = "".join(line.replace("\r", "").replace("\n", "") + "\r\n" for line in lines)
    text = data.decode()
    assert _OVERRIDE_AT in text
    edited = text.replace(_OVERRIDE_AT, odd + _OVERRIDE_AT if before else _OVERRIDE_AT + odd)
    assert_groups_read_as_the_stream_reads_them(edited.encode())


_DIGITS = st.text("0123456789", min_size=1, max_size=2)


@SOME
@given(
    parts=st.lists(
        st.sampled_from(
            [
                "2026",
                "0000",
                "9999",
                "01",
                "12",
                "13",
                "00",
                "29",
                "31",
                "32",
                "23",
                "24",
                "59",
                "60",
                "T",
                "t",
                "Z",
                "z",
                "２",
                "-",
                ":",
                ".",
            ]
        )
        | _DIGITS,
        max_size=9,
    ),
    tzid=st.sampled_from([None, "Europe/Berlin"]),
)
def test_a_date_time_read_the_quick_way_is_what_the_regular_expression_reads(
    parts: list[str], tzid: str | None
) -> None:
    """`lean._value_read` (the ISO 8601 parser for our writer's shapes) accepts and refuses what `_value` does."""
    text = "".join(parts)

    def read(value: Callable[[str, str | None], Any]) -> Any:
        try:
            found = value(text, tzid)
        except lean.Refused:
            return "refused"
        return (found, type(found), getattr(found, "tzinfo", None))

    assert read(lean._value_read) == read(lean._value.__wrapped__)


@pytest.mark.parametrize(
    "edit",
    [b"\n", b"\r", b"\r\n", b"\r\n ", b"\r\n\t", b"X-A:lone\nLF", b"X-A:lone\rCR", b" folded"],
    ids=["lone-LF", "lone-CR", "blank-line", "fold-space", "fold-tab", "LF-inside", "CR-inside", "continued"],
)
def test_a_group_with_odd_line_ends_is_read_alone_as_the_stream_reads_it_or_left_to_it(edit: bytes) -> None:
    data = export(Calendar(CalendarInfo("Edited"), (_EVENT, replace(_EVENT, uid="next"))))
    for where in (b"SUMMARY:Stand-up\r\n", b"END:VEVENT\r\n"):
        assert_groups_read_as_the_stream_reads_them(data.replace(where, where + edit + b"\r\n", 1))
        assert_groups_read_as_the_stream_reads_them(data.replace(where, where[:-2] + edit + b"\r\n", 1))


@pytest.mark.parametrize(
    "trigger",
    ["TRIGGER;VALUE=DATE-TIME:20260105T080000Z", "TRIGGER;RELATED=END:-PT15M", "TRIGGER:-PT15M", "TRIGGER:P1W"],
    ids=["absolute", "related-end", "before-start", "after-start"],
)
def test_one_alarm_block_on_events_of_other_times_is_read_for_each_as_the_stream_reads_it(trigger: str) -> None:
    """An alarm remembered by its lines (`quick._FIXED_ALARMS`) is only one whose trigger is not read against
    the event's start or end: the same block on events of other starts and lengths reads as the stream reads it."""
    events = tuple(
        replace(
            _EVENT,
            uid=f"alarmed-{n}",
            start=When(datetime=dt.datetime(2026, 1, 5 + n, 9, 0), tz="Europe/Berlin"),
            end=When(datetime=dt.datetime(2026, 1, 5 + n, 10 + n, 0), tz="Europe/Berlin"),
        )
        for n in range(3)
    )
    block = f"BEGIN:VALARM\r\nACTION:DISPLAY\r\nDESCRIPTION:Soon\r\n{trigger}\r\nEND:VALARM\r\n"
    data = export(Calendar(CalendarInfo("Alarms"), events)).replace(
        b"END:VEVENT\r\n", block.encode() + b"END:VEVENT\r\n"
    )
    for _ in range(2):  # the second time from what the first remembered
        read = assert_groups_read_as_the_stream_reads_them(data)
        assert len(read) == 3 and all(event is not None and len(event.alarms) == 1 for event in read)
        triggers = {event.alarms[0].trigger for event in read if event is not None}
        assert len(triggers) == (1 if trigger in ("TRIGGER:-PT15M", "TRIGGER:P1W") else 3)


def test_an_override_with_an_alarm_leaves_the_next_series_alarm_read_in_one_pass() -> None:
    """What an override read in one pass leaves in `quick._LINES` never sends a later series the long way."""
    moved = Override(recurrence_id=When(datetime=dt.datetime(2026, 1, 6, 9, 0), tz="Europe/Berlin"), summary="m")
    block = b"BEGIN:VALARM\r\nACTION:DISPLAY\r\nDESCRIPTION:Soon\r\nTRIGGER:-PT15M\r\nEND:VALARM\r\n"
    data = export(Calendar(CalendarInfo("Alarms"), (replace(_EVENT, overrides=(moved,)), replace(_EVENT, uid="next"))))
    with_alarms = data.replace(b"END:VEVENT\r\n", block + b"END:VEVENT\r\n")  # the override's too
    quick._LINES.clear()
    read = assert_groups_read_as_the_stream_reads_them(with_alarms)
    assert [event is not None and len(event.alarms) for event in read] == [1, 1]
    assert read[0] is not None and len(read[0].overrides) == 1
