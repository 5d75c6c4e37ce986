"""Lay out one account as archive entries: which file holds what, in what order.

Why a separate module: the format writers each turn records into bytes, the
archive writer turns entries into a verified zip; this module is the only
place that knows the archive's folder layout, so restore reads exactly what
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
import tempfile
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Protocol, TypeVar

from account.records import CalendarInfo, Contact, Event, Note
from exporters.archive.counts import KIND_COUNTS, KINDS
from exporters.archive.manifest import RESERVED_NAMES, ArchiveError
from exporters.archive.paths import PathAllocator
from exporters.archive.writer import Entry
from exporters.ical.writer import iter_calendar
from exporters.markdown.writer import note_files
from exporters.vcard.writer import contact_to_vcard

ADDRESS_BOOK = "contacts/contacts.vcf"
CARDS_DIR = "contacts/cards"
CALENDARS_DIR = "calendars"
NOTES_DIR = "notes"
COPY_CHUNK = 1024 * 1024

K = TypeVar("K")
Progress = Callable[[str, int], None]  # (stage, items done in that stage)


class AccountSource(Protocol[K]):
    """What the bundle reads; `store.accounts.AccountReader` is one."""

    def contacts(self) -> Iterable[Contact]: ...
    def calendars(self) -> Sequence[tuple[K, CalendarInfo]]: ...
    def events(self, calendar_key: K) -> Iterable[Event]: ...
    def zones(self, calendar_key: K) -> Sequence[str]: ...
    def notes(self) -> Iterable[Note]: ...


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
    ) -> None:
        """`now` is the export time (DTSTAMP of events that lack one), `timezone` the owner's
        zone (the VTIMEZONE that keeps a calendar without events a valid file), `scratch`
        the folder where path bookkeeping spills past a few thousand names, `kinds` the
        kinds of data to include (the rest is not read at all)."""
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

    @property
    def layout(self) -> Layout:
        book = ADDRESS_BOOK if "contacts" in self.kinds else None
        return Layout(book, tuple(self._calendar_paths), tuple(self._note_paths))

    def entries(self) -> Iterator[Entry]:
        if "contacts" in self.kinds:
            # contacts.vcf is all cards again, after the cards: they wait in an unnamed temporary file.
            with tempfile.TemporaryFile(prefix=".lifeboat-vcf-", dir=self.scratch) as spool:
                yield from self._contact_entries(spool)
                spool.seek(0)
                yield Entry(ADDRESS_BOOK, _read_chunks(spool))
        if "calendars" in self.kinds:
            yield from self._calendar_entries()
        if "notes" in self.kinds:
            yield from self._note_entries()

    def _contact_entries(self, spool: IO[bytes]) -> Iterator[Entry]:
        for done, contact in enumerate(self.source.contacts(), start=1):
            card = contact_to_vcard(contact, self.vcard_version)
            spool.write(card)
            stem = contact.formatted_name or _name_of(contact) or contact.uid
            path = self.paths.stem(CARDS_DIR, stem, [".vcf"], fallback="contact") + ".vcf"
            yield Entry(path, [card])
            self.progress("contacts", done)

    def _calendar_entries(self) -> Iterator[Entry]:
        done = 0

        def counted(events: Iterable[Event]) -> Iterator[Event]:
            nonlocal done
            for event in events:
                yield event
                done += 1
                if done % 100 == 0:
                    self.progress("calendars", done)

        for key, info in self.source.calendars():
            path = self.paths.stem(CALENDARS_DIR, info.name, [".ics"], fallback="calendar") + ".ics"
            self._calendar_paths.append(path)
            events = counted(self.source.events(key))
            zones = self.source.zones(key)
            yield Entry(path, iter_calendar(info, events, zones, stamp=self.now, home_zone=self.timezone))
        self.progress("calendars", done)

    def _note_entries(self) -> Iterator[Entry]:
        for done, note in enumerate(self.source.notes(), start=1):
            files = note_files(note, self.paths)
            self._note_paths.append(files[0][0])
            for path, data in files:
                yield Entry(path, [data])
            self.progress("notes", done)


def included_kinds(kinds: Iterable[str]) -> tuple[str, ...]:
    """`kinds` in archive order; an unknown kind or none at all is an `ArchiveError` (a caller's bug)."""
    wanted = set(kinds)
    unknown = sorted(wanted - set(KINDS))
    if unknown or not wanted:
        raise ArchiveError(f"kinds must be a non-empty subset of {', '.join(KINDS)}, not {sorted(wanted)}")
    return tuple(kind for kind in KINDS if kind in wanted)


def counts_of_kinds(counts: Mapping[str, int], kinds: Iterable[str]) -> dict[str, int]:
    """`counts` with the figures of left-out kinds set to 0: what an archive of only `kinds` holds."""
    kept = {key for kind in included_kinds(kinds) for key in KIND_COUNTS[kind]}
    return {key: (value if key in kept else 0) for key, value in counts.items()}


def _name_of(contact: Contact) -> str | None:
    if contact.name is None:
        return None
    parts = (contact.name.given, contact.name.family)
    return " ".join(p for p in parts if p) or None


def _read_chunks(handle: IO[bytes]) -> Iterator[bytes]:
    while chunk := handle.read(COPY_CHUNK):
        yield chunk
