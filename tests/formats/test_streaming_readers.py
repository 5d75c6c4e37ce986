"""The streaming readers restore uses read exactly what the whole-file readers read.

Why compare against `read_calendar` and `read_vcards`: those are the readers the
round-trip tests prove lossless; the streaming ones cut the text into cards and
events themselves and must give the same records, problems and messages, in
whatever pieces the bytes arrive (a zip member is decompressed in 64 KiB pieces
that split lines and UTF-8 characters anywhere).
"""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from icalendar.parser.content_line import Contentline

from account.jsonio import account_from_dict
from account.records import Calendar, CalendarInfo, Contact, Event, When
from errors import InvalidInput
from exporters.ical.reader import _Line, read_calendar, stream_calendar
from exporters.ical.writer import iter_calendar, zones_used
from exporters.vcard.reader import read_vcards, stream_vcards
from exporters.vcard.writer import contact_to_vcard
from tests.profiles import examples
from tests.strategies.contacts import contacts
from tests.strategies.events import calendars

ALICE = Path(__file__).parent.parent / "data" / "alice.json"
STAMP = dt.datetime(2026, 5, 1, 12, 30, tzinfo=dt.UTC)
SOME = settings(max_examples=examples(60), deadline=None, suppress_health_check=[HealthCheck.too_slow])


def pieces(data: bytes, size: int) -> list[bytes]:
    return [data[i : i + size] for i in range(0, len(data), size)] or [b""]


def streamed(data: bytes, size: int) -> Calendar:
    info, events = stream_calendar(pieces(data, size))
    return Calendar(info, tuple(events))


def export(cal: Calendar) -> bytes:
    zones = set().union(set(), *(zones_used(e) for e in cal.events))
    return b"".join(iter_calendar(cal.info, cal.events, zones, stamp=STAMP))


# --- iCalendar ---------------------------------------------------------------------------


def test_alices_calendars_stream_as_they_read_whole() -> None:
    for cal in account_from_dict(json.loads(ALICE.read_text("utf-8"))).calendars:
        data = export(cal)
        assert streamed(data, 1 << 16) == read_calendar(data) == cal
        assert streamed(data, 7) == cal


@SOME
@given(cal=calendars(), size=st.sampled_from([1, 3, 64, 1 << 16]))
def test_generated_calendars_stream_as_they_read_whole_in_any_pieces(cal: Calendar, size: int) -> None:
    data = export(cal)
    assert streamed(data, size) == read_calendar(data)


def test_a_calendar_with_bad_events_reports_the_same_problems_after_the_good_ones() -> None:
    good = Event(uid="good", start=When(date=dt.date(2026, 1, 1)))
    data = export(Calendar(CalendarInfo("Home"), (good,)))
    broken = data.replace(b"END:VCALENDAR", b"BEGIN:VEVENT\r\nUID:no-start\r\nEND:VEVENT\r\nEND:VCALENDAR")
    with pytest.raises(InvalidInput) as whole:
        read_calendar(broken)
    info, events = stream_calendar([broken])
    assert info.name == "Home"
    assert next(events) == good
    with pytest.raises(InvalidInput) as stream:
        next(events)
    assert (str(stream.value), stream.value.problems) == (str(whole.value), whole.value.problems)
    assert stream.value.problems == [("event 'no-start'", "has no start (DTSTART)")]


def test_a_calendar_cut_short_is_refused() -> None:
    data = export(Calendar(CalendarInfo("Home"), (Event(uid="a", start=When(date=dt.date(2026, 1, 1))),)))
    _, events = stream_calendar([data[: data.index(b"END:VEVENT")]])
    with pytest.raises(InvalidInput, match="cut short"):
        list(events)


def test_a_broken_vtimezone_is_refused_every_time_and_a_good_one_read_again_gives_the_same_events() -> None:
    zone = "BEGIN:VTIMEZONE\r\nTZID:Europe/Berlin\r\nBEGIN:STANDARD\r\nDTSTART:{start}\r\nTZOFFSETFROM:+0200\r\n"
    zone += "TZOFFSETTO:+0100\r\nEND:STANDARD\r\nEND:VTIMEZONE\r\n"
    event = "BEGIN:VEVENT\r\nUID:a\r\nDTSTART;TZID=Europe/Berlin:20260101T100000\r\nSUMMARY:x\r\nEND:VEVENT\r\n"

    def events(start: str) -> list[Event]:
        text = "BEGIN:VCALENDAR\r\nVERSION:2.0\r\n" + zone.format(start=start) + event + "END:VCALENDAR\r\n"
        return list(stream_calendar([text.encode()])[1])

    for _ in range(2):  # the second read of the same VTIMEZONE is not taken on trust
        with pytest.raises(InvalidInput, match="Expected time, got: garbage"):
            events("garbage")
    good = events("19701025T030000")
    assert good == events("19701025T030000")
    assert good[0].start == When(datetime=dt.datetime(2026, 1, 1, 10), tz="Europe/Berlin")


def test_a_file_without_a_calendar_is_refused_as_read_calendar_refuses_it() -> None:
    with pytest.raises(InvalidInput, match="holds no calendar"):
        stream_calendar([b""])
    with pytest.raises(InvalidInput, match="not a valid iCalendar file"):
        stream_calendar([b"SUMMARY:stray\r\n"])


_tokens = st.text(alphabet="ABCDEFGHXYZ-0123456789", min_size=1, max_size=8)
_param_values = st.text(alphabet=st.sampled_from(list('ab ,;:"\\=^é')), max_size=8)
_values = st.text(alphabet=st.sampled_from(list('ab ,;:"\\=\t日')), max_size=20)


def _quoted(value: str) -> str:
    return '"' + value + '"'


@st.composite
def content_lines(draw: st.DrawFn) -> str:
    name = draw(st.one_of(_tokens, st.sampled_from(["", " X ", "A B", "é"])))
    params = "".join(
        f";{draw(_tokens)}={draw(st.one_of(_param_values, _param_values.map(_quoted)))}"
        for _ in range(draw(st.integers(0, 2)))
    )
    separator = draw(st.sampled_from([":", ":", ";", ""]))
    return f"{name}{params}{separator}{draw(_values)}"


@settings(max_examples=examples(400), deadline=None)
@given(line=content_lines())
def test_the_quick_line_split_gives_icalendars_own_parts_or_error(line: str) -> None:
    def parts(cls: type[Contentline]) -> object:
        try:
            name, params, value = cls(line).parts()
        except ValueError as exc:
            return ("error", str(exc))
        return name, dict(params), type(params), value

    assert parts(_Line) == parts(Contentline)
    assert parts(_Line) == parts(Contentline)  # again, from the cache of parsed parameters


def test_parameters_parsed_once_are_handed_out_as_new_objects() -> None:
    line = 'ATTENDEE;CN="Ann";ROLE=CHAIR;DELEGATED-TO="mailto:b@x","mailto:c@x":mailto:a@x'
    first = _Line(line).parts()[1]
    first["CN"] = "changed"
    first["DELEGATED-TO"].append("mailto:d@x")
    assert _Line(line).parts() == Contentline(line).parts()


# --- vCard --------------------------------------------------------------------------------


def test_alices_address_book_streams_as_it_reads_whole() -> None:
    account = account_from_dict(json.loads(ALICE.read_text("utf-8")))
    data = b"".join(contact_to_vcard(c) for c in account.contacts)
    for size in (1, 5, 1 << 16):
        assert list(stream_vcards(pieces(data, size))) == list(read_vcards(data)) == list(account.contacts)


@SOME
@given(cards=st.lists(contacts(), max_size=4), size=st.sampled_from([1, 2, 7, 1 << 16]))
def test_generated_address_books_stream_as_they_read_whole_in_any_pieces(cards: list[Contact], size: int) -> None:
    data = b"".join(contact_to_vcard(c, version) for c, version in zip(cards, ["3.0", "4.0"] * 4, strict=False))
    assert list(stream_vcards(pieces(data, size))) == list(read_vcards(data))


def test_cards_end_where_the_logical_lines_say_whatever_the_folding_and_nesting() -> None:
    data = (
        b"\xef\xbb\xbfBEGIN:VCARD\r\nVERSION:2.1\r\nFN:Ann\r\nAGENT:\r\nBEGIN:VCARD\r\nFN:Bob\r\nEND:VCARD\r\n"
        b"NOTE:a note\r\nEND:VCARD\r\n X-Y\r\nEND:VCARD\r\n\r\nBEGIN:VCARD\r\nFN:Cy\r\nEND:VCA\r\n RD\r\n"
        b"BEGIN:VCARD\r\nFN:Di\r\nEND:VCARD\r\n"
    )
    whole = list(read_vcards(data))
    assert [c.formatted_name for c in whole] == ["Ann", "Cy", "Di"]  # "END:VCARD X-Y" ended nothing
    for size in (1, 3, 1 << 16):
        assert list(stream_vcards(pieces(data, size))) == whole


def test_a_bad_address_book_is_refused_with_the_line_counted_from_the_start_of_the_file() -> None:
    good = contact_to_vcard(Contact(uid="a", formatted_name="Ann"))
    data = good * 3 + b"BEGIN:VCARD\r\nFN:Bo\r\nnot a property\r\nEND:VCARD\r\n"
    with pytest.raises(InvalidInput) as whole:
        list(read_vcards(data))
    with pytest.raises(InvalidInput) as stream:
        list(stream_vcards(pieces(data, 10)))
    assert str(stream.value) == str(whole.value)
    bad = good + b"BEGIN:VCARD\r\nFN:\xc3\xa9\xc3\xff\r\nEND:VCARD\r\n"
    for size in (1, 2, 5, 1 << 16):
        with pytest.raises(InvalidInput) as stream:
            list(stream_vcards(pieces(bad, size)))
        with pytest.raises(InvalidInput) as whole:
            list(read_vcards(bad))
        assert str(stream.value) == str(whole.value)
        assert "not UTF-8" in str(stream.value)
    with pytest.raises(InvalidInput, match="no END:VCARD"):
        list(stream_vcards([good[:-12]]))


@pytest.mark.parametrize(
    "odd",
    [
        b"NOTE:one\rX-TWO:two\r\n",  # a lone CR ends a line for vobject
        b"NOTE:one\r\n\r\n  folded after a blank line\r\n",
        b"NOTE:one\r\n\tfolded with a tab\r\n",
        b"NOTE:one\rnot a property\r\n",
    ],
)
def test_odd_line_ends_read_as_vobject_reads_them(odd: bytes) -> None:
    card = contact_to_vcard(Contact(uid="a", formatted_name="Ann"))
    data = card + card.replace(b"END:VCARD", odd + b"END:VCARD") + card

    def outcome(read: object) -> object:
        try:
            return list(read)  # type: ignore[call-overload]
        except InvalidInput as exc:
            return str(exc)

    assert outcome(stream_vcards(pieces(data, 3))) == outcome(read_vcards(data))
