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
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field, fields, is_dataclass
from itertools import zip_longest
from typing import Any, TypeVar

from account.records import Contact, Event, Note
from account.versions import record_digest
from errors import InvalidInput
from exporters.archive.drill_memo import END_CALENDAR, CalendarSplit, DrillMemo, Unsplittable, sha256, split_cards
from exporters.archive.layout import ADDRESS_BOOK, AccountSource, included_kinds
from exporters.archive.manifest import ArchiveError
from exporters.archive.reader import ArchiveReader, ArchiveRecords
from exporters.archive.reuse import ItemCache
from exporters.ical.reader import stream_calendar
from exporters.ical.writer import stamp_line
from exporters.markdown.reader import read_note
from exporters.vcard.reader import stream_vcards

DESCRIBED = 10  # differences kept in words; the rest are counted
MEMO_BATCH = 1000  # items looked up in the memo (and their misses parsed) at a time
PIECE_GROUPS = 100  # event groups handed to the reader at a time (~64 KiB)
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
    method: str = "full"  # every item parsed and compared; "memo": items proven before were not parsed again
    skipped: int = 0  # items not parsed again (counted in `items`): their bytes were proven before

    def summary(self) -> str:
        """ "Read back 1,234 items: 0 differences"."""
        noun = "difference" if self.differences == 1 else "differences"
        return f"Read back {self.items:,} items: {self.differences:,} {noun}"

    def lines(self) -> list[str]:
        return [d.line() for d in self.described]

    def merge(self, other: DrillResult) -> None:
        self.items += other.items
        self.differences += other.differences
        self.described.extend(other.described[: max(0, DESCRIBED - len(self.described))])

    def _differ(self, found: list[Difference]) -> None:
        self.differences += 1
        self.described.extend(found[: max(0, DESCRIBED - len(self.described))])


def drill(
    archive: ArchiveReader, source: AccountSource[Any], *, kinds: Iterable[str], memo: ItemCache | None = None
) -> DrillResult:
    """Compare every record `archive` holds with `source`'s, kind by kind in archive order.

    `archive` is verified already (`exporters.archive.reader.open_archive`);
    `kinds` are the kinds the export included. A reader that refuses a member
    is a difference too ("could not be read back"), named by the member. With
    `memo` (the user's item cache) and a versioned source, items whose exact
    bytes were read back equal to a record of the same version before are not
    parsed again, and those that are and pass are remembered
    (`exporters.archive.drill_memo`).
    """
    result = DrillResult()
    records = ArchiveRecords(archive)
    versioned = _is_versioned(source)
    remembered = DrillMemo(memo) if memo is not None and versioned else None
    steps: dict[str, tuple[Step, Step | None]] = {
        "contacts": (_contacts, _contacts_remembered),
        "calendars": (_calendars, _calendars_remembered),
        "notes": (_notes, _notes_remembered),
    }
    for kind in included_kinds(kinds):
        full, fast = steps[kind]
        if remembered is not None and fast is not None:
            part = DrillResult()
            try:
                _guarded(part, kind, functools.partial(fast, part, archive, source, remembered))
            except Unsplittable:
                pass  # laid out otherwise than our writers lay it out: read in full below
            else:
                result.merge(part)
                continue
        _guarded(result, kind, functools.partial(full, result, records, source, versioned))
    if remembered is not None:
        result.skipped = remembered.skipped
        result.method = "memo"
    return result


Step = Callable[..., None]


def _guarded(result: DrillResult, what: str, step: Callable[[], None]) -> None:
    try:
        step()
    except (InvalidInput, ArchiveError, ValueError, KeyError) as exc:
        result.items += 1
        result._differ([Difference("archive", what, "(read back)", "readable", f"unreadable: {_short(str(exc))}")])


# --- with the memo: split members into items, parse only those not proven before ---------------


def _contacts_remembered(result: DrillResult, archive: ArchiveReader, source: Any, memo: DrillMemo) -> None:
    book = archive.manifest.meta["layout"].get("address_book", ADDRESS_BOOK)
    if book is None:
        return
    pairs = zip_longest(source.contact_versions(), split_cards(archive.member_chunks(book)))
    for batch in _batches(pairs, MEMO_BATCH):
        if any(v is None or card is None for v, card in batch):
            raise Unsplittable("as many cards as contacts")
        keys = [memo.key("card", sha256(card), v.digest) for v, card in batch]
        known = memo.known(keys)
        missed = [(v, card, key) for (v, card), key in zip(batch, keys, strict=True) if key not in known]
        result.items += len(batch) - len(missed)
        memo.skipped += len(batch) - len(missed)
        if not missed:
            continue
        found = stream_vcards(card for _, card, _ in missed)  # a chunk per card: never the batch as one text
        for pair in zip_longest(missed, found):
            (version, _, key), contact = _one_each(pair, "one contact per card")
            _checked(result, memo, "contact", version, key, contact, source.contacts_by_key, _contact_id)


def _calendars_remembered(result: DrillResult, archive: ArchiveReader, source: Any, memo: DrillMemo) -> None:
    names = archive.manifest.meta["layout"]["calendars"]
    wanted = list(source.calendars())
    if len(wanted) != len(names):
        raise Unsplittable("as many calendars as the store holds")
    for (calendar_key, info), name in zip(wanted, names, strict=True):
        _calendar_remembered(result, archive, source, memo, calendar_key, info, name)


def _calendar_remembered(
    result: DrillResult, archive: ArchiveReader, source: Any, memo: DrillMemo, calendar_key: Any, info: Any, name: str
) -> None:
    """One calendar: its header and the event groups not proven before, read as one stream.

    Why one stream: the header's VTIMEZONEs cost as much to parse as hundreds of
    events, so the misses of every batch follow one header (`pieces` decides them
    batch by batch as the reader asks for more, and queues what it sent in `sent`).
    """
    split = CalendarSplit(archive.member_chunks(name))
    line = stamp_line(archive.manifest.created_at)
    sent: deque[tuple[Any, str]] = deque()  # (version, key) of each group handed to the reader, in order
    problem: list[str] = []

    def pieces() -> Iterator[bytes]:
        batches = _batches(zip_longest(source.event_versions(calendar_key), split.groups()), MEMO_BATCH)
        batch = next(batches, [])  # the first group read tells where the header ends
        assert split.head is not None
        yield split.head
        while batch:
            if any(v is None or group is None for v, group in batch):
                problem.append("as many event groups as events")
                break
            keys = [memo.key("event", sha256(_stamp_free(group, line)), v.digest) for v, group in batch]
            known = memo.known(keys)
            piece: list[bytes] = []  # groups handed on ~64 KiB at a time: the reader's cost per chunk is not small
            for (version, group), key in zip(batch, keys, strict=True):
                if key in known:
                    result.items += 1
                    memo.skipped += 1
                    continue
                sent.append((version, key))
                piece.append(group)
                if len(piece) >= PIECE_GROUPS:
                    yield b"".join(piece)
                    piece = []
            if piece:
                yield b"".join(piece)
            batch = next(batches, [])
        yield END_CALENDAR

    found_info, events = stream_calendar(pieces())
    result.items += 1
    if found_info != info:
        result._differ(_fields("calendar", _short(info.name), info, found_info))
    load = functools.partial(source.events_by_key, calendar_key)
    for event in events:
        if not sent:
            raise Unsplittable("one event per group")
        version, key = sent.popleft()
        _checked(result, memo, "event", version, key, event, load, _event_id)
    if sent or problem:
        raise Unsplittable(problem[0] if problem else "one event per group")


def _stamp_free(group: bytes, line: bytes) -> bytes:
    """The group's bytes with the export time's DTSTAMP lines as a slot (the reader does not read DTSTAMP)."""
    return group.replace(line, b"\r\nDTSTAMP:\x00\r\n")


def _notes_remembered(result: DrillResult, archive: ArchiveReader, source: Any, memo: DrillMemo) -> None:
    paths = archive.manifest.meta["layout"]["notes"]
    wanted = set(paths)
    digests = {f.path: f.sha256 for f in archive.manifest.files if f.path in wanted}
    pairs = zip_longest(source.note_versions(), paths)
    for batch in _batches(pairs, MEMO_BATCH):
        if any(v is None or path is None for v, path in batch):
            raise Unsplittable("as many notes as the store holds")
        keys = [memo.key("note", digests[path], v.digest) if not v.attachments else "" for v, path in batch]
        known = memo.known(keys)
        for (version, path), key in zip(batch, keys, strict=True):
            if key and key in known:
                result.items += 1
                memo.skipped += 1
                continue
            note = read_note(path, archive.open_member(path), archive.open_member)
            _checked(result, memo, "note", version, key, note, source.notes_by_key, _note_id)


def _one_each(pair: tuple[Any, Any], what: str) -> tuple[Any, Any]:
    if pair[0] is None or pair[1] is None:
        raise Unsplittable(what)
    return pair


def _checked(
    result: DrillResult,
    memo: DrillMemo,
    kind: str,
    version: Any,
    key: str,
    got: Any,
    load: Callable[[list[int]], Mapping[int, Any]],
    name: Callable[[Any], str],
) -> None:
    """Compare one record read back with its version (digest first); remember it if equal."""
    result.items += 1
    if version.digest is not None and record_digest(got) == version.digest:
        memo.remember(key)
        return
    record = load([version.key])[version.key]
    if got != record:
        result._differ(_fields(kind, name(record), record, got) or [_whole(kind, name(record))])


T = TypeVar("T")


def _batches(items: Iterable[T], size: int) -> Iterator[list[T]]:
    batch: list[T] = []
    for item in items:
        batch.append(item)
        if len(batch) == size:
            yield batch
            batch = []
    if batch:
        yield batch


# --- in full: every record read back through the restore's streams ------------------------------


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
