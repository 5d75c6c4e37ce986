"""The fidelity drill of a user's first export, done on each item's bytes as the writer makes them (issue 16).

Why: a first export has nothing proven by an earlier drill, so the drill read
every member back: it inflated the address book and each calendar, cut them
into cards and event groups, hashed each, read every record's version from the
store again and compared each item read back with it by its digest. At 1x HEAVY
that cost 0.42x the export's own CPU (target: 0.3x). All of that but the
reading itself exists to find, in the archive, the bytes and the record the
writer had in its hands a moment before. So while the bundle writes
(`exporters.archive.layout.Bundle`, with `written`), each card and event it
serialises now is read back by the same readers the drill uses, at once,
and compared with the record it was made from; the proofs go into the drill's
memo as the read-back drill would put them (`exporters.archive.drill_memo`:
the same keys, the same spans), so the next export's drill is what it was.

Why it proves what reading the archive back proves, member by member:

- each member's SHA-256 is taken here over exactly the bytes read back, in
  order (a calendar: its header, its events, its end), and `drill` compares it
  with the SHA-256 the verified manifest lists for that file (the read-back
  check proved the zip holds bytes of that SHA-256); a card file's too. A
  member whose digest differs is read back from the archive as before;
- an event group or a card read alone gives what the whole file's stream gives
  for it: the memo's drill reads them that way already, and
  tests/formats/test_ical_lean.py and tests/formats/test_fidelity_drill.py hold
  it; groups the one-pass reader leaves to the stream are read as one stream
  after the calendar's header, as the memo's drill reads them;
- a member laid out otherwise than the read-back drill splits it (a calendar
  with no event, an event not starting with its VEVENT, two events with one
  UID one after the other), or with an item taken from the cache (no record
  here to compare with), is "spoiled": `drill` reads it back from the archive.

A calendar made in a split export's second process (`jobs.export_calendars`)
is drilled there, beside the contacts and notes this process writes; its
summary (`WrittenCalendar`) comes back with the packed calendars.
"""

from __future__ import annotations

import hashlib
import tempfile
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from account.records import CalendarInfo
from account.versions import record_digest
from exporters.archive import drill_memo
from exporters.archive.differences import (
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
    END_CALENDAR,
    MEMO_BATCH,
    PIECE_GROUPS,
    DrillMemo,
    UnreadableCard,
    Unsplittable,
    _keep_proven_runs,
    _OpenRun,
    _stamp_free,
    _uid_line,
    cards_read_back,
    sha256,
    span_key,
)
from exporters.archive.layout import ends_run
from exporters.archive.places import ADDRESS_BOOK, CARDS_DIR
from exporters.archive.reader import ArchiveReader
from exporters.ical.quick import read_block
from exporters.ical.reader import UnreadableEvent, stream_calendar, stream_calendar_items
from exporters.markdown.reader import read_note

_BEGIN_EVENT = b"BEGIN:VEVENT\r\n"
_LENGTH = 8  # bytes of a spilled group's length (`CalendarWatch._spill`)


class _Run:
    """The items of the run being written (`layout.ends_run`): what its span would be."""

    def __init__(self) -> None:
        self.versions: list[Any] = []
        self.also: list[str] = []  # a card run's card files' SHA-256s (part of its span's key)
        self.length = 0
        self.digest = hashlib.sha256()
        self.items: list[bytes] = []

    def add(self, version: Any, data: bytes, hashed: bytes, key: bytes) -> None:
        self.versions.append(version)
        self.length += len(data)
        self.digest.update(hashed)
        self.items.append(key)

    def close(self, opened: list[_OpenRun]) -> _Run:
        """Note the run as a span to keep if all its items end up proven; a new run."""
        run_key = span_key(self.versions, self.also)
        if run_key and all(self.items):
            opened.append(_OpenRun(run_key, self.length, self.digest.digest(), b"".join(self.items)))
        return _Run()


class _Waiting:
    """Items written and waiting to be read back: their bytes, records and proofs, in three lists.

    Why not a tuple per item: a batch of 1,000 tuples outlived the young collections and was
    promoted with everything it held, which brought on full collections in an export whose
    heap holds the whole account (the drill's share of collecting was ~0.3 s of 1x HEAVY).
    """

    def __init__(self) -> None:
        self.versions: list[Any] = []
        self.records: list[Any] = []
        self.data: list[bytes] = []
        self.keys: list[bytes] = []

    def add(self, version: Any, record: Any, data: bytes, key: bytes) -> None:
        self.versions.append(version)
        self.records.append(record)
        self.data.append(data)
        self.keys.append(key)


def _compared(
    result: DrillResult, proven: list[bytes], kind: str, record: Any, got: Any, key: bytes, name: Callable[[Any], str]
) -> None:
    """One item read back against the record it was written from; its proof kept if they are equal.

    Equal records are what the read-back drill accepts too (after their digests, it
    compares the records themselves), so nothing it would call a difference passes here.
    """
    result.items += 1
    if got == record:
        if key:
            proven.append(key)
        return
    result.differ(differences_in(kind, name(record), record, got) or [whole_item(kind, name(record))])


@dataclass
class WrittenCalendar:
    """What drilling one calendar as it was written found: `result` None if it was spoiled."""

    path: str
    sha256: str
    result: DrillResult | None

    def to_json(self) -> dict[str, Any]:
        found = self.result
        return {
            "path": self.path,
            "sha256": self.sha256,
            "result": None
            if found is None
            else {
                "items": found.items,
                "differences": found.differences,
                "described": [d.as_dict() for d in found.described],
            },
        }

    @classmethod
    def from_json(cls, row: Mapping[str, Any]) -> WrittenCalendar:
        found = row["result"]
        result = None
        if found is not None:
            result = DrillResult(items=int(found["items"]), differences=int(found["differences"]))
            result.described = [Difference(**d) for d in found["described"]]
            result.method = "memo"
        return cls(str(row["path"]), str(row["sha256"]), result)


class CalendarWatch:
    """One calendar as `Bundle` writes it: `head`, `event` for each event, `tail`; then `written`."""

    def __init__(
        self,
        memo: DrillMemo,
        path: str,
        info: CalendarInfo,
        line: bytes,
        load: Callable[[list[int]], Mapping[int, Any]],
        scratch: Path | None,
    ) -> None:
        self.memo, self.path, self.info, self.line, self.load = memo, path, info, line, load
        self.scratch = scratch
        self.member = hashlib.sha256()
        self.result = DrillResult(method="memo")
        self.proven: list[bytes] = []
        self.opened: list[_OpenRun] = []
        self.run = _Run()
        self._head = b""
        self._uid = b""
        self._events = 0
        # Groups the one-pass reader leaves to the stream wait on disk (a tenth of the events, their
        # overrides' bytes: ~8 MB at 1x HEAVY), with (version key, digest, proof) of each here.
        self._slow: IO[bytes] | None = None
        self._slow_items: list[tuple[int, str | None, bytes]] = []
        self._pending = _Waiting()  # events to read
        self.spoiled = False
        self.written: WrittenCalendar | None = None

    def spoil(self) -> None:
        """This calendar is read back from the archive instead (see the module's docstring)."""
        self.spoiled = True
        self._pending = _Waiting()
        self._close_slow()

    def head(self, data: bytes) -> None:
        self.member.update(data)
        self._head = data
        if b"\r\n" + _BEGIN_EVENT in data or not data.endswith(b"\r\n"):
            self.spoil()

    def event(self, version: Any, record: Any, chunk: bytes) -> None:
        """One event serialised now (`record` what it was made from; None: taken from the cache)."""
        self.member.update(chunk)
        if self.spoiled:
            return
        try:
            self._event(version, record, chunk)
        except Exception:  # never the export's failure: the read-back drill says what is wrong
            self.spoil()

    def _event(self, version: Any, record: Any, chunk: bytes) -> None:
        if record is None or not chunk.startswith(_BEGIN_EVENT):
            self.spoil()
            return
        try:
            uid = _uid_line(chunk)
        except Unsplittable:
            self.spoil()
            return
        if uid == self._uid:  # the read-back drill takes the two as one group
            self.spoil()
            return
        self._uid = uid
        self._events += 1
        free = _stamp_free(chunk, self.line)
        key = self.memo.key("event", sha256(free), version.digest)
        self.run.add(version, chunk, free, key)
        if ends_run(version, len(self.run.versions)):
            self.run = self.run.close(self.opened)
        self._pending.add(version, record, chunk, key)
        if len(self._pending.data) >= MEMO_BATCH:
            self._read()

    def _read(self) -> None:
        """Read the events waiting back, one after the other.

        Why in batches, not each as it is written: read between two events' writing, the
        one-pass reader ran at about half its speed (its tables of lines seen before
        pushed out of the processor's caches by the writer's work; 1x HEAVY: 2.0 s for
        the 50,000 events against 1.1 s read one after the other, measured in one process).
        """
        pending, self._pending = self._pending, _Waiting()
        for version, record, chunk, key in zip(
            pending.versions, pending.records, pending.data, pending.keys, strict=True
        ):
            found = read_block(chunk)
            if found is not None:
                _compared(self.result, self.proven, "event", record, found, key, event_id)
                continue
            if self._slow is None:
                self._slow = tempfile.TemporaryFile(prefix=".lifeboat-drill-", dir=self.scratch)  # noqa: SIM115  # `tail`, `spoil`
            self._slow.write(len(chunk).to_bytes(_LENGTH, "little"))
            self._slow.write(chunk)
            self._slow_items.append((version.key, version.digest, key))

    def tail(self, data: bytes) -> WrittenCalendar:
        """The calendar's last bytes: the events left to the stream are read, and its proofs kept."""
        self.member.update(data)
        if not self.spoiled and (self._events == 0 or data != END_CALENDAR):
            self.spoil()  # no event: the read-back drill takes the header to be everything
        if not self.spoiled:
            try:
                self._read()
                self._stream_the_rest()
                self.run.close(self.opened)
                self.memo.begin(f"calendar:{self.path}")
                for key in self.proven:
                    self.memo.remember(key)
                _keep_proven_runs(self.memo, self.opened)
                self.memo.end(None)
            except Exception:  # as in `event`
                self.spoil()
        self._close_slow()
        self.written = WrittenCalendar(self.path, self.member.hexdigest(), None if self.spoiled else self.result)
        return self.written

    def _slow_groups(self) -> Iterator[bytes]:
        handle = self._slow
        if handle is None:
            return
        handle.seek(0)
        while head := handle.read(_LENGTH):
            yield handle.read(int.from_bytes(head, "little"))

    def _pieces(self) -> Iterator[bytes]:
        yield self._head
        piece: list[bytes] = []
        for group in self._slow_groups():
            piece.append(group)
            if len(piece) >= PIECE_GROUPS:
                yield b"".join(piece)
                piece = []
        if piece:
            yield b"".join(piece)
        yield END_CALENDAR

    def _stream_the_rest(self) -> None:
        """The header (and its info compared) with the groups the one-pass reader left, as one stream."""
        result, info = self.result, self.info
        if not self._slow_items:
            found_info, _ = stream_calendar([self._head, END_CALENDAR])
            events: Iterator[Any] = iter(())
        else:
            found_info, events = stream_calendar_items(self._pieces())
        result.items += 1
        if found_info == info:
            self.proven.append(self.memo.key("calendar", sha256(self._head), record_digest(info)))
        else:
            result.differ(differences_in("calendar", short(info.name), info, found_info))
        waiting = iter(self._slow_items)
        for event in events:
            item = next(waiting, None)
            if item is None:
                raise Unsplittable("one event per group")
            key, digest, proof = item
            if isinstance(event, UnreadableEvent):
                result.items += 1
                result.differ([unreadable("event", event_id(self.load([key])[key]), event.problem)])
                continue
            if digest is not None and record_digest(event) == digest:
                result.items += 1
                self.proven.append(proof)
                continue
            _compared(result, self.proven, "event", self.load([key])[key], event, proof, event_id)
        if next(waiting, None) is not None:
            raise Unsplittable("one event per group")

    def _close_slow(self) -> None:
        if self._slow is not None:
            self._slow.close()
            self._slow = None


class CardsWatch:
    """The address book as `Bundle` writes it: `card` for each contact; `drilled` at the drill."""

    def __init__(self, memo: DrillMemo) -> None:
        self.memo = memo
        self.book = hashlib.sha256()
        self.card_sha256s: list[str] = []
        self.digests: list[str | None] = []
        self.result = DrillResult(method="memo")
        self.proven: list[bytes] = []
        self.opened: list[_OpenRun] = []
        self.run = _Run()
        # The cards to read, their records and proofs, side by side: three lists, not a tuple per card
        # (see `_Waiting`).
        self._pending = _Waiting()
        self.spoiled = False

    def card(self, version: Any, record: Any, card: bytes) -> None:
        """One contact's card (`record` what it was made from; None: taken from the cache)."""
        self.book.update(card)
        hexdigest = sha256(card)
        self.card_sha256s.append(hexdigest)
        self.digests.append(version.digest)
        if self.spoiled:
            return
        if record is None:
            self.spoiled = True
            self._pending = _Waiting()
            return
        key = self.memo.key("card", hexdigest, version.digest)
        self.run.add(version, card, card, key)
        self.run.also.append(hexdigest)
        if ends_run(version, len(self.run.versions)):
            self.run = self.run.close(self.opened)
        self._pending.add(version, record, card, key)
        if len(self._pending.data) >= MEMO_BATCH:
            try:
                self._read()
            except Exception:  # never the export's failure: the read-back drill says what is wrong
                self.spoiled = True

    def _read(self) -> None:
        """Read the cards waiting back and compare each with its record."""
        pending, self._pending = self._pending, _Waiting()
        read_back = cards_read_back(pending.data)
        for record, key, found in zip(pending.records, pending.keys, read_back, strict=True):
            if isinstance(found, UnreadableCard):
                self.result.items += 1
                self.result.differ([unreadable("contact", short(record.uid), found.problem)])
                continue
            _compared(self.result, self.proven, "contact", record, found, key, contact_id)

    def drilled(self, archive: ArchiveReader, book: str) -> DrillResult | None:
        """The contacts' result, their proofs kept, if the archive's address book and card files are the
        bytes read back (their SHA-256s in the verified manifest); None: read them back from the archive."""
        if self.spoiled:
            return None
        try:
            self._read()
        except Exception:  # as in `card`
            return None
        self.spoiled = True  # once
        files = [file for file in archive.manifest.files if file.path.startswith(CARDS_DIR + "/")]
        try:
            books = [archive.listed(book)]
        except KeyError:
            return None
        if books[0].sha256 != self.book.hexdigest() or [f.sha256 for f in files] != self.card_sha256s:
            return None
        self.run.close(self.opened)
        members = hashlib.sha256()  # as `drill_memo.contacts_remembered` names the whole address book
        for file in (*books, *files):
            members.update(f"{file.path}\0{file.sha256}\n".encode("utf-8", "surrogatepass"))
        memo = self.memo
        memo.begin(f"contacts:{book}")
        for key in self.proven:
            memo.remember(key)
        _keep_proven_runs(memo, self.opened)
        whole = memo.whole_key(members.hexdigest(), self.digests)
        everything = whole is not None and self.result.differences == 0 and len(self.proven) == whole[1]
        memo.end(whole[0] if whole is not None and everything else None)
        return self.result


class NotesWatch:
    """The notes as `Bundle` writes them: `note` for each; `drilled` at the drill.

    A note is read back with its attachments' bytes as written (`read_note` asks
    for them by path); `drilled` takes the lot only if the verified manifest lists
    every one of those files with the SHA-256 of the bytes read here.
    """

    def __init__(self, memo: DrillMemo) -> None:
        self.memo = memo
        self.result = DrillResult(method="memo")
        self.proven: list[bytes] = []
        self.paths: list[str] = []  # each note's .md, in order: the layout's `notes`
        self.files: list[tuple[str, str]] = []  # (path, SHA-256) of every file read back
        self.spoiled = False

    def note(self, version: Any, record: Any, path: str, text: bytes, attachments: Mapping[str, bytes]) -> None:
        """One note written now (`record` what it was made from; None: taken from the cache)."""
        self.paths.append(path)
        if self.spoiled:
            return
        if record is None:
            self.spoiled = True
            return
        try:
            digest = sha256(text)
            self.files.append((path, digest))
            self.files.extend((name, sha256(data)) for name, data in attachments.items())
            key = b"" if version.attachments else self.memo.key("note", digest, version.digest)
            found = read_note(path, text, attachments.__getitem__)
            _compared(self.result, self.proven, "note", record, found, key, note_id)
        except Exception:  # never the export's failure: the read-back drill says what is wrong
            self.spoiled = True

    def drilled(self, archive: ArchiveReader) -> DrillResult | None:
        """The notes' result, their proofs kept, if the archive holds exactly the files read back; else None."""
        if self.spoiled or list(archive.manifest.meta["layout"]["notes"]) != self.paths:
            return None
        self.spoiled = True  # once
        try:
            if any(archive.listed(path).sha256 != digest for path, digest in self.files):
                return None
        except KeyError:
            return None
        self.memo.begin("notes")
        for key in self.proven:
            self.memo.remember(key)
        self.memo.end(None)  # as `drill_memo.notes_remembered`: notes are not taken whole
        return self.result


@dataclass
class WrittenDrill:
    """The drill done as the bundle writes (see the module's docstring): one per export, given to `Bundle`.

    `memo` is the drill's memo over the user's item cache; `line` the export time's
    DTSTAMP line (`exporters.ical.writer.stamp_line`).
    """

    memo: DrillMemo
    line: bytes
    scratch: Path | None = None
    cards: CardsWatch | None = None
    calendars: dict[str, WrittenCalendar] = field(default_factory=dict)
    notes: NotesWatch | None = None

    def contacts_watch(self) -> CardsWatch:
        if self.cards is None:
            self.cards = CardsWatch(self.memo)
        return self.cards

    def notes_watch(self) -> NotesWatch:
        if self.notes is None:
            self.notes = NotesWatch(self.memo)
        return self.notes

    def calendar_watch(
        self, path: str, info: CalendarInfo, load: Callable[[list[int]], Mapping[int, Any]]
    ) -> CalendarWatch:
        return CalendarWatch(self.memo, path, info, self.line, load, self.scratch)

    def done(self, written: WrittenCalendar) -> None:
        self.calendars[written.path] = written

    def calendar(self, archive: ArchiveReader, path: str) -> DrillResult | None:
        """A calendar's result if it was drilled as written and the archive holds those bytes; else None."""
        written = self.calendars.pop(path, None)
        if written is None or written.result is None:
            return None
        try:
            listed = archive.listed(path)
        except KeyError:
            return None
        return written.result if listed.sha256 == written.sha256 else None


def contacts_written(
    written: WrittenDrill, result: DrillResult, archive: ArchiveReader, source: Any, memo: DrillMemo
) -> None:
    """`drill_memo.contacts_remembered`, from what was drilled as written when the archive holds those bytes."""
    book = archive.manifest.meta["layout"].get("address_book", ADDRESS_BOOK)
    found = written.cards.drilled(archive, book) if written.cards is not None and book is not None else None
    if found is None:
        drill_memo.contacts_remembered(result, archive, source, memo)
    else:
        result.merge(found)


def calendars_written(
    written: WrittenDrill, result: DrillResult, archive: ArchiveReader, source: Any, memo: DrillMemo
) -> None:
    """`drill_memo.calendars_remembered`, each calendar drilled as written taken as it was found then."""
    names = archive.manifest.meta["layout"]["calendars"]
    wanted = list(source.calendars())
    if len(wanted) != len(names):
        raise Unsplittable("as many calendars as the store holds")
    for (calendar_key, info), name in zip(wanted, names, strict=True):
        found = written.calendar(archive, name)
        if found is None:
            drill_memo.calendar_remembered(result, archive, source, memo, calendar_key, info, name)
        else:
            result.merge(found)


def notes_written(
    written: WrittenDrill, result: DrillResult, archive: ArchiveReader, source: Any, memo: DrillMemo
) -> None:
    """`drill_memo.notes_remembered`, from what was drilled as written when the archive holds those files."""
    found = written.notes.drilled(archive) if written.notes is not None else None
    if found is None:
        drill_memo.notes_remembered(result, archive, source, memo)
    else:
        result.merge(found)
