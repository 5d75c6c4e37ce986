"""Lay out one account as archive entries: which file holds what, in what order.

Why a separate module: the format writers each turn records into bytes, the
archive writer turns entries into a verified zip; this module is the only
place that knows the archive's folder layout (its names are in
`exporters.archive.places`, for readers), so restore reads exactly what
export wrote. It stays pure: the caller passes a source of records (the store's
reader, or an in-memory account) and a progress callback.

Layout (format version 1):

    README.txt, manifest.json,      written by `exporters.archive.writer`: what is inside, how to
    SHA256SUMS                      import it, and the checksum of every file
    contacts/contacts.vcf           the whole address book, one file
    contacts/cards/<name>.vcf       the same contacts, one file each
    calendars/<name>.ics            one file per calendar, each VTIMEZONE once
    notes/<notebook>/<title>.md     one Markdown file per note, attachments beside it

A user may leave kinds out (`KINDS`): their files are then simply absent, the
layout records no address book (`address_book` null) or empty lists, and the
manifest's `kinds` names what was included.
"""

from __future__ import annotations

import datetime as dt
import functools
import hashlib
import struct
import tempfile
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any, Protocol, TypeVar

from account.records import CalendarInfo, Contact, Event, Note
from account.versions import EventVersion
from exporters.archive.changes import ChangeLog
from exporters.archive.counts import KIND_COUNTS, KINDS
from exporters.archive.manifest import RESERVED_NAMES
from exporters.archive.paths import PathAllocator
from exporters.archive.places import ADDRESS_BOOK, CALENDARS_DIR, CARDS_DIR, included_kinds
from exporters.archive.reuse import (
    ItemCache,
    ReuseStats,
    VersionedSource,
    deflate_segment,
    item_key,
    pack_card,
    unpack_card,
)
from exporters.archive.writer import DeflatedEntry, Entry
from exporters.ical.writer import (
    calendar_head,
    calendar_tail,
    event_chunk,
    event_depends_on_stamp,
    from_stamp_template,
    iter_calendar,
    stamp_line,
    stamp_template,
)
from exporters.markdown.writer import NotePaths, note_paths, note_text, notebook_parts

# Items looked up in the cache (and missing records loaded) at a time: what a batch holds in
# memory (cards carry photos; events are small, and fewer batches mean fewer queries for misses).
CONTACT_BATCH, EVENT_BATCH, NOTE_BATCH = 500, 8000, 1000
CHUNK = 64 * 1024  # calendar bytes handed to the zip writer at a time
RUN_TARGET, RUN_MAX = 16, 64  # events per cached run: on average, at most (see `event_runs`)
_PAIR = struct.Struct("<II")

K = TypeVar("K")
T = TypeVar("T")


class _Placed(Protocol):
    @property
    def path(self) -> str: ...


P = TypeVar("P", bound=_Placed)


class _Versioned(Protocol):
    @property
    def digest(self) -> str | None: ...


V = TypeVar("V", bound=_Versioned)
Progress = Callable[[str, int], None]  # (stage, items done in that stage)


class AccountSource(Protocol[K]):
    """What the bundle reads; `store.accounts.AccountReader` is one."""

    def contacts(self) -> Iterable[Contact]: ...
    def calendars(self) -> Sequence[tuple[K, CalendarInfo]]: ...
    def events(self, calendar_key: K) -> Iterable[Event]: ...
    def zones(self, calendar_key: K) -> Sequence[str]: ...
    def notes(self) -> Iterable[Note]: ...


class _CardsSeen(Protocol):
    def card(self, version: Any, record: Contact | None, card: bytes) -> None: ...


class _CalendarSeen(Protocol):
    def head(self, data: bytes) -> None: ...
    def event(self, version: Any, record: Event | None, chunk: bytes) -> None: ...
    def spoil(self) -> None: ...
    def tail(self, data: bytes) -> Any: ...


class _NotesSeen(Protocol):
    def note(
        self, version: Any, record: Note | None, path: str, text: bytes, attachments: Mapping[str, bytes]
    ) -> None: ...


class DrillAsWritten(Protocol):
    """What the bundle tells a fidelity drill done as it writes (`exporters.archive.drill_written.WrittenDrill`):
    each card, event and note it serialises now, with the record it was made from."""

    def contacts_watch(self) -> _CardsSeen: ...
    def notes_watch(self) -> _NotesSeen: ...
    def calendar_watch(
        self, path: str, info: CalendarInfo, load: Callable[[list[int]], Mapping[int, Any]]
    ) -> _CalendarSeen: ...
    def done(self, written: Any) -> None: ...


@dataclass(frozen=True)
class Layout:
    """Where restore finds things: recorded in the manifest's `layout`."""

    address_book: str | None  # None: contacts were left out
    calendars: tuple[str, ...]
    notes: tuple[str, ...]

    def as_dict(self) -> dict[str, object]:
        return {
            "address_book": self.address_book,
            "calendars": list(self.calendars),
            "notes": list(self.notes),
        }


def _ignore(_stage: str, _done: int) -> None:
    return None


class Bundle:
    """Entries for one account; iterate `entries()` once, then read `layout`.

    The address book and the one-file-per-contact copies come from one pass
    over the contacts: each card is serialised once, written as its own entry
    and appended to a spool file on disk, which then becomes the address book.
    That keeps memory flat and avoids serialising every contact twice.
    """

    def __init__(
        self,
        source: AccountSource[K],
        *,
        now: dt.datetime,
        timezone: str = "UTC",
        vcard_version: str = "3.0",
        progress: Progress = _ignore,
        scratch: Path | None = None,
        kinds: Iterable[str] = KINDS,
        cache: ItemCache | None = None,
        written: DrillAsWritten | None = None,
    ) -> None:
        """`now` is the export time (DTSTAMP of events that lack one), `timezone` the owner's
        zone (the VTIMEZONE that keeps a calendar without events a valid file), `scratch`
        the folder where path bookkeeping spills past a few thousand names, `kinds` the
        kinds of data to include (the rest is not read at all). With a `cache` and a
        source that gives content versions (`reuse.VersionedSource`), items whose bytes
        the cache holds are not read or serialised again; the entries are the same bytes.
        `written` (with a cache only) is shown each card and event serialised now and the
        record it came from: the fidelity drill of a first export (`exporters.archive.drill_written`)."""
        self.kinds = included_kinds(kinds)
        self.source = source
        self.now = now
        self.timezone = timezone
        self.vcard_version = vcard_version
        self.progress = progress
        self.scratch = scratch
        self.paths = PathAllocator(scratch=scratch)
        for reserved in RESERVED_NAMES:  # written by the archive itself
            self.paths.file("", reserved)
        self.paths.file("contacts", "contacts.vcf")
        self._calendar_paths: list[str] = []
        self._note_paths: list[str] = []
        self.cache = cache if cache is not None and _is_versioned(source) else None
        self.written = written if self.cache is not None else None
        self.reuse = ReuseStats()
        # What this export had to change (file names): the manifest's `changes` section.
        self.changes = ChangeLog(scratch=scratch)

    @property
    def layout(self) -> Layout:
        book = ADDRESS_BOOK if "contacts" in self.kinds else None
        return Layout(book, tuple(self._calendar_paths), tuple(self._note_paths))

    def entries(self) -> Iterator[Entry | DeflatedEntry]:
        yield from self.contact_entries()
        yield from self.calendar_entries()
        yield from self.note_entries()

    # The three parts of `entries()`, in its order, for a caller that makes the calendars elsewhere
    # (`jobs.export_split`): what it makes goes through `placed_calendars` so the layout lists it.

    def contact_entries(self) -> Iterator[DeflatedEntry]:
        if "contacts" not in self.kinds:
            return
        # contacts.vcf is all cards again, after the cards: they wait in an unnamed temporary file,
        # each as (card, its DEFLATE segment), so the address book is never compressed again.
        with tempfile.TemporaryFile(prefix=".lifeboat-vcf-", dir=self.scratch) as spool:
            yield from self._contact_entries(spool)
            spool.seek(0)
            yield DeflatedEntry(ADDRESS_BOOK, _read_pairs(spool))

    def calendar_entries(self) -> Iterator[Entry]:
        if "calendars" in self.kinds:
            yield from self._calendar_entries()

    def note_entries(self) -> Iterator[Entry]:
        if "notes" in self.kinds:
            yield from self._note_entries()

    def placed_calendars(self, entries: Iterable[P]) -> Iterator[P]:
        """Calendar entries another bundle of the same account made (`calendar_entries`), as this one's."""
        infos = [info for _, info in self.source.calendars()]
        for index, entry in enumerate(entries):
            self._calendar_paths.append(entry.path)
            if index < len(infos):
                # Placed here too, as the other bundle placed it (calendars/ holds nothing else), to learn
                # why a numbered name was numbered: the words must not depend on where calendars were made.
                placed = self.paths.stem(CALENDARS_DIR, infos[index].name, [".ics"], fallback="calendar")
                clash = self.paths.clash(placed) if placed + ".ics" == entry.path else None
                self._calendar_change(infos[index].name, entry.path, clash)
            yield entry

    def _calendar_change(self, name: str, path: str, clash: str | None) -> None:
        stem = path[len(CALENDARS_DIR) + 1 : -len(".ics")]
        self.changes.name("calendar", name, name, stem, path, fallback="calendar", clash=clash)

    def _contact_entries(self, spool: IO[bytes]) -> Iterator[DeflatedEntry]:
        for done, (uid, stem, card, segment) in enumerate(self._cards(), start=1):
            spool.write(_PAIR.pack(len(card), len(segment)))
            spool.write(card)
            spool.write(segment)
            placed = self.paths.stem(CARDS_DIR, stem, [".vcf"], fallback="contact")
            path = placed + ".vcf"
            clash = self.paths.clash(placed)
            self.changes.name("contact", uid, stem, placed[len(CARDS_DIR) + 1 :], path, fallback="contact", clash=clash)
            yield DeflatedEntry(path, [(card, segment)])
            self.progress("contacts", done)

    def _cards(self) -> Iterator[tuple[str, str, bytes, bytes]]:
        """(UID, file name stem, vCard, its DEFLATE segment) per contact, in order."""
        if self.cache is None:
            for contact in self.source.contacts():
                card = contact_to_vcard(contact, self.vcard_version)
                stem = _stem_of(contact.formatted_name, _name_of(contact), contact.uid)
                yield contact.uid, stem, card, deflate_segment(card)
            return
        versioned: VersionedSource[Any] = self.source  # type: ignore[assignment]  # checked in __init__
        watch = self.written.contacts_watch() if self.written is not None else None
        for batch in batches(versioned.contact_versions(), CONTACT_BATCH):
            keys = [item_key("contact", v.digest, self.vcard_version) if v.digest else "" for v in batch]
            found = self.cache.get_many([k for k in keys if k])
            packed = {k: pair for k in found if (pair := unpack_card(found[k])) is not None}
            missing = [v.key for v, k in zip(batch, keys, strict=True) if k not in packed]
            records = versioned.contacts_by_key(missing) if missing else {}  # no query when all were cached
            for version, key in zip(batch, keys, strict=True):
                stem = _stem_of(version.formatted_name, _joined(version.given, version.family), version.uid)
                pair = packed.get(key)
                record = None
                if pair is None:
                    record = records[version.key]
                    card = contact_to_vcard(record, self.vcard_version)
                    pair = card, deflate_segment(card)
                    if key:
                        self.cache.put(key, pack_card(*pair))
                    self.reuse.misses["contacts"] += 1
                else:
                    self.reuse.hits["contacts"] += 1
                if watch is not None:
                    watch.card(version, record, pair[0])
                yield version.uid, stem, pair[0], pair[1]

    def _calendar_entries(self) -> Iterator[Entry]:
        self._events_done = 0
        for key, info in self.source.calendars():
            placed = self.paths.stem(CALENDARS_DIR, info.name, [".ics"], fallback="calendar")
            path = placed + ".ics"
            self._calendar_paths.append(path)
            self._calendar_change(info.name, path, self.paths.clash(placed))
            if self.cache is None:
                events = self._counted(self.source.events(key))
                zones = self.source.zones(key)
                chunks = iter_calendar(info, events, zones, stamp=self.now, home_zone=self.timezone)
            else:
                chunks = self._reused_calendar(key, info, path)
            # Cut into equal pieces on both paths: the zip writer gets the same writes either way.
            yield Entry(path, _rechunk(chunks))
        self.progress("calendars", self._events_done)

    def _counted(self, events: Iterable[K]) -> Iterator[K]:
        for event in events:
            yield event
            self._events_done += 1
            if self._events_done % 100 == 0:
                self.progress("calendars", self._events_done)

    def _count(self, events: int) -> None:
        before, self._events_done = self._events_done, self._events_done + events
        if before // 100 != self._events_done // 100:
            self.progress("calendars", self._events_done)

    def _reused_calendar(self, key: Any, info: CalendarInfo, path: str) -> Iterator[bytes]:
        """`iter_calendar`'s bytes, unchanged events' from the cache.

        Why runs of events: a lookup per event costs about as much again as the
        rest of a repeat export's work on it. Consecutive events are grouped into
        runs cut where an event's content version says so (`event_runs`: an edit,
        insertion or deletion changes only the run it is in), and a run whose
        events are all unchanged is one cache entry. The events of any other run
        are looked up one by one, and the run is kept whole for the next export.
        """
        assert self.cache is not None
        versioned: VersionedSource[Any] = self.source  # type: ignore[assignment]  # checked in __init__
        head, known = calendar_head(info, self.source.zones(key))
        watch = None
        if self.written is not None:
            watch = self.written.calendar_watch(path, info, functools.partial(versioned.events_by_key, key))
            watch.head(head)
        yield head
        written = bool(known)
        line = stamp_line(self.now)
        for batch in batches(event_runs(versioned.event_versions(key)), EVENT_BATCH // RUN_TARGET):
            run_keys = [_run_key(run) for run in batch]
            found_runs = self.cache.get_many([k for k in run_keys if k])
            loose = [v for run, k in zip(batch, run_keys, strict=True) if k not in found_runs for v in run]
            keys = {v.key: item_key("event", v.digest) if v.digest else "" for v in loose}
            found = self.cache.get_many([k for k in keys.values() if k]) if loose else {}
            missing = [v.key for v in loose if keys[v.key] not in found]
            records = versioned.events_by_key(key, missing) if missing else {}
            for run, run_key in zip(batch, run_keys, strict=True):
                value = found_runs.get(run_key)
                text = _event_from_cache(value, line) if value is not None else None
                if text is not None:
                    # Its events are wanted one by one as soon as one of them changes: used too.
                    self.cache.touch(item_key("event", v.digest or "") for v in run)
                    self.reuse.hits["events"] += len(run)
                    if watch is not None:
                        watch.spoil()  # no record here to compare with: read back from the archive
                    self._count(len(run))
                    written = True
                    yield text
                    continue
                kept_run: list[bytes] = []  # each event as the cache keeps it, to keep the run whole
                reused: list[str] = []
                for version in run:
                    item = keys[version.key]
                    kept = found.get(item, b"")
                    chunk = _event_from_cache(kept, line) if kept else None
                    if chunk is None:
                        event = records[version.key] if version.key in records else self._one_event(key, version.key)
                        chunk = event_chunk(event, known, stamp=self.now)
                        kept = _event_for_cache(event, chunk, self.now) if item else b""
                        if kept:
                            self.cache.put(item, kept, group=run_key)
                        self.reuse.misses["events"] += 1
                        if watch is not None:
                            watch.event(version, event, chunk)
                    else:
                        reused.append(item)
                        self.reuse.hits["events"] += 1
                        if watch is not None:
                            watch.spoil()
                    kept_run.append(kept)
                    self._count(1)
                    written = True
                    yield chunk
                if run_key and all(kept_run):
                    # Each piece is its chunk (b"=") or template (b"@"); chunks hold no slot (no NUL),
                    # so the run joined is one template whose slots all take this export's time.
                    self.cache.put(run_key, b"@" + b"".join(piece[1:] for piece in kept_run))
                    self.cache.regroup(reused, run_key)
        tail = calendar_tail(written, self.timezone)
        if watch is not None and self.written is not None:
            self.written.done(watch.tail(tail))
        yield tail

    def _one_event(self, calendar_key: Any, key: int) -> Event:
        """An event whose cached value turned out unusable: read now."""
        versioned: VersionedSource[Any] = self.source  # type: ignore[assignment]  # checked in __init__
        return versioned.events_by_key(calendar_key, [key])[key]

    def _note_entries(self) -> Iterator[Entry]:
        if self.cache is None:
            for done, note in enumerate(self.source.notes(), start=1):
                names = [a.filename for a in note.attachments]
                where = note_paths(note.title, note.notebook, names, self.paths)
                self._note_changes(note.id, note.title, note.notebook, names, where)
                self._note_paths.append(where.markdown)
                yield Entry(where.markdown, [note_text(note, where.links)])
                for path, attachment in zip(where.attachments, note.attachments, strict=True):
                    yield Entry(path, [attachment.data])
                self.progress("notes", done)
            return
        versioned: VersionedSource[Any] = self.source  # type: ignore[assignment]  # checked in __init__
        watch = self.written.notes_watch() if self.written is not None else None
        done = 0
        for batch in batches(versioned.note_versions(), NOTE_BATCH):
            placed = [note_paths(v.title, v.notebook, v.attachments, self.paths) for v in batch]
            for v, where in zip(batch, placed, strict=True):
                self._note_changes(v.id, v.title, v.notebook, v.attachments, where)
            keys = [
                item_key("note", v.digest, *p.links) if v.digest else "" for v, p in zip(batch, placed, strict=True)
            ]
            found = self.cache.get_many([k for k in keys if k])
            # Attachments are not cached: a note that has them is read in full either way.
            wanted = [v.key for v, k in zip(batch, keys, strict=True) if k not in found or v.attachments]
            records = versioned.notes_by_key(wanted) if wanted else {}
            for version, where, key in zip(batch, placed, keys, strict=True):
                text = found.get(key)
                if text is None:
                    text = note_text(records[version.key], where.links)
                    if key:
                        self.cache.put(key, text)
                    self.reuse.misses["notes"] += 1
                    made = records[version.key]
                else:
                    self.reuse.hits["notes"] += 1
                    made = None
                attachments = records[version.key].attachments if version.attachments else ()
                if watch is not None:
                    files = {path: a.data for path, a in zip(where.attachments, attachments, strict=True)}
                    watch.note(version, made, where.markdown, text, files)
                self._note_paths.append(where.markdown)
                yield Entry(where.markdown, [text])
                for path, attachment in zip(where.attachments, attachments, strict=True):
                    yield Entry(path, [attachment.data])
                done += 1
                self.progress("notes", done)

    def _note_changes(
        self, note_id: str, title: str, notebook: str | None, attachments: Sequence[str], where: NotePaths
    ) -> None:
        """Record how the note's file, folder and attachments' names differ from what the user typed."""
        folder, _, stem = where.markdown[: -len(".md")].rpartition("/")
        clash = self.paths.clash(where.markdown[: -len(".md")])
        self.changes.name("note", note_id, title, stem, where.markdown, fallback="Untitled", clash=clash)
        if notebook is not None:
            levels = folder.split("/")  # notes/<level>/<level>/...
            clashes = [self.paths.clash("/".join(levels[: i + 1])) for i in range(1, len(levels))]
            self.changes.folder(note_id, notebook, notebook_parts(notebook), folder, where.markdown, clashes)
        for name, path in zip(attachments, where.attachments, strict=True):
            placed = path.rpartition("/")[2]
            clash = self.paths.clash(path)
            self.changes.name("attachment", f"{note_id}/{name}", name, placed, path, fallback="attachment", clash=clash)


def contact_to_vcard(contact: Contact, version: str = "3.0") -> bytes:
    """`exporters.vcard.writer.contact_to_vcard`, the card writer as the bundle calls it.

    Why imported on first use, not at the top: the vCard writer brings vobject and pytz (~0.015 s
    CPU), which a split export's calendar process (`jobs.export_calendars`), importing this module,
    never uses. Once imported, each call costs a dictionary lookup more.
    """
    from exporters.vcard.writer import contact_to_vcard as write

    return write(contact, version)


def counts_of_kinds(counts: Mapping[str, int], kinds: Iterable[str]) -> dict[str, int]:
    """`counts` with the figures of left-out kinds set to 0: what an archive of only `kinds` holds."""
    kept = {key for kind in included_kinds(kinds) for key in KIND_COUNTS[kind]}
    return {key: (value if key in kept else 0) for key, value in counts.items()}


def _name_of(contact: Contact) -> str | None:
    if contact.name is None:
        return None
    return _joined(contact.name.given, contact.name.family)


def _stem_of(formatted_name: str | None, name: str | None, uid: str) -> str:
    """What names a contact's card file: its formatted name, else its given and family name, else its UID."""
    return formatted_name or name or uid


def _joined(given: str | None, family: str | None) -> str | None:
    return " ".join(p for p in (given, family) if p) or None


def _event_for_cache(event: Event, chunk: bytes, now: dt.datetime) -> bytes:
    """What the cache keeps for an event: its chunk (b"=" first), or, when its DTSTAMP is the
    export time, the chunk with that time left as a slot (b"@" first), filled in on reuse."""
    if not event_depends_on_stamp(event):
        return b"=" + chunk
    template = stamp_template(chunk, now)
    return b"" if template is None else b"@" + template


def _event_from_cache(value: bytes, line: bytes) -> bytes | None:
    """The event's chunk from its cache value, with `line` (`stamp_line` of this export) in any slots."""
    if value[:1] == b"=":
        return value[1:]
    if value[:1] == b"@":
        return from_stamp_template(value[1:], line)
    return None  # not an event's entry: serialise again


def batches(items: Iterable[T], size: int) -> Iterator[list[T]]:
    """`items` in lists of `size` (the last shorter); `itertools.batched` once Python 3.12 is the floor."""
    batch: list[T] = []
    for item in items:
        batch.append(item)
        if len(batch) == size:
            yield batch
            batch = []
    if batch:
        yield batch


def _rechunk(chunks: Iterable[bytes]) -> Iterator[bytes]:
    """The bytes of `chunks` in pieces of exactly `CHUNK` bytes (the last shorter), however they came cut.

    Why: one zip write per event costs more than the event, and the zip writer must
    see the same writes whether events came one by one or as cached runs.
    """
    buffer = bytearray()
    for chunk in chunks:
        buffer += chunk
        while len(buffer) >= CHUNK:
            yield bytes(buffer[:CHUNK])
            del buffer[:CHUNK]
    if buffer:
        yield bytes(buffer)


def event_runs(versions: Iterable[V]) -> Iterator[list[V]]:
    """Consecutive events (or other versioned items) in runs of about `RUN_TARGET`, cut after one whose digest
    starts low.

    Content-defined cuts: where a run ends depends only on its own events, so an
    edit, insertion or deletion changes one run and leaves the others' keys as
    they were. An event without a version ends its run (which then has no key).
    """
    run: list[V] = []
    for version in versions:
        run.append(version)
        if ends_run(version, len(run)):
            yield run
            run = []
    if run:
        yield run


def ends_run(version: _Versioned, length: int) -> bool:
    """Whether a run of `length` items that `version` ends is cut there (`event_runs`' rule, for one item)."""
    digest = version.digest
    return digest is None or length >= RUN_MAX or int(digest[:2], 16) < 256 // RUN_TARGET


def _run_key(run: Sequence[EventVersion]) -> str:
    """The cache key of a run's bytes (its events' versions, in order), or "" if one has none."""
    digests = [v.digest for v in run]
    if any(d is None for d in digests):
        return ""
    return item_key("events-run", hashlib.sha256(" ".join(digests).encode()).hexdigest())  # type: ignore[arg-type]


def _is_versioned(source: object) -> bool:
    names = ("contact_versions", "contacts_by_key", "event_versions", "events_by_key", "note_versions", "notes_by_key")
    return all(callable(getattr(source, name, None)) for name in names)


def _read_pairs(handle: IO[bytes]) -> Iterator[tuple[bytes, bytes]]:
    """The (card, segment) pairs `_contact_entries` spooled, in order."""
    while head := handle.read(_PAIR.size):
        card_size, segment_size = _PAIR.unpack(head)
        yield handle.read(card_size), handle.read(segment_size)
