"""Calendars in a real archive: an empty calendar survives export, `verify` and restore; DTSTAMP is the export time.

Why through the whole path: the writer alone could be right while the archive's
check (independent parsers) or restore drops a calendar that holds no event.
"""

from __future__ import annotations

import datetime as dt
import tempfile
import zipfile
from pathlib import Path

import icalendar

from account.records import Account, Calendar, CalendarInfo, Event, When
from exporters.archive.check import check_archive
from exporters.archive.reader import read_account
from jobs.export import export_user
from store import Database
from store.accounts import find_user, replace_account

NOW = dt.datetime(2026, 11, 25, 4, 5, 6, tzinfo=dt.UTC)
EMPTY = Calendar(CalendarInfo(name="Nothing planned", color="#00ff00", description="yet"))
BUSY = Calendar(
    CalendarInfo(name="Work"),
    (Event(uid="w-1", start=When(datetime=dt.datetime(2101, 7, 1, 12), tz="Europe/Berlin"), summary="far"),),
)


def test_an_empty_calendar_and_the_export_time_survive_export_verify_and_restore(db: Database) -> None:
    account = Account(email="cal@example.com", timezone="America/Chicago", calendars=(EMPTY, BUSY))
    with db.session(write=True) as session:
        replace_account(session, account)
    with tempfile.TemporaryDirectory() as tmp, db.session() as session:
        user = find_user(session, account.email)
        assert user is not None
        path = Path(tmp) / export_user(session, user, Path(tmp), now=NOW).archive.relpath
        check_archive(path)  # independent parsers accept every file
        with zipfile.ZipFile(path) as archive:
            files = {n: archive.read(n) for n in archive.namelist() if n.startswith("calendars/")}
        empty = icalendar.Calendar.from_ical(next(d for d in files.values() if b"Nothing planned" in d))
        assert [(c.name, str(c["TZID"])) for c in empty.subcomponents] == [("VTIMEZONE", "America/Chicago")]
        busy = icalendar.Calendar.from_ical(next(d for d in files.values() if b"UID:w-1" in d))
        assert busy.walk("VEVENT")[0].decoded("DTSTAMP") == NOW
        assert read_account(path).calendars == account.calendars
