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
A plain source (records in memory) is compared record by record. With the
user's export cache, a repeat export parses only what earlier drills did not
prove (`exporters.archive.drill_memo`).

A difference is one line, `contact 4f2c…: emails[1].value: expected 'a@x.org', found absent`
(`exporters.archive.differences`). Values are cut short and binary values shown
by size and hash. The lines go to the user's own run page, never to logs.
"""

from __future__ import annotations

import functools
import itertools
from collections.abc import Callable, Iterable, Iterator, Mapping
from itertools import zip_longest
from typing import Any

from account.records import Contact
from account.versions import record_digest
from errors import InvalidInput
from exporters.archive.differences import (
    ABSENT,
    Difference,
    DrillResult,
    contact_id,
    differences_in,
    event_id,
    note_id,
    short,
    unreadable,
    whole_item,
)
from exporters.archive.drill_memo import (
    DrillMemo,
    UnreadableCard,
    Unsplittable,
    calendars_remembered,
    contacts_remembered,
    notes_remembered,
    read_card_alone,
    split_cards,
)
from exporters.archive.drill_written import WrittenDrill, calendars_written, contacts_written, notes_written
from exporters.archive.layout import AccountSource
from exporters.archive.manifest import ArchiveError
from exporters.archive.places import included_kinds
from exporters.archive.reader import ArchiveReader, ArchiveRecords
from exporters.archive.reuse import ItemCache
from exporters.ical.reader import UnreadableEvent

__all__ = ["Difference", "DrillResult", "drill"]

Loader = Callable[[], Any]


def drill(
    archive: ArchiveReader,
    source: AccountSource[Any],
    *,
    kinds: Iterable[str],
    memo: ItemCache | None = None,
    written: WrittenDrill | None = None,
) -> DrillResult:
    """Compare every record `archive` holds with `source`'s, kind by kind in archive order.

    `archive` is verified already (`exporters.archive.reader.open_archive`);
    `kinds` are the kinds the export included. A reader that refuses a member
    is a difference too ("could not be read back"), named by the member. With
    `memo` (the user's item cache) and a versioned source, items whose exact
    bytes were read back equal to a record of the same version before are not
    parsed again, and those that are and pass are remembered
    (`exporters.archive.drill_memo`). With `written` (a first export's drill done as
    the bundle wrote, `exporters.archive.drill_written`), the contacts and each
    calendar it read back are taken from it when the archive holds exactly the bytes
    it read; the others are read back here.
    """
    result = DrillResult()
    records = ArchiveRecords(archive)
    versioned = _is_versioned(source)
    remembered = DrillMemo(memo) if memo is not None and versioned else None
    steps: dict[str, tuple[Step, Step | None]] = {
        "contacts": (_contacts, contacts_remembered),
        "calendars": (_calendars, calendars_remembered),
        "notes": (_notes, notes_remembered),
    }
    if written is not None:
        steps["contacts"] = (_contacts, functools.partial(contacts_written, written))
        steps["calendars"] = (_calendars, functools.partial(calendars_written, written))
        steps["notes"] = (_notes, functools.partial(notes_written, written))
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
        result.differ([unreadable("archive", what, _cause(exc))])


def _cause(exc: Exception) -> str:
    """The reader's words, with the problems it listed (a calendar's events that could not be read)."""
    if not isinstance(exc, InvalidInput) or not exc.problems:
        return str(exc)
    listed = "; ".join(f"{which}: {problem}" for which, problem in exc.problems)
    return f"{exc.args[0]}: {listed}"


# --- in full: every record read back through the restore's streams ------------------------------


def _contacts(result: DrillResult, records: ArchiveRecords, source: Any, versioned: bool) -> None:
    if versioned:
        expected: Iterable[tuple[str | None, Loader]] = (
            (v.digest, _by_key(source.contacts_by_key, v.key)) for v in source.contact_versions()
        )
    else:
        expected = ((None, _given(c)) for c in source.contacts())
    _compare(result, "contact", expected, _contact_items(records), contact_id)


def _contact_items(records: ArchiveRecords) -> Iterator[Contact | UnreadableCard]:
    """The address book's contacts; from a card the reader refuses on, card by card, each refused one named.

    Why card by card only then: reading the book as one stream is what restore
    does, and the same code; once it refuses a card, the cards after it are cut
    apart as our writer lays them out (`split_cards`) and read one at a time. A
    book not laid out that way ends the drill of its contacts, as the stream did.
    """
    read = 0
    try:
        for contact in records.contacts():
            yield contact
            read += 1
    except InvalidInput as refused:
        book = records.address_book
        assert book is not None  # it was read
        try:
            for card in itertools.islice(split_cards(records.archive.member_chunks(book)), read, None):
                yield read_card_alone(card)
        except Unsplittable:
            raise refused from None


def _calendars(result: DrillResult, records: ArchiveRecords, source: Any, versioned: bool) -> None:
    found_calendars = records.calendar_items()
    for want, got in zip_longest(source.calendars(), found_calendars):
        if want is None:
            info, events = got
            result.items += 1
            result.differ([Difference("calendar", short(info.name), "(whole item)", ABSENT, "an extra calendar")])
            for _ in events:
                pass
            continue
        key, info = want
        result.items += 1
        if got is None:
            result.differ([Difference("calendar", short(info.name), "(whole item)", "a calendar", "missing")])
            continue
        found_info, found_events = got
        if found_info != info:
            result.differ(differences_in("calendar", short(info.name), info, found_info))
        if versioned:
            expected: Iterable[tuple[str | None, Loader]] = (
                (v.digest, _by_key(functools.partial(source.events_by_key, key), v.key))
                for v in source.event_versions(key)
            )
        else:
            expected = ((None, _given(e)) for e in source.events(key))
        _compare(result, "event", expected, found_events, event_id)


def _notes(result: DrillResult, records: ArchiveRecords, source: Any, versioned: bool) -> None:
    if versioned:
        expected: Iterable[tuple[str | None, Loader]] = (
            (v.digest, _by_key(source.notes_by_key, v.key)) for v in source.note_versions()
        )
    else:
        expected = ((None, _given(n)) for n in source.notes())
    _compare(result, "note", expected, records.notes(), note_id)


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
            result.differ([Difference(kind, _named(got, name), "(whole item)", ABSENT, f"an extra {kind}")])
            continue
        digest, load = want
        readable = got is not None and not isinstance(got, UnreadableEvent | UnreadableCard)
        if readable and digest is not None and record_digest(got) == digest:
            continue
        record = load()
        if got is None:
            result.differ([Difference(kind, name(record), "(whole item)", f"a {kind}", "missing")])
        elif isinstance(got, UnreadableEvent | UnreadableCard):  # in its place: the items after it still compared
            result.differ([unreadable(kind, name(record), got.problem)])
        elif got != record:
            result.differ(differences_in(kind, name(record), record, got) or [whole_item(kind, name(record))])


def _named(found: Any, name: Callable[[Any], str]) -> str:
    """An item read back that no record matches, by its id (or what the reader said of it)."""
    if isinstance(found, UnreadableEvent):
        return found.which
    return "(unreadable)" if isinstance(found, UnreadableCard) else name(found)


def _given(record: Any) -> Loader:
    return lambda: record


def _by_key(load: Callable[[list[int]], Mapping[int, Any]], key: int) -> Loader:
    return lambda: load([key])[key]


def _is_versioned(source: object) -> bool:
    names = ("contact_versions", "contacts_by_key", "event_versions", "events_by_key", "note_versions", "notes_by_key")
    return all(callable(getattr(source, name, None)) for name in names)
