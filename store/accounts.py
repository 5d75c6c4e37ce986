"""Put a whole account into the store, and stream it back out as records.

Why streaming: an export of 10,000 contacts with photos must not load them all
at once. `AccountReader` yields records in batches of `BATCH` rows, loading each
batch's child rows with one query per child table (`_in_batch`), and computes
per-calendar zone sets with one query so the iCalendar writer can emit each
VTIMEZONE up front.

Why plain rows rather than ORM objects on the way out: the reader only turns
rows into records, and building ORM instances (identity map, instance state,
an instrumented collection per relationship, five per event even when empty)
cost the export about as much again as reading the rows (bench/export_account.py).
Even rows dressed up as objects (a namespace per row, attribute lookups,
`WhenText` values built then copied with their zone) cost 8x a plain scan of
the same rows, so the reader selects explicit columns and `store.reading` builds
records from the tuples directly (bench/export_floor.py measures the read against
the plain scan).
"""

from __future__ import annotations

import json
import logging
from collections import defaultdict
from collections.abc import Callable, Collection, Iterator, Sequence
from dataclasses import dataclass, field
from itertools import groupby
from operator import itemgetter
from typing import Any, Generic, TypeVar

from sqlalchemy import (
    ARRAY,
    Column,
    ColumnElement,
    Integer,
    Row,
    ScalarSelect,
    Select,
    String,
    Table,
    any_,
    bindparam,
    func,
    literal_column,
    select,
    type_coerce,
    union,
)
from sqlalchemy.orm import Session

from account.records import KINDS, Account, CalendarInfo, Contact, Event, Note
from account.versions import ContactVersion, EventVersion, NoteVersion
from store import mapping, reading
from store.base import Base, WhenText, utcnow
from store.calendars import CalendarRow, EventDateRow, EventOverrideRow, EventRow
from store.contacts import ContactRow
from store.notes import NoteAttachmentRow, NoteRow
from store.users import User

BATCH = 500
log = logging.getLogger(__name__)
R = TypeVar("R")


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


def _count(query: Select[Any]) -> ScalarSelect[Any]:
    return query.scalar_subquery()


_UID = bindparam("user_id", type_=Integer)
# Built once at import, run with {"user_id": ...}: SQLAlchemy then skips building the five
# subqueries on every dashboard load and finds the compiled SQL in its cache at once.
_COUNTS = select(
    _count(select(func.count()).select_from(ContactRow).where(ContactRow.user_id == _UID)),
    _count(select(func.count()).select_from(CalendarRow).where(CalendarRow.user_id == _UID)),
    _count(select(func.count()).select_from(EventRow).join(CalendarRow).where(CalendarRow.user_id == _UID)),
    _count(select(func.count()).select_from(NoteRow).where(NoteRow.user_id == _UID)),
    _count(select(func.count()).select_from(NoteAttachmentRow).join(NoteRow).where(NoteRow.user_id == _UID)),
)


def _zones_statement() -> Select[Any]:
    """The zones of one calendar (`AccountReader.zones`), built once with a `calendar_id` parameter.

    Why once: every export runs it per calendar, and building the six-part union each
    time cost about as much CPU as running it (py-spy of a repeat typical export, where
    it was ~4 % of the run, bench/typical_run_cpu.py).
    """
    calendar_id = bindparam("calendar_id", type_=Integer)
    events = select(EventRow.id).where(EventRow.calendar_id == calendar_id).scalar_subquery()
    tz_columns = [
        select(EventRow.start_tz.label("tz")).where(EventRow.calendar_id == calendar_id),
        select(EventRow.end_tz).where(EventRow.calendar_id == calendar_id),
        select(EventDateRow.tz).where(EventDateRow.event_id.in_(events)),
        select(EventOverrideRow.recurrence_id_tz).where(EventOverrideRow.event_id.in_(events)),
        select(EventOverrideRow.start_tz).where(EventOverrideRow.event_id.in_(events)),
        select(EventOverrideRow.end_tz).where(EventOverrideRow.event_id.in_(events)),
    ]
    return select(union(*tz_columns).subquery().c.tz)


_ZONES = _zones_statement()


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
        The statement is built once (`_COUNTS`): building it per call was a fifth of the
        dashboard's CPU.
        """
        row = self.session.execute(_COUNTS, {"user_id": self.user.id}).one()
        contacts, calendars, events, notes, attachments = (int(value or 0) for value in row)
        return Counts(contacts=contacts, calendars=calendars, events=events, notes=notes, attachments=attachments)

    def contacts(self) -> Iterator[Contact]:
        yield from _records(self._stream(_CONTACTS, ContactRow.user_id == self.user.id))

    def calendars(self) -> list[tuple[int, CalendarInfo]]:
        rows = self.session.scalars(
            select(CalendarRow).where(CalendarRow.user_id == self.user.id).order_by(CalendarRow.position)
        )
        return [(row.id, mapping.calendar_info(row)) for row in rows]

    def events(self, calendar_id: int) -> Iterator[Event]:
        yield from _records(self._stream(_EVENTS, EventRow.calendar_id == calendar_id))

    def zones(self, calendar_id: int) -> list[str]:
        """Every IANA zone any event, date or override of the calendar uses, sorted."""
        found = self.session.execute(_ZONES, {"calendar_id": calendar_id}).scalars().all()
        return sorted(tz for tz in found if tz)

    def notes(self) -> Iterator[Note]:
        yield from _records(self._stream(_NOTES, NoteRow.user_id == self.user.id))

    def _stream(
        self, plan: _Plan[R], where: ColumnElement[bool], keys: Collection[int] | None = None
    ) -> Iterator[tuple[int, R]]:
        """(row id, record) of `plan`'s rows matching `where` (and among `keys`, if given), in `position` order,
        `BATCH` rows at a time.

        Each batch costs one query per child table, its ids passed as one parameter
        (`_in_batch`). Rows stay Core rows, unpacked as tuples by `plan.build`: no ORM
        objects, no per-row dicts. `keys` go the same way, as one parameter: an
        expanding `IN` of a first export's 500 events per calendar was rendered anew
        for every statement and cost the read about a third more than streaming them.
        """
        if self.session.autoflush:  # what `session.execute` would do: the session's own changes are read
            self.session.flush()
        # Straight on the session's connection: through the session, each row also passes
        # the ORM's loading machinery, a tenth of the whole read.
        connection = self.session.connection()
        dialect = connection.dialect.name
        statement, params = plan.parents.where(where), {}
        if keys is not None:
            statement = statement.where(_in_batch(plan.key, dialect))
            params = _batch_ids(list(keys), dialect)
        result = connection.execute(statement, params, execution_options={"yield_per": BATCH})
        children = plan.child_queries(dialect)
        build = plan.build
        for batch in result.partitions():
            ids = _batch_ids([row[0] for row in batch], dialect)
            loaded = [_grouped(connection.execute(query, ids).all()) for query in children]
            for row in batch:
                key = row[0]
                yield key, build(row, *[by_parent.get(key, ()) for by_parent in loaded])

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
        return dict(self._stream(_CONTACTS, ContactRow.user_id == self.user.id, keys))

    def event_versions(self, calendar_id: int) -> Iterator[EventVersion]:
        t = _table(EventRow)
        query = select(t.c.id, t.c.content_sha256).where(t.c.calendar_id == calendar_id).order_by(t.c.position)
        for row in self.session.execute(query.execution_options(yield_per=BATCH)):
            yield EventVersion(*row)

    def events_by_key(self, calendar_id: int, keys: Collection[int]) -> dict[int, Event]:
        return dict(self._stream(_EVENTS, EventRow.calendar_id == calendar_id, keys))

    def note_versions(self) -> Iterator[NoteVersion]:
        t = _table(NoteRow)
        a = _table(NoteAttachmentRow)
        query = (
            select(t.c.id, t.c.content_sha256, t.c.title, t.c.notebook, t.c.note_id)
            .where(t.c.user_id == self.user.id)
            .order_by(t.c.position)
        )
        for batch in self.session.execute(query.execution_options(yield_per=BATCH)).partitions():
            names: dict[int, list[str]] = defaultdict(list)
            found = select(a.c.note_id, a.c.filename).where(a.c.note_id.in_([row.id for row in batch]))
            for note_id, filename in self.session.execute(found.order_by(a.c.note_id, a.c.position)):
                names[note_id].append(filename)
            for row in batch:
                attachments = tuple(names.get(row.id, ()))
                yield NoteVersion(row.id, row.content_sha256, row.title, row.notebook, attachments, row.note_id)

    def notes_by_key(self, keys: Collection[int]) -> dict[int, Note]:
        return dict(self._stream(_NOTES, NoteRow.user_id == self.user.id, keys))

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


@dataclass(frozen=True)
class _Plan(Generic[R]):
    """How `AccountReader._stream` reads one kind: the statements and the builder that unpacks their rows."""

    parents: Select[Any]  # `store.reading.*_COLUMNS`, in `position` order; the caller adds the WHERE
    children: tuple[tuple[Column[Any], Select[Any]], ...]  # (link to the parent, its rows: link first, ordered)
    build: Callable[..., R]
    key: Column[Any]  # the parents' `id`, for `_stream`'s `keys`
    _by_dialect: dict[str, tuple[Select[Any], ...]] = field(default_factory=dict)  # filled by child_queries

    def child_queries(self, dialect: str) -> tuple[Select[Any], ...]:
        """One statement per child table, for the rows of one batch of parents, in parent then position order.

        Built once per dialect: the same statement object hits SQLAlchemy's compiled cache.
        """
        found = self._by_dialect.get(dialect)
        if found is None:
            found = tuple(query.where(_in_batch(link, dialect)) for link, query in self.children)
            self._by_dialect[dialect] = found
        return found


def _plan(
    model: type[Any], columns: Sequence[str], children: Sequence[tuple[str, Sequence[str]]], build: Callable[..., R]
) -> _Plan[R]:
    """The statements for `columns` of `model` and each (child table, columns) of `children`."""
    table = _table(model)
    parents = select(*(_raw(table.c[name]) for name in columns)).order_by(table.c.position)
    queries = []
    for name, child_columns in children:
        child = Base.metadata.tables[name]
        link = next(fk.parent for fk in child.foreign_keys if fk.column.table is table)
        query = select(link, *(_raw(child.c[c]) for c in child_columns)).order_by(link, child.c.position)
        queries.append((link, query))
    return _Plan(parents, tuple(queries), build, table.c.id)


def _in_batch(link: Column[Any], dialect: str) -> ColumnElement[bool]:
    """`link` is one of a batch's parent ids, all passed as one parameter `ids` (`_batch_ids`).

    Why one parameter instead of `IN (?, ?, ...)`: SQLAlchemy renders an expanding
    IN anew for every execution, one placeholder per id; for 500 ids that cost
    0.53 ms of CPU per query against 0.22 ms with a JSON array on SQLite: about
    0.2 s of reading a 1x HEAVY account (600 child queries), a seventh of the read.
    """
    if dialect == "postgresql":
        return link == any_(bindparam("ids", type_=ARRAY(Integer)))
    if dialect == "sqlite":  # json_each: SQLite's JSON functions, built in since 3.38
        listed: Select[Any] = select(literal_column("value")).select_from(
            func.json_each(bindparam("ids", type_=String()))
        )
        return link.in_(listed)
    return link.in_(bindparam("ids", expanding=True))


def _batch_ids(ids: list[int], dialect: str) -> dict[str, Any]:
    """The `ids` parameter of `_in_batch`'s statements."""
    return {"ids": json.dumps(ids) if dialect == "sqlite" else ids}


def _raw(column: Column[Any]) -> ColumnElement[Any]:
    """`column` as selected; a `WhenText` as its stored text, which `store.reading` parses with its zone."""
    if isinstance(column.type, WhenText):
        return type_coerce(column, String()).label(column.name)
    return column


def _records(pairs: Iterator[tuple[int, R]]) -> Iterator[R]:
    return map(itemgetter(1), pairs)


def _grouped(rows: Sequence[Row[Any]]) -> dict[Any, list[Row[Any]]]:
    """Child rows by their first column, the parent id, keeping their order.

    The rows come ordered by parent id, so each parent's rows are adjacent and
    `groupby` (C) can cut them apart.
    """
    return {key: list(group) for key, group in groupby(rows, itemgetter(0))}


_CONTACTS = _plan(ContactRow, reading.CONTACT_COLUMNS, reading.CONTACT_CHILDREN, reading.contact_record)
_EVENTS = _plan(EventRow, reading.EVENT_COLUMNS, reading.EVENT_CHILDREN, reading.event_record)
_NOTES = _plan(NoteRow, reading.NOTE_COLUMNS, reading.NOTE_CHILDREN, reading.note_record)
