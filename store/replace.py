"""Replace a user's data with streams of records, inserting plain rows in batches.

Why streams: a restore reads an archive that may hold 100,000 contacts and
500,000 events; holding them all as records (and then as ORM objects) cost
457 MiB at 10,000 contacts. Here records arrive one at a time and leave as rows
in batches of `BATCH`, so memory is one batch whatever the account's size.

Why plain rows and `insert(table)`: ORM objects cost about 130 µs per event with
its children to build and flush, several times the insert itself. Parents are
inserted with `RETURNING id` (one multi-row statement per batch on SQLite and
PostgreSQL), then each child table with one executemany.

All-or-nothing: everything happens in the caller's transaction, after deleting
the kinds being replaced, so an error half-way (a value too long to store, an
archive that cannot be parsed, two items with one UID) rolls the whole
transaction back and the old data stays. The rules of `account.storable` are
checked per record as it arrives; once one record breaks them nothing more is
written, the rest is still checked, and `InvalidInput` lists every problem, as
`storable.prepare` does for a whole account.

`stage` does the reading, checking and mapping before any transaction, into
a spool file on disk, and `write_staged` then only inserts: a restore refuses
a bad archive before the store is touched, and SQLite's single write lock is
held for the inserts alone, not for the parsing (which is most of the time).
"""

from __future__ import annotations

import logging
import pickle
import tempfile
from collections.abc import Callable, Collection, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import IO, Any, Protocol

from sqlalchemy import Table, delete, insert
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from account import storable
from account.records import KINDS, Account, CalendarInfo, Contact, Event, Note, When
from errors import InvalidInput
from store import mapping
from store.accounts import Counts, find_user, get_or_create_user
from store.base import utcnow
from store.calendars import CalendarRow, EventRow
from store.contacts import ContactRow
from store.notes import NoteRow
from store.users import User

BATCH = 500
log = logging.getLogger(__name__)


class RecordSource(Protocol):
    """Records to store, each kind read once, in order (`exporters.archive.reader.ArchiveRecords` is one)."""

    def contacts(self) -> Iterable[Contact]: ...
    def calendars(self) -> Iterable[tuple[CalendarInfo, Iterable[Event]]]: ...
    def notes(self) -> Iterable[Note]: ...


@dataclass(frozen=True)
class Owner:
    """The user the records belong to, and the user-level fields that are replaced too."""

    email: str
    display_name: str | None = None
    timezone: str = "UTC"


class AccountRecords:
    """An `Account` in memory as a `RecordSource` (import-account, the demo, tests)."""

    def __init__(self, account: Account) -> None:
        self.account = account

    def contacts(self) -> Iterable[Contact]:
        return self.account.contacts

    def calendars(self) -> Iterable[tuple[CalendarInfo, Iterable[Event]]]:
        return ((calendar.info, calendar.events) for calendar in self.account.calendars)

    def notes(self) -> Iterable[Note]:
        return self.account.notes


# One step of a replacement: ("contacts" | "events" | "notes", [RowDicts]) or ("calendar", row dict).
Step = tuple[str, Any]


@dataclass
class _Tally:
    """What was checked so far: counts, U+0000 replacements and problems."""

    contacts: int = 0
    calendars: int = 0
    events: int = 0
    notes: int = 0
    attachments: int = 0
    replaced: list[str] = field(default_factory=list)
    problems: list[tuple[str, str]] = field(default_factory=list)

    def counts(self) -> Counts:
        return Counts(self.contacts, self.calendars, self.events, self.notes, self.attachments)

    def clean(self, record: Any, path: str) -> Any:
        clean, replaced, problems = storable.prepare_record(record, path)
        self.replaced += replaced
        self.problems += problems
        return clean

    def raise_problems(self) -> None:
        if self.problems:
            count = len(self.problems)
            raise InvalidInput(f"The account has {count} value(s) too long to store", self.problems)


def _steps(owner: Owner, source: RecordSource, kinds: Collection[str], tally: _Tally) -> Iterator[Step]:
    """The rows to insert, batch by batch; after the first problem nothing more is yielded, all is checked."""
    if "contacts" in kinds:
        batch: list[mapping.RowDicts] = []
        for i, contact in enumerate(source.contacts()):
            batch.append(mapping.contact_dicts(tally.clean(contact, f"$.contacts[{i}]"), i))
            tally.contacts += 1
            if len(batch) == BATCH:
                yield from _unless_problems(tally, ("contacts", batch))
                batch = []
        yield from _unless_problems(tally, ("contacts", batch))
    if "calendars" in kinds:
        for c, (info, events) in enumerate(source.calendars()):
            at = f"$.calendars[{c}]"
            yield from _unless_problems(tally, ("calendar", mapping.calendar_dict(tally.clean(info, at), c)))
            tally.calendars += 1
            batch = []
            for i, event in enumerate(events):
                batch.append(mapping.event_dicts(tally.clean(event, f"{at}.events[{i}]"), i))
                tally.events += 1
                if len(batch) == BATCH:
                    yield from _unless_problems(tally, ("events", batch))
                    batch = []
            yield from _unless_problems(tally, ("events", batch))
    if "notes" in kinds:
        batch = []
        for i, note in enumerate(source.notes()):
            batch.append(mapping.note_dicts(tally.clean(note, f"$.notes[{i}]"), i))
            tally.notes += 1
            tally.attachments += len(note.attachments)
            if len(batch) == BATCH:
                yield from _unless_problems(tally, ("notes", batch))
                batch = []
        yield from _unless_problems(tally, ("notes", batch))
    tally.raise_problems()


def _unless_problems(tally: _Tally, step: Step) -> Iterator[Step]:
    if not tally.problems and step[1]:
        yield step


def replace_records(
    session: Session, owner: Owner, source: RecordSource, kinds: Collection[str] = KINDS
) -> tuple[User, Counts]:
    """Create the user if needed and replace their `kinds` with `source`'s records, in the caller's transaction.

    Records are checked as they are written: on `InvalidInput` (or any error) the
    caller must roll back, which `store.db.Database.session` does, and then
    nothing has changed.
    """
    tally = _Tally()
    owner = _clean_owner(owner, tally)
    steps = _steps(owner, source, kinds, tally)
    if tally.problems:  # the user's own fields: refused before the user row is touched
        for _ in steps:
            pass  # yields nothing: collects the other problems, then raises
    user = _write(session, owner, kinds, steps)
    _log_replaced(owner, tally)
    return user, tally.counts()


def _clean_owner(owner: Owner, tally: _Tally) -> Owner:
    """The owner with the NUL rule applied; problems (a display name too long...) go to `tally`."""
    clean = tally.clean(Account(owner.email, owner.display_name, owner.timezone), "$")
    return Owner(clean.email, clean.display_name, clean.timezone)


class Staged:
    """Rows checked and mapped before any transaction, waiting in a spool file for `write_staged`.

    Use as a context manager: the spool is deleted on exit.
    """

    def __init__(self, owner: Owner, kinds: Collection[str], spool: IO[bytes], tally: _Tally) -> None:
        self.owner = owner
        self.kinds = tuple(kinds)
        self.counts = tally.counts()
        self.replaced = list(tally.replaced)
        self._spool = spool
        self._calendars: IO[bytes] | None = None

    def __enter__(self) -> Staged:
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        self.close()

    def close(self) -> None:
        self._spool.close()
        if self._calendars is not None:
            self._calendars.close()

    def add_calendars(self, spool: IO[bytes], calendars: int, events: int, replaced: list[str]) -> None:
        """Take the calendars staged by another process (`stage` with `("calendars",)` into `spool`).

        `write_staged` then writes them where one process would have: after the
        contacts, before the notes. This object closes `spool`.
        """
        self._calendars = spool
        self.kinds = tuple(k for k in KINDS if k in self.kinds or k == "calendars")
        c = self.counts
        self.counts = Counts(c.contacts, calendars, events, c.notes, c.attachments)
        self.replaced += replaced

    def steps(self) -> Iterator[Step]:
        main = _load(self._spool)
        if self._calendars is None:
            yield from main
            return
        for step in main:
            if step[0] != "contacts":
                yield from _load(self._calendars)
                yield step
                yield from main
                return
            yield step
        yield from _load(self._calendars)


def _load(spool: IO[bytes]) -> Iterator[Step]:
    spool.seek(0)
    while True:
        try:
            yield pickle.load(spool)  # noqa: S301  # our own spool, written just before
        except EOFError:
            return


def stage(
    owner: Owner,
    source: RecordSource,
    kinds: Collection[str] = KINDS,
    *,
    scratch: Path | None = None,
    spool: IO[bytes] | None = None,
) -> Staged:
    """Read, check and map every record of `source` into a spool file; `InvalidInput` lists every problem.

    Memory is one batch; disk is about the size of the rows (a temporary file in
    `scratch`, or the system's temporary folder, removed when closed; or `spool`,
    a file another process reads: `jobs.restore_worker`).
    """
    tally = _Tally()
    owner = _clean_owner(owner, tally)
    if spool is None:
        spool = tempfile.TemporaryFile(prefix=".lifeboat-restore-", dir=scratch)  # noqa: SIM115  # Staged closes it
    try:
        for step in _steps(owner, source, kinds, tally):
            pickler = pickle.Pickler(spool, protocol=pickle.HIGHEST_PROTOCOL)
            pickler.dispatch_table = _SPOOL_REDUCERS
            pickler.dump(step)
    except BaseException:
        spool.close()
        raise
    return Staged(owner, kinds, spool, tally)


def _when_args(when: When) -> tuple[type[When], tuple[Any, ...]]:
    return When, (when.date, when.datetime, when.tz)


# Why: a frozen dataclass is pickled with its `__dict__` and read back through
# `copyreg`; as a call with its three fields it loads 4x faster (0.17 -> 0.04 s
# CPU for the 5,000 events of a 0.1x HEAVY restore, most of the spool's cost).
_SPOOL_REDUCERS: dict[type, Callable[[Any], Any]] = {When: _when_args}


def write_staged(session: Session, staged: Staged) -> User:
    """Replace the staged kinds of the staged owner's data, in the caller's transaction."""
    user = _write(session, staged.owner, staged.kinds, staged.steps())
    tally = _Tally(replaced=staged.replaced)
    _log_replaced(staged.owner, tally)
    return user


def _log_replaced(owner: Owner, tally: _Tally) -> None:
    if tally.replaced:
        count = len(tally.replaced)
        log.warning("U+0000 replaced with U+FFFD in %d field(s) of %s: %s", count, owner.email, tally.replaced)


def _write(session: Session, owner: Owner, kinds: Collection[str], steps: Iterable[Step]) -> User:
    user = find_user(session, owner.email)
    # The name and time zone (what the calendars are exported in) are the account's, not one kind's: an
    # archive of some kinds leaves them as they are, as it leaves the other kinds (a user trial restored
    # another account's notes-only archive, and the account's time zone and name became that account's).
    if user is None or set(KINDS) <= set(kinds):
        user = user or get_or_create_user(session, owner.email)
        user.display_name = owner.display_name
        user.timezone = owner.timezone
    for kind, model in (("contacts", ContactRow), ("calendars", CalendarRow), ("notes", NoteRow)):
        if kind in kinds:
            session.execute(delete(model).where(model.user_id == user.id))
    session.flush()
    calendar_id = None
    for kind, rows in steps:
        if kind == "contacts":
            _insert_tree(session, ContactRow, "user_id", user.id, rows, "two contacts have the same UID")
        elif kind == "calendar":
            calendar_id = _insert_calendar(session, user.id, rows)
        elif kind == "events":
            assert calendar_id is not None  # a calendar's row always comes before its events
            message = "two events of one calendar have the same UID"
            _insert_tree(session, EventRow, "calendar_id", calendar_id, rows, message)
        else:
            _insert_tree(session, NoteRow, "user_id", user.id, rows, "two notes have the same id")
    user.data_updated_at = utcnow()
    session.flush()
    return user


def _insert_calendar(session: Session, user_id: int, row: dict[str, Any]) -> int:
    table = _table(CalendarRow)
    try:
        new_id: int = session.execute(insert(table).returning(table.c.id), {**row, "user_id": user_id}).scalar_one()
    except IntegrityError:
        raise InvalidInput(f"two calendars are named {row['name']!r}: each calendar needs a name of its own") from None
    return new_id


def _insert_tree(
    session: Session, model: type[Any], parent_key: str, parent_id: int, rows: list[mapping.RowDicts], duplicate: str
) -> None:
    """Insert parent rows with `RETURNING id, position`, then every child table of the batch in one executemany each.

    Why the position and not `sort_by_parameter_order`: SQLite does not promise
    the order of a multi-row INSERT's RETURNING, so with it SQLAlchemy sends one
    INSERT per row (6,500 statements at 0.1x HEAVY, about a quarter of the
    write's CPU). Each row of a batch has a position of its own: the ids are
    matched to the rows by it, in whatever order they come back.
    """
    table = _table(model)
    statement = insert(table).returning(table.c.id, table.c.position)
    try:
        returned = session.execute(statement, [{**r.row, parent_key: parent_id} for r in rows]).all()
    except IntegrityError:
        raise InvalidInput(f"The data cannot be stored: {duplicate} ({_first_duplicate(rows)})") from None
    by_position = {position: new_id for new_id, position in returned}
    ids = [by_position[r.row["position"]] for r in rows]
    for name, (child, key) in _children(model).items():
        params = [{**c, key: new_id} for new_id, r in zip(ids, rows, strict=True) for c in r.children[name]]
        if params:
            session.execute(insert(child), params)


def _first_duplicate(rows: list[mapping.RowDicts]) -> str:
    """Which identifier of the batch repeats (within it, or else one already written)."""
    key = next(k for k in ("uid", "note_id") if k in rows[0].row)
    seen: set[Any] = set()
    for r in rows:
        if r.row[key] in seen:
            return f"{r.row[key]!r}"
        seen.add(r.row[key])
    return "one of " + ", ".join(repr(r.row[key]) for r in rows[:3]) + (", ..." if len(rows) > 3 else "")


_CHILDREN: dict[type[Any], dict[str, tuple[Table, str]]] = {}


def _children(model: type[Any]) -> dict[str, tuple[Table, str]]:
    """Each relationship of `model`: the child table and its column pointing at the parent."""
    if model not in _CHILDREN:
        from sqlalchemy import inspect

        found = {}
        for rel in inspect(model).relationships:
            (remote,) = rel.remote_side
            found[rel.key] = (rel.mapper.local_table, remote.name)
        _CHILDREN[model] = found
    return _CHILDREN[model]


def _table(model: type[Any]) -> Table:
    table: Table = model.__table__
    return table
