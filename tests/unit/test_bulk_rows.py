"""The plain rows restore inserts hold exactly the columns the ORM rows of `store.mapping` hold.

Why: `store.replace` inserts `mapping.*_dicts` with `insert(table)` for speed, while
other code builds `mapping.*_row` objects. A column set in one and forgotten in the
other (a new one, such as a content digest) would make a restored account differ
from an imported one; this compares every column of both, parents and children.
"""

from __future__ import annotations

from typing import Any

from hypothesis import HealthCheck, given, settings
from sqlalchemy import inspect

from account.records import CalendarInfo, Contact, Event, Note
from store import mapping
from tests.profiles import examples
from tests.strategies.contacts import contacts
from tests.strategies.events import calendar_infos, events
from tests.strategies.notes import notes

SOME = settings(max_examples=examples(60), deadline=None, suppress_health_check=[HealthCheck.too_slow])


def columns(obj: Any) -> dict[str, Any]:
    """An ORM object's column values, without the keys the database assigns or the writer fills in."""
    table = type(obj).__table__
    keys = {c.key for c in table.columns if c.primary_key or c.foreign_keys}
    return {a.key: getattr(obj, a.key) for a in inspect(type(obj)).column_attrs if a.key not in keys}


def as_rows(obj: Any) -> mapping.RowDicts:
    children = {
        rel.key: [columns(child) for child in getattr(obj, rel.key)] for rel in inspect(type(obj)).relationships
    }
    return mapping.RowDicts(columns(obj), children)


@SOME
@given(contact=contacts())
def test_a_contacts_plain_rows_are_its_orm_rows(contact: Contact) -> None:
    assert mapping.contact_dicts(contact, 4) == as_rows(mapping.contact_row(contact, 7, 4))


@SOME
@given(event=events())
def test_an_events_plain_rows_are_its_orm_rows(event: Event) -> None:
    assert mapping.event_dicts(event, 4) == as_rows(mapping.event_row(event, 7, 4))


@SOME
@given(note=notes())
def test_a_notes_plain_rows_are_its_orm_rows(note: Note) -> None:
    assert mapping.note_dicts(note, 4) == as_rows(mapping.note_row(note, 7, 4))


@SOME
@given(info=calendar_infos())
def test_a_calendars_plain_row_is_its_orm_row(info: CalendarInfo) -> None:
    assert mapping.calendar_dict(info, 4) == columns(mapping.calendar_row(info, 7, 4))
