"""A restore of another program's archive says what it could not keep, instead of dropping it silently.

Why: "nothing is lost silently" (README). A note's front matter may hold fields
Lifeboat's notes have no place for (Obsidian's `aliases`, `cssclass`), a calendar
X- properties and components another program wrote (`X-MOZ-SNOOZE`, a VTODO), an
event standard properties no `Event` has a place for (GEO, PRIORITY, an alarm's
REPEAT, an override's own ATTENDEE). Contacts keep their other properties
(`Contact.extra`), one value by name: a repeat, the parameters and a group are not
kept. The restore writes the records without them, as before, and says per kind how
many items lost something, then which and what.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import Callable
from pathlib import Path

import pytest
from flask.testing import FlaskCliRunner
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from account.records import Account, Calendar, Contact
from account.sample import TYPICAL, generate_account
from exporters.archive.reader import iter_members, open_records, verify_archive
from exporters.archive.unkept import LISTED, Unkept
from exporters.archive.writer import Entry
from exporters.ical.reader import stream_calendar
from exporters.ical.writer import iter_calendar, zones_used
from exporters.vcard.reader import stream_vcards
from exporters.vcard.writer import contact_to_vcard
from jobs.restore import restore_archive
from store import Database
from store.accounts import AccountReader, find_user
from tests.archives import archive_of, local_path, write_archive
from tests.conftest import NOW
from tests.profiles import examples
from tests.strategies.contacts import contacts
from tests.strategies.events import calendars

BOTH_WAYS = [1, pytest.param(2, marks=pytest.mark.slow)]  # a second process reads the calendars
SOME = settings(max_examples=examples(40), deadline=None, suppress_health_check=[HealthCheck.too_slow])


def _foreign(alice: Account, tmp_path: Path) -> tuple[Path, str, str]:
    """Alice's archive as another program might have written it; (its path, the note's file, the calendar's)."""
    archive = archive_of(alice, tmp_path, "alice.zip", NOW)
    meta = dict(verify_archive(archive).meta)
    layout = meta.pop("layout")
    note, calendar = layout["notes"][0], layout["calendars"][0]
    entries = []
    for path, data in iter_members(archive):
        if path in ("README.txt", "SHA256SUMS"):
            continue  # the writer makes them again
        if path == note:
            head, rest = data.split(b"\n", 1)  # '---', then the front matter
            data = head + b'\naliases: ["Groceries"]\ncssclass: "wide"\n' + rest
        if path == calendar:
            text = data.decode()
            text = text.replace("BEGIN:VEVENT\r\n", "BEGIN:VEVENT\r\nX-MOZ-SNOOZE-TIME:20240101T000000Z\r\n", 1)
            text = text.replace("BEGIN:VCALENDAR\r\n", "BEGIN:VCALENDAR\r\nX-WR-TIMEZONE:Europe/Berlin\r\n", 1)
            todo = "BEGIN:VTODO\r\nUID:todo-1\r\nSUMMARY:Buy milk\r\nEND:VTODO\r\nX-PUBLISHED-TTL:PT1H\r\n"
            data = text.replace("END:VCALENDAR", todo + "END:VCALENDAR").encode()
        entries.append(Entry(path, [data]))
    rewritten = local_path(write_archive(tmp_path, "foreign.zip", entries, meta, NOW, layout=lambda: layout))
    return rewritten, note, calendar


def _stored(db: Database, email: str) -> Account:
    with db.session() as session:
        user = find_user(session, email)
        assert user is not None
        return AccountReader(session, user).account()


@pytest.mark.parametrize("processes", BOTH_WAYS)
def test_a_restore_says_which_front_matter_fields_and_x_properties_it_could_not_keep(
    db: Database, alice: Account, tmp_path: Path, processes: int
) -> None:
    archive, note, calendar = _foreign(alice, tmp_path)
    restored = restore_archive(db, archive, "copy@example.com", processes=processes)
    unkept = restored.unkept
    assert dict(unkept.counts) == {"calendar": 1, "event": 1, "note": 1}
    (on_calendar, on_event, on_note) = unkept.details
    assert on_calendar == ("calendar", calendar, "X-WR-TIMEZONE, a VTODO, X-PUBLISHED-TTL")
    assert on_event[0] == "event" and on_event[2] == "X-MOZ-SNOOZE-TIME"
    assert on_note == ("note", f"{alice.notes[0].id} ({note})", "aliases, cssclass")
    assert unkept.summary() == [
        "Not kept: 1 calendar's properties or components (Lifeboat has no place for them).",
        "Not kept: 1 event's properties (Lifeboat has no place for them).",
        "Not kept: 1 note's front matter fields (Lifeboat has no place for them).",
    ]
    copy = _stored(db, "copy@example.com")  # everything else restored as before
    assert (copy.contacts, copy.calendars, copy.notes) == (alice.contacts, alice.calendars, alice.notes)


def test_the_restore_command_prints_a_count_per_kind_and_each_item_with_what_it_lost(
    runner: FlaskCliRunner, alice: Account, tmp_path: Path
) -> None:
    archive, note, calendar = _foreign(alice, tmp_path)
    result = runner.invoke(args=["restore", str(archive), "--email", "copy@example.com"])
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert "  Not kept: 1 note's front matter fields (Lifeboat has no place for them)." in lines
    assert "  Not kept: 1 event's properties (Lifeboat has no place for them)." in lines
    assert f"    note {alice.notes[0].id} ({note}): aliases, cssclass" in lines
    assert f"    calendar {calendar}: X-WR-TIMEZONE, a VTODO, X-PUBLISHED-TTL" in lines


def test_lifeboats_own_archive_restores_with_nothing_said_unkept(
    runner: FlaskCliRunner, alice: Account, tmp_path: Path
) -> None:
    archive = archive_of(alice, tmp_path, "alice.zip", NOW)
    result = runner.invoke(args=["restore", str(archive), "--email", "copy@example.com"])
    assert result.exit_code == 0, result.output
    assert "Not kept" not in result.output


def test_past_the_listed_items_the_rest_are_counted_and_each_item_is_counted_once() -> None:
    unkept = Unkept()
    for i in range(LISTED + 5):
        unkept.add("note", f"n{i}", ["aliases"])
    unkept.add("calendar", "calendars/A.ics", ["a VTODO"])
    unkept.add("calendar", "calendars/A.ics", ["a VTODO", "a VJOURNAL"])  # the same calendar, told again
    assert dict(unkept.counts) == {"note": LISTED + 5, "calendar": 1}
    assert unkept.lines()[-1] == "... and 6 more"
    assert Unkept.from_json(unkept.as_json()) == unkept
    assert unkept.details[-1] == ("note", f"n{LISTED - 1}", "aliases")  # the calendar came too late to be listed
    notes, calendars = Unkept(), Unkept()
    notes.add("note", "n1", ["aliases"])
    calendars.add("calendar", "calendars/A.ics", ["a VTODO"])
    merged = notes.merge(calendars)  # a two-process restore: notes here, calendars in the other process
    assert [d[0] for d in merged.details] == ["calendar", "note"] and merged.counts == notes.counts + calendars.counts


def _edited(alice: Account, tmp_path: Path, edit: Callable[[str, str], str]) -> Path:
    """Alice's archive with each .ics and .vcf member's text passed through `edit(path, text)`."""
    archive = archive_of(alice, tmp_path, "alice.zip", NOW)
    meta = dict(verify_archive(archive).meta)
    layout = meta.pop("layout")
    entries = []
    for path, data in iter_members(archive):
        if path in ("README.txt", "SHA256SUMS"):
            continue  # the writer makes them again
        if path.endswith((".ics", ".vcf")):
            data = edit(path, data.decode()).encode()
        entries.append(Entry(path, [data]))
    return local_path(write_archive(tmp_path, "foreign.zip", entries, meta, NOW, layout=lambda: layout))


def _standard_properties(path: str, text: str) -> str:
    """Another program's standard properties in Alice's events: a series', its alarm's, its override's, another's."""
    if not path.endswith(".ics"):
        return text
    series = "BEGIN:VEVENT\r\nSUMMARY:Weekly sync\r\n"
    moved = "BEGIN:VEVENT\r\nSUMMARY:Weekly sync (moved)\r\n"
    flight = "UID:e-0003@example.com\r\n"
    text = text.replace(series, series + "GEO:52.52;13.40\r\nPRIORITY:1\r\nCLASS:PRIVATE\r\nSEQUENCE:3\r\n")
    text = text.replace("TRIGGER:-PT15M\r\n", "TRIGGER:-PT15M\r\nREPEAT:2\r\nDURATION:PT5M\r\n")  # both alarms
    carol = "ATTENDEE;CN=Carol;PARTSTAT=DECLINED:mailto:carol@example.com\r\n"
    text = text.replace(moved, moved + "COMMENT:Bring slides\r\n" + carol)
    return text.replace(flight, flight + "ATTACH:https://airline.example/ticket.pdf\r\n")


@pytest.mark.parametrize("processes", BOTH_WAYS)
def test_a_restore_says_which_standard_event_properties_it_could_not_keep(
    db: Database, alice: Account, tmp_path: Path, processes: int
) -> None:
    archive = _edited(alice, tmp_path, _standard_properties)
    restored = restore_archive(db, archive, "copy@example.com", processes=processes)
    unkept = restored.unkept
    assert dict(unkept.counts) == {"event": 2}
    assert unkept.details == [
        (
            "event",
            "e-0001@example.com",
            "GEO, PRIORITY, CLASS, SEQUENCE, REPEAT of an alarm, DURATION of an alarm, COMMENT, "
            "ATTENDEE of an override",
        ),
        ("event", "e-0003@example.com", "ATTACH"),
    ]
    assert unkept.summary() == ["Not kept: 2 events' properties (Lifeboat has no place for them)."]
    copy = _stored(db, "copy@example.com")  # the events restored as before: the series' attendees only
    assert copy.calendars == alice.calendars


def test_an_override_that_repeats_its_series_loses_nothing_but_its_own_alarm_and_recurrence_is_said(
    db: Database, alice: Account, tmp_path: Path
) -> None:
    def own_alarm(path: str, text: str) -> str:
        moved = "BEGIN:VEVENT\r\nSUMMARY:Weekly sync (moved)\r\n"
        if moved not in text:
            return text
        head, tail = text.split(moved)
        tail = tail.replace("TRIGGER:-PT15M", "TRIGGER:-PT1H", 1)  # the override's alarm is its own
        return head + moved + "RRULE:FREQ=DAILY;COUNT=2\r\n" + tail

    restored = restore_archive(db, _edited(alice, tmp_path, own_alarm), "copy@example.com", processes=1)
    assert restored.unkept.details == [
        ("event", "e-0001@example.com", "RRULE of an override, VALARM of an override"),
    ]


def _contact_extras(path: str, text: str) -> str:
    """Bob's card in the address book with a repeated X-SPOUSE, a parameter and an Apple group."""
    if not path.endswith("contacts.vcf"):
        return text
    extras = "X-SPOUSE:Dave\r\nX-SOCIALPROFILE;TYPE=twitter:https://x.example/bob\r\nitem1.X-ABLABEL:Summer house\r\n"
    return text.replace("X-SPOUSE:Carol\r\nEND:VCARD", "X-SPOUSE:Carol\r\n" + extras + "END:VCARD", 1)


@pytest.mark.parametrize("processes", BOTH_WAYS)
def test_a_restore_says_which_repeats_parameters_and_groups_of_a_contacts_other_properties_it_could_not_keep(
    db: Database, alice: Account, tmp_path: Path, processes: int
) -> None:
    restored = restore_archive(db, _edited(alice, tmp_path, _contact_extras), "copy@example.com", processes=processes)
    assert restored.unkept.details == [
        (
            "contact",
            "c-0001",
            "parameters of X-SOCIALPROFILE (TYPE), group of X-ABLABEL (item1), X-SPOUSE (1 more value)",
        ),
    ]
    assert restored.unkept.summary() == [
        "Not kept: 1 contact's property values, parameters or groups (Lifeboat has no place for them)."
    ]
    bob = alice.contacts[0]
    kept = {**bob.extra, "X-SOCIALPROFILE": "https://x.example/bob", "X-ABLABEL": "Summer house"}
    assert _stored(db, "copy@example.com").contacts == (dataclasses.replace(bob, extra=kept), *alice.contacts[1:])


def test_the_restore_command_lists_contacts_and_events_with_what_they_lost(
    runner: FlaskCliRunner, alice: Account, tmp_path: Path
) -> None:
    archive = _edited(alice, tmp_path, lambda p, t: _standard_properties(p, _contact_extras(p, t)))
    result = runner.invoke(args=["restore", str(archive), "--email", "copy@example.com"])
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert "  Not kept: 1 contact's property values, parameters or groups (Lifeboat has no place for them)." in lines
    assert "  Not kept: 2 events' properties (Lifeboat has no place for them)." in lines
    assert "    event e-0003@example.com: ATTACH" in lines
    assert lines.index("    event e-0003@example.com: ATTACH") > lines.index(
        "    contact c-0001: parameters of X-SOCIALPROFILE (TYPE), group of X-ABLABEL (item1), X-SPOUSE (1 more value)"
    )


def test_generated_accounts_lifeboat_archives_read_back_with_nothing_unkept(tmp_path: Path) -> None:
    for seed in (1, 2):
        account = generate_account("gen@example.com", TYPICAL, seed=seed)
        archive = archive_of(account, tmp_path, f"gen{seed}.zip", NOW)
        with open_records(archive) as records:
            assert sum(1 for _ in records.contacts()) == len(account.contacts)
            events = sum(1 for _, found in records.calendars() for _ in found)
            assert events == sum(len(c.events) for c in account.calendars)
            assert sum(1 for _ in records.notes()) == len(account.notes)
            assert not records.unkept, records.unkept.details


@SOME
@given(cal=calendars())
def test_any_calendar_lifeboat_writes_reads_back_with_nothing_unkept(cal: Calendar) -> None:
    told: list[tuple[str, list[str]]] = []
    zones = set().union(set(), *(zones_used(e) for e in cal.events))
    data = b"".join(iter_calendar(cal.info, cal.events, zones, stamp=dt.datetime(2026, 5, 1, tzinfo=dt.UTC)))
    _, events = stream_calendar([data], unread=lambda item, names: told.append((item, names)))
    assert len(list(events)) == len(cal.events)
    assert [t for t in told if t[1]] == []


@SOME
@given(cards=st.lists(contacts(), max_size=4))
def test_any_contact_lifeboat_writes_reads_back_with_nothing_unkept(cards: list[Contact]) -> None:
    told: list[tuple[str, list[str]]] = []
    data = b"".join(contact_to_vcard(c, version) for c, version in zip(cards, ["3.0", "4.0"] * 4, strict=False))
    found = list(stream_vcards([data], unread=lambda uid, names: told.append((uid, names))))
    assert len(found) == len(cards) and told == []
