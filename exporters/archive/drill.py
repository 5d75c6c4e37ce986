"""The fidelity drill: read a new archive back with our own readers and compare it with what went in.

Why after every export (issue 16, "no silent loss"): the writers are tested, but
a user's own data finds the cases tests did not. An archive that verifies (every
byte as written) can still have lost a field on the way from record to bytes.
So each export reads its archive back, the way a restore would
(`exporters.archive.reader.ArchiveRecords`: the address book, each calendar, each
note and its attachments) and compares every record it finds, field by field,
with the record the export was given, in order. The result (items compared,
items that differ, the first few differences in words) is stored with the run
and shown to the user.

How it stays cheap: a source that knows each record's content version
(`exporters.archive.reuse.VersionedSource`, the store's reader) is not read a
second time. The version is `account.versions.record_digest` of the record the
row was built from, so a record read back whose digest equals it is equal to
it in every field; only an item whose digest differs is loaded and compared
field by field, to say what differs (and it is not a difference if the loaded
record equals what was read: the stored version was stale, not the archive).
A plain source (records in memory) is compared record by record.

A difference is one line, `contact 4f2c…: emails[1].value: expected 'a@x.org', found absent`.
Values are cut short and binary values shown by size and hash. The lines go
to the user's own run page, never to logs.
"""

from __future__ import annotations

import functools
import hashlib
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field, fields, is_dataclass
from itertools import zip_longest
from typing import Any

from account.records import Contact, Event, Note
from account.versions import record_digest
from errors import InvalidInput
from exporters.archive.layout import AccountSource, included_kinds
from exporters.archive.manifest import ArchiveError
from exporters.archive.reader import ArchiveReader, ArchiveRecords

DESCRIBED = 10  # differences kept in words; the rest are counted
_SHOWN = 60  # characters of a value shown in a difference
_ABSENT = "absent"

Loader = Callable[[], Any]


@dataclass(frozen=True)
class Difference:
    """One field of one item that did not come back as it went in."""

    kind: str  # contact, calendar, event, note, archive
    item: str  # the item's id: contact or event UID, calendar name, note id
    field: str  # e.g. "emails[1].value"; "(whole item)" for an item missing or added
    expected: str
    found: str

    def line(self) -> str:
        return f"{self.kind} {self.item}: {self.field}: expected {self.expected}, found {self.found}"


@dataclass
class DrillResult:
    """What the drill found: items compared, items that differ, and the first differences in words."""

    items: int = 0
    differences: int = 0  # items with at least one difference
    described: list[Difference] = field(default_factory=list)
    method: str = "full"  # every item parsed and compared

    def summary(self) -> str:
        """ "Read back 1,234 items: 0 differences"."""
        noun = "difference" if self.differences == 1 else "differences"
        return f"Read back {self.items:,} items: {self.differences:,} {noun}"

    def lines(self) -> list[str]:
        return [d.line() for d in self.described]

    def _differ(self, found: list[Difference]) -> None:
        self.differences += 1
        self.described.extend(found[: max(0, DESCRIBED - len(self.described))])


def drill(archive: ArchiveReader, source: AccountSource[Any], *, kinds: Iterable[str]) -> DrillResult:
    """Compare every record `archive` holds with `source`'s, kind by kind in archive order.

    `archive` is verified already (`exporters.archive.reader.open_archive`);
    `kinds` are the kinds the export included. A reader that refuses a member
    is a difference too ("could not be read back"), named by the member.
    """
    result = DrillResult()
    records = ArchiveRecords(archive)
    versioned = _is_versioned(source)
    wanted = included_kinds(kinds)
    if "contacts" in wanted:
        _guarded(result, "contacts", lambda: _contacts(result, records, source, versioned))
    if "calendars" in wanted:
        _guarded(result, "calendars", lambda: _calendars(result, records, source, versioned))
    if "notes" in wanted:
        _guarded(result, "notes", lambda: _notes(result, records, source, versioned))
    return result


def _guarded(result: DrillResult, what: str, step: Callable[[], None]) -> None:
    try:
        step()
    except (InvalidInput, ArchiveError, ValueError, KeyError) as exc:
        result.items += 1
        result._differ([Difference("archive", what, "(read back)", "readable", f"unreadable: {_short(str(exc))}")])


def _contacts(result: DrillResult, records: ArchiveRecords, source: Any, versioned: bool) -> None:
    if versioned:
        expected: Iterable[tuple[str | None, Loader]] = (
            (v.digest, _by_key(source.contacts_by_key, v.key)) for v in source.contact_versions()
        )
    else:
        expected = ((None, _given(c)) for c in source.contacts())
    _compare(result, "contact", expected, records.contacts(), _contact_id)


def _calendars(result: DrillResult, records: ArchiveRecords, source: Any, versioned: bool) -> None:
    found_calendars = records.calendars()
    for want, got in zip_longest(source.calendars(), found_calendars):
        if want is None:
            info, events = got
            result.items += 1
            result._differ([Difference("calendar", _short(info.name), "(whole item)", _ABSENT, "an extra calendar")])
            for _ in events:
                pass
            continue
        key, info = want
        result.items += 1
        if got is None:
            result._differ([Difference("calendar", _short(info.name), "(whole item)", "a calendar", "missing")])
            continue
        found_info, found_events = got
        if found_info != info:
            result._differ(_fields("calendar", _short(info.name), info, found_info))
        if versioned:
            expected: Iterable[tuple[str | None, Loader]] = (
                (v.digest, _by_key(functools.partial(source.events_by_key, key), v.key))
                for v in source.event_versions(key)
            )
        else:
            expected = ((None, _given(e)) for e in source.events(key))
        _compare(result, "event", expected, found_events, _event_id)


def _notes(result: DrillResult, records: ArchiveRecords, source: Any, versioned: bool) -> None:
    if versioned:
        expected: Iterable[tuple[str | None, Loader]] = (
            (v.digest, _by_key(source.notes_by_key, v.key)) for v in source.note_versions()
        )
    else:
        expected = ((None, _given(n)) for n in source.notes())
    _compare(result, "note", expected, records.notes(), _note_id)


def _compare(
    result: DrillResult,
    kind: str,
    expected: Iterable[tuple[str | None, Loader]],
    found: Iterator[Any],
    name: Callable[[Any], str],
) -> None:
    """Compare `found` with `expected` item by item (in order); digests first where known."""
    for want, got in zip_longest(expected, found):
        result.items += 1
        if want is None:
            result._differ([Difference(kind, name(got), "(whole item)", _ABSENT, f"an extra {kind}")])
            continue
        digest, load = want
        if got is not None and digest is not None and record_digest(got) == digest:
            continue
        record = load()
        if got is None:
            result._differ([Difference(kind, name(record), "(whole item)", f"a {kind}", "missing")])
        elif got != record:
            result._differ(_fields(kind, name(record), record, got) or [_whole(kind, name(record))])


def _whole(kind: str, item: str) -> Difference:
    return Difference(kind, item, "(whole item)", "equal records", "records that compare unequal")


def _fields(kind: str, item: str, expected: Any, found: Any, at: str = "") -> list[Difference]:
    """Every leaf field where `found` differs from `expected`, named by its path in the record."""
    if expected == found:
        return []
    if is_dataclass(expected) and type(expected) is type(found):
        out: list[Difference] = []
        for spec in fields(expected):
            out += _fields(kind, item, getattr(expected, spec.name), getattr(found, spec.name), _join(at, spec.name))
        return out
    if isinstance(expected, tuple) and isinstance(found, tuple):
        out = []
        for index, (a, b) in enumerate(zip_longest(expected, found, fillvalue=_Missing)):
            out += _fields(kind, item, a, b, f"{at}[{index}]")
        return out
    if isinstance(expected, Mapping) and isinstance(found, Mapping):
        out = []
        for key in sorted(set(expected) | set(found), key=str):
            out += _fields(kind, item, expected.get(key, _Missing), found.get(key, _Missing), f"{at}[{key!r}]")
        return out
    return [Difference(kind, item, at or "(value)", _shown(expected), _shown(found))]


class _MissingType:
    def __repr__(self) -> str:
        return _ABSENT


_Missing: Any = _MissingType()


def _join(at: str, name: str) -> str:
    return f"{at}.{name}" if at else name


def _shown(value: Any) -> str:
    """A value as a difference shows it: short, binary by size and hash, absent as "absent"."""
    if value is _Missing or value is None:
        return _ABSENT
    if isinstance(value, bytes | bytearray):
        return f"{len(value):,} bytes (SHA-256 {hashlib.sha256(value).hexdigest()[:12]}…)"
    return _short(repr(value))


def _short(text: str) -> str:
    return text if len(text) <= _SHOWN else text[: _SHOWN - 1] + "…"


def _given(record: Any) -> Loader:
    return lambda: record


def _by_key(load: Callable[[list[int]], Mapping[int, Any]], key: int) -> Loader:
    return lambda: load([key])[key]


def _contact_id(contact: Contact) -> str:
    return _short(contact.uid)


def _event_id(event: Event) -> str:
    return _short(event.uid)


def _note_id(note: Note) -> str:
    return _short(note.id)


def _is_versioned(source: object) -> bool:
    names = ("contact_versions", "contacts_by_key", "event_versions", "events_by_key", "note_versions", "notes_by_key")
    return all(callable(getattr(source, name, None)) for name in names)
