"""A restore of another program's archive says what it could not keep, instead of dropping it silently.

Why: "nothing is lost silently" (README). A note's front matter may hold fields
Lifeboat's notes have no place for (Obsidian's `aliases`, `cssclass`), a calendar
X- properties and components another program wrote (`X-MOZ-SNOOZE`, a VTODO).
Contacts keep theirs (`Contact.extra`). The restore writes the records without
them, as before, and says per kind how many items lost something, then which and what.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from flask.testing import FlaskCliRunner

from account.records import Account
from exporters.archive.reader import iter_members, verify_archive
from exporters.archive.unkept import LISTED, Unkept
from exporters.archive.writer import Entry
from jobs.restore import restore_archive
from store import Database
from store.accounts import AccountReader, find_user
from tests.archives import archive_of, local_path, write_archive
from tests.conftest import NOW

BOTH_WAYS = [1, pytest.param(2, marks=pytest.mark.slow)]  # a second process reads the calendars


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
        "Not kept: 1 event's X- properties (Lifeboat has no place for them).",
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
    assert "  Not kept: 1 event's X- properties (Lifeboat has no place for them)." in lines
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
