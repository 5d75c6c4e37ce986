"""What an export could cost at least, and what reading the store costs next to the database (issue 15).

`bench/export_account.py` times these in the same process as `export_user`, round
by round, so each figure is a ratio measured on the same machine load:

- `floor_export`: the "plain-writer pipeline". The very records the export writes,
  already in memory, serialised with the same writers (`exporters.vcard`, `.ical`,
  `.markdown`), each member deflated at the same level as `exporters.archive.writer`
  (zlib's default) with its SHA-256, plus SHA256SUMS, into a file. No store read, no
  layout bookkeeping beyond what the note writer needs, no manifest, no read-back
  check: the least an export of these records can cost in this process.
- `read_alone`: `AccountReader` yielding every record, nothing serialised.
- `plain_scan`: the same rows and child rows fetched as plain tuples straight from
  the DBAPI cursor (the SQL compiled once by SQLAlchemy Core): what the database
  and its driver cost, the lower bound for `read_alone`.
"""

from __future__ import annotations

import hashlib
import statistics
import time
import zipfile
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

from sqlalchemy import Table, select
from sqlalchemy.orm import Session

from account.records import CalendarInfo, Contact, Event, Note
from exporters.archive.paths import PathAllocator
from exporters.ical.writer import iter_calendar, zones_used
from exporters.markdown.writer import note_files
from exporters.vcard.writer import contact_to_vcard
from store.accounts import AccountReader
from store.calendars import (
    CalendarRow,
    EventAlarmRow,
    EventAttendeeRow,
    EventCategoryRow,
    EventDateRow,
    EventOverrideRow,
    EventRow,
)
from store.contacts import ContactAddressRow, ContactCategoryRow, ContactExtraRow, ContactRow, ContactValueRow
from store.notes import NoteAttachmentRow, NoteRow, NoteTagRow
from store.users import User

FETCH = 1000  # rows per fetchmany in the plain scan


def floor_export(
    contacts: list[Contact],
    calendars: list[tuple[CalendarInfo, list[Event]]],
    notes: list[Note],
    out: Path,
    *,
    stamp: Any,
    vcard_version: str = "3.0",
) -> int:
    """Write the records as a zip at `out` the plainest way; returns the number of members."""
    sums: list[bytes] = []
    with zipfile.ZipFile(out, "w", compression=zipfile.ZIP_DEFLATED) as zf:

        def member(path: str, chunks: Iterable[bytes]) -> None:
            digest = hashlib.sha256()
            info = zipfile.ZipInfo(path, date_time=(2026, 1, 1, 0, 0, 0))
            info.compress_type = zipfile.ZIP_DEFLATED  # a ZipInfo's own default is STORED
            with zf.open(info, "w", force_zip64=True) as f:
                for chunk in chunks:
                    digest.update(chunk)
                    f.write(chunk)
            sums.append(f"{digest.hexdigest()}  {path}\n".encode())

        cards = [contact_to_vcard(c, vcard_version) for c in contacts]
        for i, card in enumerate(cards):
            member(f"contacts/cards/{i}.vcf", [card])
        member("contacts/contacts.vcf", cards)
        for i, (info, events) in enumerate(calendars):
            zones = sorted({z for e in events for z in zones_used(e)})
            member(f"calendars/{i}.ics", iter_calendar(info, events, zones, stamp=stamp))
        paths = PathAllocator()
        for note in notes:
            for path, data in note_files(note, paths):
                member(path, [data])
        member("SHA256SUMS", sums[:])
        return len(sums)


def read_alone(session: Session, user: User) -> int:
    """Every record the export reads, through `AccountReader`; returns how many."""
    reader = AccountReader(session, user)
    n = sum(1 for _ in reader.contacts())
    for key, _info in reader.calendars():
        reader.zones(key)
        n += sum(1 for _ in reader.events(key))
    return n + sum(1 for _ in reader.notes())


def _tables(model: type[Any]) -> Table:
    table: Table = model.__table__
    return table


# (parent table, its owner column, its children with the column naming the parent)
_CONTACTS = (ContactRow, "user_id", (ContactValueRow, ContactAddressRow, ContactCategoryRow, ContactExtraRow))
_EVENTS = (
    EventRow,
    "calendar_id",
    (EventDateRow, EventOverrideRow, EventAttendeeRow, EventAlarmRow, EventCategoryRow),
)
_NOTES = (NoteRow, "user_id", (NoteTagRow, NoteAttachmentRow))


def plain_scan(session: Session, user: User) -> int:
    """Every row `read_alone` reads, parents and children, as DBAPI tuples; returns how many."""
    connection = session.connection()
    dialect = connection.dialect
    raw = connection.connection.dbapi_connection
    assert raw is not None

    def rows(query: Any) -> Iterator[tuple[Any, ...]]:
        compiled = query.compile(dialect=dialect)
        params = compiled.construct_params()
        cursor = raw.cursor()
        try:
            cursor.execute(str(compiled), [params[k] for k in compiled.positiontup] if compiled.positional else params)
            while batch := cursor.fetchmany(FETCH):
                yield from batch
        finally:
            cursor.close()

    def scan(model: Any, owner: str, children: tuple[Any, ...], owner_id: int) -> int:
        parent = _tables(model)
        where = parent.c[owner] == owner_id
        n = sum(1 for _ in rows(select(*parent.c).where(where).order_by(parent.c.position)))
        for child_model in children:
            child = _tables(child_model)
            link = next(iter(child.foreign_keys)).parent
            query = select(*child.c).join(parent, link == parent.c.id).where(where)
            n += sum(1 for _ in rows(query.order_by(link, child.c.position)))
        return n

    total = scan(*_CONTACTS, user.id)
    calendars = _tables(CalendarRow)
    for (key,) in rows(select(calendars.c.id).where(calendars.c.user_id == user.id).order_by(calendars.c.position)):
        total += scan(*_EVENTS, key)
    return total + scan(*_NOTES, user.id)


def records(db_url: str, email: str) -> tuple[list[Contact], list[tuple[CalendarInfo, list[Event]]], list[Note]]:
    """The very records an export of `email` serialises, read once into memory (what the floor writes)."""
    from store.accounts import find_user
    from store.db import Database

    database = Database(db_url)
    try:
        with database.session() as session:
            user = find_user(session, email)
            assert user is not None
            reader = AccountReader(session, user)
            contacts = list(reader.contacts())
            calendars = [(info, list(reader.events(key))) for key, info in reader.calendars()]
            notes = list(reader.notes())
    finally:
        database.dispose()
    return contacts, calendars, notes


def timed_floor(
    contacts: list[Contact], calendars: list[tuple[CalendarInfo, list[Event]]], notes: list[Note], folder: Path
) -> list[float]:
    """[wall, CPU] seconds of one `floor_export` into `folder`, VTIMEZONEs built afresh as the export does."""
    import datetime as dt
    import gc

    from exporters.ical.timezones import vtimezone

    vtimezone.cache_clear()
    out = folder / "floor.zip"
    gc.collect()
    wall, cpu = time.perf_counter(), time.process_time()
    floor_export(contacts, calendars, notes, out, stamp=dt.datetime(2026, 11, 25, 4, tzinfo=dt.UTC))
    seconds = [time.perf_counter() - wall, time.process_time() - cpu]
    out.unlink()
    return seconds


def timed_reads(db_url: str, email: str) -> tuple[list[float], list[float]]:
    """[wall, CPU] seconds of `read_alone` and of `plain_scan`, each in a fresh read transaction."""
    import gc

    from store.accounts import find_user
    from store.db import Database

    database = Database(db_url)
    out = []
    try:
        for read in (read_alone, plain_scan):
            with database.session() as session:
                user = find_user(session, email)
                assert user is not None
                gc.collect()
                wall, cpu = time.perf_counter(), time.process_time()
                read(session, user)
                out.append([time.perf_counter() - wall, time.process_time() - cpu])
    finally:
        database.dispose()
    return out[0], out[1]


def ratio_line(label: str, numerators: list[list[float]], denominators: list[list[float]]) -> str:
    """`label`: median ratio over rounds with min-max, wall then CPU, and the medians in seconds."""
    parts = []
    for i, kind in ((0, "wall"), (1, "CPU")):
        ratios = [a[i] / b[i] for a, b in zip(numerators, denominators, strict=True)]
        top = statistics.median(a[i] for a in numerators)
        bottom = statistics.median(b[i] for b in denominators)
        parts.append(
            f"{kind} {statistics.median(ratios):.2f}x ({min(ratios):.2f}-{max(ratios):.2f}; "
            f"{top:.2f} s vs {bottom:.2f} s)"
        )
    return f"{label}: " + ", ".join(parts) + f"; {len(numerators)} rounds"
