"""Put a whole account into the store, and stream it back out as records.

Why streaming: an export of 10,000 contacts with photos must not load them all
at once. `AccountReader` yields records in batches of `BATCH` rows, loading each
batch's child rows with one `IN` query per child table, and computes
per-calendar zone sets with one query so the iCalendar writer can emit each
VTIMEZONE up front.

Why plain rows rather than ORM objects on the way out: the reader only turns
rows into records, and building ORM instances (identity map, instance state,
an instrumented collection per relationship, five per event even when empty)
cost the export about as much again as reading the rows (bench/export_account.py).
`mapping.*_record` only reads attributes, so a row's columns plus its children
as attributes (`_with_children`) serve it as well as an ORM object.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Collection, Iterator, Mapping, Sequence
from dataclasses import dataclass
from types import SimpleNamespace
from typing import Any

from sqlalchemy import Column, ColumnElement, Row, ScalarSelect, Select, Table, func, select, union
from sqlalchemy.orm import Session

from account.records import KINDS, Account, CalendarInfo, Contact, Event, Note
from account.versions import ContactVersion, EventVersion, NoteVersion
from store import mapping
from store.base import utcnow
from store.calendars import (
    CalendarRow,
    EventAlarmRow,
    EventAttendeeRow,
    EventCategoryRow,
    EventDateRow,
    EventOverrideRow,
    EventRow,
)
from store.contacts import (
    ContactAddressRow,
    ContactCategoryRow,
    ContactExtraRow,
    ContactRow,
    ContactValueRow,
)
from store.notes import NoteAttachmentRow, NoteRow, NoteTagRow
from store.users import User

BATCH = 500
log = logging.getLogger(__name__)


def get_or_create_user(session: Session, email: str) -> User:
    user = find_user(session, email)
    if user is None:
        # An address an operator (or an import) gives counts as confirmed; only web
        # sign-ups start unconfirmed (web/signup.py).
        user = User(email=email.strip().lower(), email_confirmed_at=utcnow())
        session.add(user)
        session.flush()
    return user


def find_user(session: Session, email: str) -> User | None:
    return session.scalar(select(User).where(func.lower(User.email) == email.strip().lower()))


def replace_account(session: Session, account: Account, kinds: Collection[str] = KINDS) -> User:
    """Create the user if needed and replace all their data with `account`, in the caller's transaction.

    With `kinds` (some of contacts, calendars, notes) only those are replaced and the
    rest is kept: restoring an archive made with notes only must not empty the address book.

    Every write of account data passes through `store.replace` (this function,
    and restore's staged path), so this is where the rules that make SQLite and
    PostgreSQL hold the same data are enforced for every source (import, restore,
    demo): U+0000 becomes U+FFFD, and a value some database could not hold is
    refused with `InvalidInput` (`account.storable`). Records are checked as they
    are inserted in batches, so a bad value late in the account is found after
    rows were written: the caller's transaction must roll back (as
    `store.db.Database.session` does on any error), and then nothing has changed.
    The importer applies the same rules earlier and reports replacements; here
    they are logged, for other sources.
    """
    from store.replace import AccountRecords, Owner, replace_records  # store.replace builds on this module

    owner = Owner(account.email, account.display_name, account.timezone)
    user, _ = replace_records(session, owner, AccountRecords(account), kinds)
    return user


@dataclass(frozen=True)
class Counts:
    contacts: int
    calendars: int
    events: int
    notes: int
    attachments: int

    def as_dict(self) -> dict[str, int]:
        return dict(self.__dict__)


class AccountReader:
    """Read one user's data as records, streaming; what `exporters.archive.layout` consumes."""

    def __init__(self, session: Session, user: User) -> None:
        self.session = session
        self.user = user

    def counts(self) -> Counts:
        """Every count in one statement: the dashboard reads them on each load.

        Why one statement of five scalar subqueries instead of five queries: each query
        costs a round trip and SQLAlchemy's statement handling, about 0.3 ms of CPU on
        SQLite here; the dashboard's whole budget is a few milliseconds (bench/web_load.py).
        """
        uid = self.user.id

        def count(query: Select[Any]) -> ScalarSelect[Any]:
            return query.scalar_subquery()

        row = self.session.execute(
            select(
                count(select(func.count()).select_from(ContactRow).where(ContactRow.user_id == uid)),
                count(select(func.count()).select_from(CalendarRow).where(CalendarRow.user_id == uid)),
                count(select(func.count()).select_from(EventRow).join(CalendarRow).where(CalendarRow.user_id == uid)),
                count(select(func.count()).select_from(NoteRow).where(NoteRow.user_id == uid)),
                count(select(func.count()).select_from(NoteAttachmentRow).join(NoteRow).where(NoteRow.user_id == uid)),
            )
        ).one()
        contacts, calendars, events, notes, attachments = (int(value or 0) for value in row)
        return Counts(contacts=contacts, calendars=calendars, events=events, notes=notes, attachments=attachments)

    def contacts(self) -> Iterator[Contact]:
        table = _table(ContactRow)
        children = {
            "values": _table(ContactValueRow),
            "addresses": _table(ContactAddressRow),
            "categories": _table(ContactCategoryRow),
            "extra": _table(ContactExtraRow),
        }
        for row in self._stream(table, table.c.user_id == self.user.id, children, "contact_id"):
            yield mapping.contact_record(row)

    def calendars(self) -> list[tuple[int, CalendarInfo]]:
        rows = self.session.scalars(
            select(CalendarRow).where(CalendarRow.user_id == self.user.id).order_by(CalendarRow.position)
        )
        return [(row.id, mapping.calendar_info(row)) for row in rows]

    def events(self, calendar_id: int) -> Iterator[Event]:
        table = _table(EventRow)
        children = {
            "dates": _table(EventDateRow),
            "overrides": _table(EventOverrideRow),
            "attendees": _table(EventAttendeeRow),
            "alarms": _table(EventAlarmRow),
            "categories": _table(EventCategoryRow),
        }
        for row in self._stream(table, table.c.calendar_id == calendar_id, children, "event_id"):
            yield mapping.event_record(row)

    def zones(self, calendar_id: int) -> list[str]:
        """Every IANA zone any event, date or override of the calendar uses, sorted."""
        events = select(EventRow.id).where(EventRow.calendar_id == calendar_id).scalar_subquery()
        tz_columns = [
            select(EventRow.start_tz.label("tz")).where(EventRow.calendar_id == calendar_id),
            select(EventRow.end_tz).where(EventRow.calendar_id == calendar_id),
            select(EventDateRow.tz).where(EventDateRow.event_id.in_(events)),
            select(EventOverrideRow.recurrence_id_tz).where(EventOverrideRow.event_id.in_(events)),
            select(EventOverrideRow.start_tz).where(EventOverrideRow.event_id.in_(events)),
            select(EventOverrideRow.end_tz).where(EventOverrideRow.event_id.in_(events)),
        ]
        found = self.session.scalars(select(union(*tz_columns).subquery().c.tz)).all()
        return sorted(tz for tz in found if tz)

    def notes(self) -> Iterator[Note]:
        table = _table(NoteRow)
        children = {"tags": _table(NoteTagRow), "attachments": _table(NoteAttachmentRow)}
        for row in self._stream(table, table.c.user_id == self.user.id, children, "note_id"):
            yield mapping.note_record(row)

    def _stream(
        self,
        table: Table,
        where: ColumnElement[bool],
        children: Mapping[str, Table],
        parent_key: str,
    ) -> Iterator[Any]:
        """Rows of `table` in `position` order, each with its child rows attached.

        `children` maps an attribute name to a child table whose `parent_key`
        column points at `table`; each batch costs one query per child table.
        """
        query = select(table).where(where).order_by(table.c.position)
        for batch in self.session.execute(query.execution_options(yield_per=BATCH)).partitions():
            ids = [row.id for row in batch]
            loaded = {name: self._children(child, child.c[parent_key], ids) for name, child in children.items()}
            for row in batch:
                found = {name: by_parent.get(row.id, ()) for name, by_parent in loaded.items()}
                yield _with_children(row, found)

    def _children(self, table: Table, parent: Column[int], ids: list[int]) -> dict[int, list[Row[Any]]]:
        grouped: dict[int, list[Row[Any]]] = defaultdict(list)
        query = select(table).where(parent.in_(ids)).order_by(parent, table.c.position)
        for row in self.session.execute(query):
            grouped[row._mapping[parent]].append(row)
        return grouped

    # --- content versions: what a repeat export reads first (issue 15) ---------------------
    #
    # Why separate, light queries: an export that reuses what it wrote for unchanged items
    # needs, per item, only its key, content version and the fields that name its file; the
    # full record with its child rows is loaded (`*_by_key`) for the few items it has no
    # bytes for. Both sides keep `position` order, so paths are allocated as a full export does.

    def contact_versions(self) -> Iterator[ContactVersion]:
        t = _table(ContactRow)
        query = (
            select(t.c.id, t.c.content_sha256, t.c.uid, t.c.formatted_name, t.c.name_given, t.c.name_family)
            .where(t.c.user_id == self.user.id)
            .order_by(t.c.position)
        )
        for row in self.session.execute(query.execution_options(yield_per=BATCH)):
            yield ContactVersion(*row)

    def contacts_by_key(self, keys: Collection[int]) -> dict[int, Contact]:
        """The full records of these contacts (keys from `contact_versions`), by key."""
        table = _table(ContactRow)
        children = {
            "values": _table(ContactValueRow),
            "addresses": _table(ContactAddressRow),
            "categories": _table(ContactCategoryRow),
            "extra": _table(ContactExtraRow),
        }
        where = (table.c.user_id == self.user.id) & table.c.id.in_(list(keys))
        return {row.id: mapping.contact_record(row) for row in self._stream(table, where, children, "contact_id")}

    def event_versions(self, calendar_id: int) -> Iterator[EventVersion]:
        t = _table(EventRow)
        query = select(t.c.id, t.c.content_sha256).where(t.c.calendar_id == calendar_id).order_by(t.c.position)
        for row in self.session.execute(query.execution_options(yield_per=BATCH)):
            yield EventVersion(*row)

    def events_by_key(self, calendar_id: int, keys: Collection[int]) -> dict[int, Event]:
        table = _table(EventRow)
        children = {
            "dates": _table(EventDateRow),
            "overrides": _table(EventOverrideRow),
            "attendees": _table(EventAttendeeRow),
            "alarms": _table(EventAlarmRow),
            "categories": _table(EventCategoryRow),
        }
        where = (table.c.calendar_id == calendar_id) & table.c.id.in_(list(keys))
        return {row.id: mapping.event_record(row) for row in self._stream(table, where, children, "event_id")}

    def note_versions(self) -> Iterator[NoteVersion]:
        t = _table(NoteRow)
        a = _table(NoteAttachmentRow)
        query = (
            select(t.c.id, t.c.content_sha256, t.c.title, t.c.notebook)
            .where(t.c.user_id == self.user.id)
            .order_by(t.c.position)
        )
        for batch in self.session.execute(query.execution_options(yield_per=BATCH)).partitions():
            names: dict[int, list[str]] = defaultdict(list)
            found = select(a.c.note_id, a.c.filename).where(a.c.note_id.in_([row.id for row in batch]))
            for note_id, filename in self.session.execute(found.order_by(a.c.note_id, a.c.position)):
                names[note_id].append(filename)
            for row in batch:
                yield NoteVersion(row.id, row.content_sha256, row.title, row.notebook, tuple(names.get(row.id, ())))

    def notes_by_key(self, keys: Collection[int]) -> dict[int, Note]:
        table = _table(NoteRow)
        children = {"tags": _table(NoteTagRow), "attachments": _table(NoteAttachmentRow)}
        where = (table.c.user_id == self.user.id) & table.c.id.in_(list(keys))
        return {row.id: mapping.note_record(row) for row in self._stream(table, where, children, "note_id")}

    def account(self) -> Account:
        """The whole account in memory (tests and small accounts only)."""
        from account.records import Calendar

        return Account(
            email=self.user.email,
            display_name=self.user.display_name,
            timezone=self.user.timezone,
            contacts=tuple(self.contacts()),
            calendars=tuple(Calendar(info, tuple(self.events(cid))) for cid, info in self.calendars()),
            notes=tuple(self.notes()),
        )


def _table(model: type[Any]) -> Table:
    table: Table = model.__table__
    return table


def _with_children(row: Row[Any], children: Mapping[str, Sequence[Row[Any]]]) -> Any:
    """What `mapping.*_record` reads from an ORM object: the columns and each child list."""
    return SimpleNamespace(**row._mapping, **children)
