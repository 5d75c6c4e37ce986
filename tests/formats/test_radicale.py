"""A real CalDAV/CardDAV server (Radicale) accepts what Lifeboat exports.

Why: an archive is only worth keeping if another program will load it. Radicale
parses each upload with vobject and refuses what a client could not use, then
re-serialises it, so each test PUTs an item, GETs it back and compares the two
by meaning (both parsed with our readers), never byte for byte.

What Radicale itself loses is pinned by strict xfails, each naming the defect,
and left out of the comparisons of generated data only where it applies; an
XPASS means a defect was fixed (upstream or in our exporter) and the pin can go.
"""

from __future__ import annotations

import datetime as dt
import json
import re
from dataclasses import replace
from pathlib import Path

import icalendar
import pytest
import vobject
from hypothesis import HealthCheck, Phase, given, note, settings
from hypothesis import event as hypothesis_event
from hypothesis import strategies as st

from account.jsonio import account_from_dict
from account.records import Account, Attendee, Contact, Event, Person, Typed
from exporters.ical.reader import read_calendar
from exporters.ical.writer import event_to_ics
from exporters.vcard.reader import parse_vcard
from exporters.vcard.writer import contact_to_vcard
from tests.profiles import examples
from tests.servers.radicale import (
    DavClient,
    DavError,
    RadicaleServer,
    dav_client,
    has_blank_continuation,
    recurrence_refusal,
)
from tests.strategies.contacts import contacts
from tests.strategies.events import events

pytestmark = pytest.mark.server

SAMPLE = Path(__file__).parents[1] / "data" / "alice.json"  # the `alice` fixture's file
VERSIONS = ("3.0", "4.0")
STAMP = dt.datetime(2026, 5, 1, 12, tzinfo=dt.UTC)  # export time: DTSTAMP of events without one
GENERATED = settings(
    max_examples=examples(30),
    deadline=None,  # each example is a few HTTP round trips on a shared machine
    suppress_health_check=[HealthCheck.too_slow],
    # No shrinking: at four requests an example it ran past five minutes. The
    # unshrunk example and the server's log line are in the failure report.
    phases=[Phase.explicit, Phase.reuse, Phase.generate],
)
RAW_SEPARATORS = re.compile(r"[,;\\]")
MISREAD_IN_PARAMS = re.compile(r"^\s|\s$|\s=|=\s|\\")


def _alice() -> Account:
    return account_from_dict(json.loads(SAMPLE.read_text(encoding="utf-8")))


ALICE = _alice()
ALICE_EVENTS = [event for calendar in ALICE.calendars for event in calendar.events]
BOB = next(c for c in ALICE.contacts if c.photo is not None)
WEEKLY_SYNC = ALICE_EVENTS[0]  # Europe/Berlin: its VTIMEZONE carries RDATE lists


def _without_property(vcard: str, name: str) -> str:
    """The card without any `name` line (unfolded first, any group)."""
    unfolded = re.sub(r"\r?\n[ \t]", "", vcard)
    pattern = re.compile(rf"^(?:[A-Za-z0-9-]+\.)?{name}[;:]", re.IGNORECASE)
    return "".join(line for line in unfolded.splitlines(True) if not pattern.match(line))


def _raw_values_with_separators(contact: Contact) -> bool:
    """URL, IMPP and extra values are written raw; vobject re-escapes or cuts them at `,;\\`."""
    raw = [t.value for t in (*contact.urls, *contact.impps)] + list(contact.extra.values())
    return any(RAW_SEPARATORS.search(value) for value in raw)


def assert_radicale_keeps_contact(
    dav: DavClient, book: str, contact: Contact, version: str, *, raw_values: bool = True
) -> None:
    """PUT the exported card, GET it back, and compare both as records.

    A vCard 4.0 PHOTO is always left out: vobject cuts its `data:` URI at the comma
    (pinned below). With `raw_values=False` URLs, IMPPs and extras are left out too.
    """
    sent = contact_to_vcard(contact, version)
    served = dav.get(dav.put_vcard(book, sent)).decode("utf-8")
    expected = parse_vcard(sent.decode("utf-8"))
    if version == "4.0" and contact.photo is not None:
        served = _without_property(served, "PHOTO")
        expected = replace(expected, photo=None)
    got = parse_vcard(served)
    if not raw_values:
        got, expected = (replace(c, urls=(), impps=(), extra={}) for c in (got, expected))
    assert got == expected


def assert_radicale_keeps_event(dav: DavClient, calendar: str, event: Event, *, people: bool = True) -> None:
    """PUT the exported .ics (series, overrides, zones), GET it back, compare as records.

    With `people=False` organizer and attendees are left out of the comparison.
    """
    sent = event_to_ics(event, stamp=STAMP)
    served = read_calendar(dav.get(dav.put_ics(calendar, sent))).events
    expected = read_calendar(sent).events
    if not people:
        served, expected = _without_people(served), _without_people(expected)
    assert served == expected


def _without_people(events: tuple[Event, ...]) -> tuple[Event, ...]:
    return tuple(replace(e, organizer=None, attendees=()) for e in events)


def _names_the_reader_misreads(event: Event) -> bool:
    """vobject unquotes `CN="..."` unless it holds `,;:`, and the icalendar parser then
    strips whitespace at the edges and around `=`, and takes `\\` for an escape, so
    `CN=Ann\\;PARTSTAT=ACCEPTED` becomes one name and the PARTSTAT is lost."""
    people: list[Attendee | Person] = [*event.attendees, *([event.organizer] if event.organizer else [])]
    return any(p.name is not None and MISREAD_IN_PARAMS.search(p.name) for p in people)


def _zones(data: bytes) -> dict[str, bytes]:
    cal = icalendar.Calendar.from_ical(data)
    return {str(tz["TZID"]): tz.to_ical() for tz in cal.walk("VTIMEZONE")}


HANDWRITTEN_VCARD = (
    "BEGIN:VCARD\r\n"
    "VERSION:3.0\r\n"
    "UID:hand-0001\r\n"
    "FN:Dr. Bob Müller Jr.\r\n"
    "N:Müller;Bob;;Dr.;Jr.\r\n"
    "ORG:Danger\\, Inc.;Hiptop\r\n"
    "EMAIL;TYPE=work,pref:bob@example.com\r\n"
    'NOTE:Line one\\nLikes: coffee\\; tea\\, and "quotes"\r\n'
    "END:VCARD\r\n"
).encode()

HANDWRITTEN_EVENT = (
    b"BEGIN:VCALENDAR\r\n"
    b"VERSION:2.0\r\n"
    b"PRODID:-//Lifeboat//tests//EN\r\n"
    b"BEGIN:VTIMEZONE\r\n"
    b"TZID:Europe/Berlin\r\n"
    b"BEGIN:DAYLIGHT\r\n"
    b"TZNAME:CEST\r\n"
    b"TZOFFSETFROM:+0100\r\n"
    b"TZOFFSETTO:+0200\r\n"
    b"DTSTART:19700329T020000\r\n"
    b"RRULE:FREQ=YEARLY;BYMONTH=3;BYDAY=-1SU\r\n"
    b"END:DAYLIGHT\r\n"
    b"BEGIN:STANDARD\r\n"
    b"TZNAME:CET\r\n"
    b"TZOFFSETFROM:+0200\r\n"
    b"TZOFFSETTO:+0100\r\n"
    b"DTSTART:19701025T030000\r\n"
    b"RRULE:FREQ=YEARLY;BYMONTH=10;BYDAY=-1SU\r\n"
    b"END:STANDARD\r\n"
    b"END:VTIMEZONE\r\n"
    b"BEGIN:VEVENT\r\n"
    b"UID:hand-e-0001@example.com\r\n"
    b"DTSTAMP:20091001T000000Z\r\n"
    b"DTSTART;TZID=Europe/Berlin:20091005T090000\r\n"
    b"DTEND;TZID=Europe/Berlin:20091005T093000\r\n"
    b"RRULE:FREQ=WEEKLY;BYDAY=MO;COUNT=10\r\n"
    b"EXDATE;TZID=Europe/Berlin:20091012T090000\r\n"
    b"SUMMARY:Weekly sync\r\n"
    b"DESCRIPTION:Agenda:\\n1. Backups\\; 2. Upgrades\r\n"
    b"END:VEVENT\r\n"
    b"BEGIN:VEVENT\r\n"
    b"UID:hand-e-0001@example.com\r\n"
    b"DTSTAMP:20091001T000000Z\r\n"
    b"RECURRENCE-ID;TZID=Europe/Berlin:20091019T090000\r\n"
    b"DTSTART;TZID=Europe/Berlin:20091019T100000\r\n"
    b"DTEND;TZID=Europe/Berlin:20091019T103000\r\n"
    b"SUMMARY:Weekly sync (moved)\r\n"
    b"END:VEVENT\r\n"
    b"END:VCALENDAR\r\n"
)


def test_it_serves_back_a_handwritten_vcard_with_the_same_fields(dav: DavClient, dav_addressbook: str) -> None:
    path = dav.put_vcard(dav_addressbook, HANDWRITTEN_VCARD)
    sent = vobject.readOne(HANDWRITTEN_VCARD.decode())
    served = vobject.readOne(dav.get(path).decode("utf-8"))
    for name in ("uid", "fn", "note", "email"):
        assert served.contents[name][0].value == sent.contents[name][0].value, name
    assert served.n.value.family == "Müller"
    assert served.org.value == ["Danger, Inc.", "Hiptop"]


def test_it_serves_back_a_handwritten_recurring_event_with_its_override(dav: DavClient, dav_calendar: str) -> None:
    path = dav.put_ics(dav_calendar, HANDWRITTEN_EVENT)
    sent = vobject.readOne(HANDWRITTEN_EVENT.decode())
    served = vobject.readOne(dav.get(path).decode("utf-8"))

    def events(cal: vobject.base.Component) -> list[tuple[object, ...]]:
        return sorted(
            (
                e.summary.value,
                e.dtstart.value,
                e.dtend.value,
                e.contents.get("recurrence-id", [None])[0] and e.recurrence_id.value,
                e.contents.get("rrule", [None])[0] and e.rrule.value,
            )
            for e in cal.vevent_list
        )

    assert events(served) == events(sent)
    assert [tz.tzid.value for tz in served.vtimezone_list] == ["Europe/Berlin"]


def test_it_reports_a_refused_item_with_the_servers_reason(dav: DavClient, dav_addressbook: str) -> None:
    # Proves the harness cannot pass silently: Radicale refuses a vCard without UID.
    no_uid = HANDWRITTEN_VCARD.replace(b"UID:hand-0001\r\n", b"")
    with pytest.raises(DavError, match=r"PUT .* -> 400"):
        dav.put_vcard(dav_addressbook, no_uid)


def test_it_deletes_its_collections_after_the_test(dav: DavClient) -> None:
    calendar = dav.make_calendar()
    path = dav.put_ics(calendar, HANDWRITTEN_EVENT)
    dav.cleanup()
    assert dav.request("GET", path).status == 404
    assert dav.request("PROPFIND", calendar, headers={"Depth": "0"}).status == 404


@pytest.mark.parametrize("version", VERSIONS)
@pytest.mark.parametrize("contact", ALICE.contacts, ids=lambda c: c.uid)
def test_radicale_accepts_and_keeps_every_sample_contact(
    dav: DavClient, dav_addressbook: str, contact: Contact, version: str
) -> None:
    assert_radicale_keeps_contact(dav, dav_addressbook, contact, version)


@pytest.mark.parametrize("event", ALICE_EVENTS, ids=lambda e: e.uid)
def test_radicale_accepts_and_keeps_every_sample_event(dav: DavClient, dav_calendar: str, event: Event) -> None:
    assert_radicale_keeps_event(dav, dav_calendar, event)


@pytest.mark.parametrize("reason", ["UNTIL before DTSTART", "estimated occurrences above"])
def test_radicale_refuses_recurrences_beyond_its_limits(dav: DavClient, dav_calendar: str, reason: str) -> None:
    # Well-formed series Radicale refuses by policy; `recurrence_refusal` predicts it.
    until = "UNTIL=20090101T000000Z" if reason.startswith("UNTIL") else "UNTIL=20990101T000000Z"
    series = replace(WEEKLY_SYNC, rrule=f"FREQ=DAILY;{until}", overrides=(), exdates=())
    assert (recurrence_refusal(series) or "").startswith(reason)
    with pytest.raises(DavError, match=r"-> 400"):
        dav.put_ics(dav_calendar, event_to_ics(series, stamp=STAMP))


@pytest.mark.xfail(strict=True, reason="vobject cuts a vCard 4.0 data: URI at its comma "
                   "(Radicale #648, vobject #87): only the server can fix it")  # fmt: skip
def test_radicale_keeps_a_vcard4_photo(dav: DavClient, dav_addressbook: str) -> None:
    served = dav.get(dav.put_vcard(dav_addressbook, contact_to_vcard(BOB, "4.0")))
    assert parse_vcard(served.decode("utf-8")).photo == BOB.photo


@pytest.mark.xfail(strict=True, reason="vobject treats URL as text: it cuts at ',' and "
                   "escapes ';' and '\\' on the way out; only the server can fix it")  # fmt: skip
def test_radicale_keeps_a_url_with_a_comma(dav: DavClient, dav_addressbook: str) -> None:
    contact = replace(BOB, urls=(Typed("https://maps.example/?q=52.52,13.40;z=3"),))
    assert_radicale_keeps_contact(dav, dav_addressbook, contact, "3.0")


def test_radicale_keeps_a_long_run_of_spaces(dav: DavClient, dav_addressbook: str) -> None:
    # exporters.contentlines lets a line run past 75 octets rather than fold a blank
    # continuation line, which vobject (and so Radicale) would drop.
    contact = replace(BOB, note="Table:\n" + " " * 200 + "|")
    assert not has_blank_continuation(contact_to_vcard(contact))
    assert_radicale_keeps_contact(dav, dav_addressbook, contact, "3.0")


# exporters.ical.writer writes one RDATE per line inside VTIMEZONE: vobject keeps only the first
# value of a multi-valued RDATE there.
def test_radicale_keeps_our_vtimezones(dav: DavClient, dav_calendar: str) -> None:
    sent = event_to_ics(WEEKLY_SYNC, stamp=STAMP)
    assert _zones(dav.get(dav.put_ics(dav_calendar, sent))) == _zones(sent)


# Radicale serves CN=Ann\;PARTSTAT=... unquoted; exporters.ical.reader reads parameter
# backslashes literally, so the participation status survives.
def test_radicale_keeps_an_attendee_whose_name_ends_in_a_backslash(dav: DavClient, dav_calendar: str) -> None:
    attendee = Attendee("ann@example.com", name="Ann\\", partstat="ACCEPTED")
    assert_radicale_keeps_event(dav, dav_calendar, replace(WEEKLY_SYNC, attendees=(attendee,)))


@GENERATED
@given(contact=contacts(), version=st.sampled_from(VERSIONS))
def test_radicale_accepts_and_keeps_generated_contacts(
    radicale_server: RadicaleServer, contact: Contact, version: str
) -> None:
    if has_blank_continuation(contact_to_vcard(contact, version)):
        hypothesis_event("skipped: blank continuation line (pinned above)")
        return
    raw_values = not _raw_values_with_separators(contact)
    hypothesis_event(f"raw values compared: {raw_values}")
    with dav_client(radicale_server) as dav:
        book = dav.make_addressbook()
        assert_radicale_keeps_contact(dav, book, contact, version, raw_values=raw_values)


@settings(GENERATED, max_examples=examples(60))  # about half are skipped (see below)
@given(event=events())
def test_radicale_accepts_and_keeps_generated_events(radicale_server: RadicaleServer, event: Event) -> None:
    refusal = recurrence_refusal(event)
    if refusal is not None or has_blank_continuation(event_to_ics(event, stamp=STAMP)):
        note(f"Radicale refusal: {refusal}")
        hypothesis_event("skipped: recurrence limit or blank continuation line (pinned above)")
        return
    people = not _names_the_reader_misreads(event)
    hypothesis_event(f"organizer and attendees compared: {people}")
    with dav_client(radicale_server) as dav:
        assert_radicale_keeps_event(dav, dav.make_calendar(), event, people=people)
