"""The directly assembled event lines are byte-for-byte what icalendar's Component writer produced.

Why a differential test: `exporters.ical.lines` replaced `icalendar.Event` objects
on the hot path for speed. Every other iCalendar test proves the output is right;
this one proves the rewrite changed nothing, against the previous writer kept as an
oracle (`tests.formats.ical_oracle`), for canonical records, for records that skipped
canonicalisation (raw hostile text in every field: control characters, lone
surrogates, CR/LF, quotes, carets, non-rules in RRULE and TRIGGER) and for alice.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from account.jsonio import account_from_dict
from account.records import Alarm, Attendee, Event, Person
from account.sample import TYPICAL, generate_account
from exporters.ical.writer import _components, _Times
from tests.formats.ical_oracle import event_bytes
from tests.profiles import examples
from tests.strategies.events import events

ALICE = Path(__file__).parent.parent / "data" / "alice.json"
SETTINGS = settings(max_examples=examples(150), deadline=None, suppress_health_check=list(HealthCheck))

# Any code point, surrogates and controls included: what a record that skipped the importer may hold.
raw = st.text(st.characters(codec=None, exclude_categories=()), max_size=30)


# The export time, DTSTAMP of events without created/updated; not midnight, so a writer
# that dropped its time of day or its zone would differ from the oracle.
STAMP = dt.datetime(2026, 5, 17, 8, 9, 10, 123, tzinfo=dt.timezone(dt.timedelta(hours=2)))


def written(event: Event) -> bytes:
    return b"".join(c.to_bytes() for c in _components(event, _Times.of(event), STAMP))


@st.composite
def raw_events(draw: st.DrawFn) -> Event:
    """A valid event whose text fields are replaced by arbitrary strings."""
    event = draw(events())
    some = st.none() | raw
    attendee = st.builds(Attendee, email=raw, name=some, role=some, partstat=some)
    return dataclasses.replace(
        event,
        uid=draw(raw) or "uid",
        summary=draw(some),
        description=draw(some),
        location=draw(some),
        url=draw(some),
        status=draw(some),
        transparency=draw(some),
        rrule=draw(st.none() | raw | st.just(event.rrule)),
        categories=tuple(draw(st.lists(raw, max_size=3))),
        organizer=draw(st.none() | st.builds(Person, email=raw, name=some)),
        attendees=tuple(draw(st.lists(attendee, max_size=2))),
        alarms=tuple(draw(st.lists(st.builds(Alarm, trigger=raw, action=some, description=some), max_size=2))),
    )


@SETTINGS
@given(events())
def test_canonical_events_are_written_exactly_as_the_component_writer_wrote_them(event: Event) -> None:
    assert written(event) == event_bytes(event, STAMP)


@SETTINGS
@given(raw_events())
def test_hostile_uncanonical_events_are_written_exactly_as_the_component_writer_wrote_them(event: Event) -> None:
    assert written(event) == event_bytes(event, STAMP)


def test_alice_and_a_generated_account_are_written_exactly_as_the_component_writer_wrote_them() -> None:
    accounts = [
        account_from_dict(json.loads(ALICE.read_text("utf-8"))),
        generate_account("typical@example.com", TYPICAL, seed=7),
    ]
    checked = 0
    for account in accounts:
        for calendar in account.calendars:
            for event in calendar.events:
                assert written(event) == event_bytes(event, STAMP), event.uid
                checked += 1
    assert checked > 1000
