"""What earlier fidelity drills proved, so a repeat export parses only what changed (issue 16).

Why it is sound: our readers are deterministic functions of the bytes they read,
and the drill compares what they give with a record whose content version
(`account.versions.record_digest`) it knows. So "these exact bytes read back as
the record of that version" stays true for as long as the readers are the same
code: an item's proof is the SHA-256 of its kind, the SHA-256 of its bytes and
the record's version, kept in a ledger whose key holds a fingerprint of the
readers (`reader_fingerprint`: their source, the record rules and the parsing
libraries' versions). Only items that read back equal are kept; an item whose
bytes or record changed has another proof and is parsed again.

What an item's bytes are:

- a contact: its card in the address book (`BEGIN:VCARD` to `END:VCARD`);
- an event: its VEVENTs (the series and its RECURRENCE-ID overrides, which the
  writer puts together), parsed after the calendar's header and VTIMEZONEs, the
  context they are read in. An event that says nowhere when it changed carries
  the export time in DTSTAMP, which the reader does not read: those lines stand
  as a slot in the key (`exporters.ical.writer.stamp_template`), as in the cache;
- a note without attachments: its `.md` file (SHA-256 from the verified
  manifest). Notes with attachments are always read.

A whole member is remembered too, once every item in it was proven: the address
book by its and its card files' SHA-256s from the verified manifest, a calendar
by the SHA-256 of its bytes with the DTSTAMP lines as slots (`stamp_free_sha256`),
each with the versions of all its records in order. A repeat in which nothing
of it changed then reads no item of it, nor splits it: at 1x HEAVY the drill of
a repeat with nothing changed went from 0.98 to 0.32 s CPU (`bench/fidelity_drill.py`,
docs/performance.md).

Each member (the address book, a calendar, the notes) has one ledger entry
(`DrillMemo.begin` ... `end`): the whole member's digest and every proof of its
items, read once and written once per drill. See `DrillMemo` for why not one
entry per item.

The memo lives in the user's export cache (`exporters.archive.reuse.ItemCache`,
`jobs.export_cache`), so it is pruned with what the user's exports use, and is
an optimisation only: no cache means every item is parsed.

The drill's steps with the memo are here too (`contacts_remembered`,
`calendars_remembered`, `notes_remembered`). Splitting the archive's members
into those items is done on bytes; anything
not laid out as our writers lay it out (a count that does not match, a card or
an event block that does not close) raises `Unsplittable`, and the drill then
reads that kind in full.
"""

from __future__ import annotations

import functools
import hashlib
import importlib.metadata
import itertools
import struct
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from itertools import zip_longest
from pathlib import Path
from typing import Any

from account.records import Contact
from account.versions import record_digest
from errors import InvalidInput
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
from exporters.archive.layout import RUN_TARGET, batches, event_runs
from exporters.archive.places import ADDRESS_BOOK, CARDS_DIR
from exporters.archive.reader import ArchiveReader
from exporters.archive.reuse import ItemCache, item_key
from exporters.ical.quick import read_block
from exporters.ical.reader import UnreadableEvent, stream_calendar, stream_calendar_items
from exporters.ical.writer import stamp_line
from exporters.markdown.reader import read_note
from exporters.vcard.reader import read_card, stream_vcards

DRILL_MEMO_VERSION = 1
MEMO_BATCH = 1000  # items looked up in the memo (and their misses parsed) at a time
PIECE_GROUPS = 100  # event groups handed to the reader at a time (~64 KiB)
_COMPACT_AT = 1 << 20  # bytes read before a calendar's buffer drops them
_PAIR_BYTES = 32  # a SHA-256: of a whole member and its versions, or of an item's bytes and its version
_BEGIN_CARD, _END_CARD = b"BEGIN:VCARD\r\n", b"END:VCARD\r\n"
_BEGIN_EVENT, _END_EVENT = b"BEGIN:VEVENT\r\n", b"\r\nEND:VEVENT\r\n"
END_CALENDAR = b"END:VCALENDAR\r\n"
_UID = b"\r\nUID:"
_SLOT = b"\r\nDTSTAMP:\x00\r\n"  # where the export time stood (the reader does not read DTSTAMP)


class Unsplittable(Exception):
    """A member is not laid out as our writers lay it out: read that kind in full instead."""


@functools.cache
def reader_fingerprint() -> str:
    """A digest of everything a read-back depends on besides the bytes: our readers and their libraries."""
    digest = hashlib.sha256(f"lifeboat-drill-memo-{DRILL_MEMO_VERSION}".encode())
    exporters = Path(__file__).resolve().parent.parent
    for root in (exporters, exporters.parent / "account"):
        for path in sorted(root.rglob("*.py")):
            digest.update(str(path.relative_to(root.parent)).encode())
            digest.update(path.read_bytes())
    for library in ("vobject", "icalendar", "PyYAML", "tzdata"):
        try:
            version = importlib.metadata.version(library)
        except importlib.metadata.PackageNotFoundError:
            version = "absent"
        digest.update(f"{library}={version}".encode())
    return digest.hexdigest()


class DrillMemo:
    """What earlier drills proved, one ledger per member in the user's item cache.

    A ledger (`begin` ... `end`) holds the pairs (an item's bytes, its record's
    version) that read back equal, and the digest of the whole member if every
    item in it did. Why one entry per member rather than one per item: a first
    export wrote 65,000 one-byte rows at 1x HEAVY and a repeat looked them up in
    SQL batches; a ledger is one read and at most one write per member, and its
    look-ups are a set's. Its key is fixed (the member's path), so every export
    reads it and the cache's prune (`jobs.export_cache`) keeps it.
    """

    def __init__(self, cache: ItemCache) -> None:
        self.cache = cache
        self.skipped = 0  # items not parsed: their bytes were proven against the same record before
        self.remembered = 0  # items proven and remembered by this drill
        self._key = ""
        self._whole = b""  # the whole member's digest as the ledger has it (zeros: not all proven)
        self._proven: set[bytes] = set()
        self._kept: list[bytes] = []
        self._spans_key = ""
        self._spans: dict[bytes, Span] = {}
        self._kept_spans: dict[bytes, Span] = {}

    def begin(self, member: str) -> None:
        """Open `member`'s ledger: `key`, `known`, `remember` and the spans are about it until `end`."""
        named = hashlib.sha256(member.encode("utf-8", "surrogatepass")).hexdigest()
        self._key, self._spans_key = memo_prefix("ledger") + named, memo_prefix("spans") + named
        stored = self.cache.get_many([self._key, self._spans_key])
        found = stored.get(self._key, b"")
        if len(found) < _PAIR_BYTES or len(found) % _PAIR_BYTES:  # none, or not what `end` writes
            found = bytes(_PAIR_BYTES)
        self._whole = found[:_PAIR_BYTES]
        self._proven = {found[i : i + _PAIR_BYTES] for i in range(_PAIR_BYTES, len(found), _PAIR_BYTES)}
        self._spans = Span.unpack_all(stored.get(self._spans_key, b""))
        for span in self._spans.values():
            self._proven.update(span.items)
        self._kept = []
        self._kept_spans = {}

    def span(self, run_key: bytes) -> Span | None:
        """The span proven before for a run of events of these versions (`span_key`), if any."""
        return self._spans.get(run_key) if run_key else None

    def keep_span(self, run_key: bytes, span: Span) -> None:
        """`span` holds again (its bytes matched) or was proven item by item in this drill: keep it."""
        self._kept_spans[run_key] = span

    def kept(self) -> set[bytes]:
        """The items' proofs this drill kept so far (found or remembered)."""
        return set(self._kept)

    def key(self, kind: str, item_sha256: str, record_digest: str | None) -> bytes:
        """The pair of an item's bytes read back as a record of `record_digest`; b"" without a version."""
        if record_digest is None:
            return b""
        return hashlib.sha256(f"{kind}:{item_sha256}:{record_digest}".encode()).digest()

    def known(self, keys: Sequence[bytes]) -> set[bytes]:
        """Those of `keys` proven before (kept in the ledger this drill writes)."""
        hits = {k for k in keys if k and k in self._proven}
        self._kept.extend(hits)
        return hits

    def known_one(self, key: bytes) -> bool:
        """`known` of one key."""
        if key and key in self._proven:
            self._kept.append(key)
            return True
        return False

    def remember(self, key: bytes) -> None:
        if key:
            self._kept.append(key)
            self.remembered += 1

    def whole_key(self, member_sha256: str, versions: Iterable[str | None]) -> tuple[bytes, int] | None:
        """The digest of a member whose bytes are `member_sha256`, read as records of `versions` in order,
        and how many items that is.

        None if any version is unknown (such an item is never remembered, so neither is its member).
        """
        digest = hashlib.sha256(f"{member_sha256}:".encode())
        count = 0
        for version in versions:
            if version is None:
                return None
            digest.update(version.encode())
            count += 1
        return digest.digest(), count

    def recall_whole(self, whole: bytes) -> bool:
        """Whether the open ledger's member was proven whole before, as these bytes and versions."""
        return self._whole == whole

    def end(self, whole: bytes | None) -> None:
        """Write the open ledger: the pairs proven in this drill, and `whole` if all its items were;
        and the spans kept, whose items' pairs they hold (so the pairs are not written twice)."""
        spanned = {item for span in self._kept_spans.values() for item in span.items}
        pairs = (key for key in dict.fromkeys(self._kept) if key not in spanned)
        self.cache.put(self._key, (whole or bytes(_PAIR_BYTES)) + b"".join(pairs))
        if self._kept_spans or self._spans:
            self.cache.put(self._spans_key, b"".join(span.pack(k) for k, span in self._kept_spans.items()))
        self._kept, self._kept_spans = [], {}


@dataclass(frozen=True)
class Span:
    """A run of a calendar's event groups or of an address book's cards proven before, as one piece of bytes
    (see `calendar_remembered`).

    `length` bytes from the run's first group on, whose SHA-256 with the export time's DTSTAMP
    lines as slots is `sha256`, read back as the run's records; `items` are their groups' proofs,
    kept with the span so that a later edit of one event still finds the others proven.
    """

    length: int
    sha256: bytes
    items: tuple[bytes, ...]

    _HEAD = struct.Struct("<32sQ32sI")  # run key, length, SHA-256, number of items

    def pack(self, run_key: bytes) -> bytes:
        return self._HEAD.pack(run_key, self.length, self.sha256, len(self.items)) + b"".join(self.items)

    @classmethod
    def unpack_all(cls, value: bytes) -> dict[bytes, Span]:
        """The spans `pack` wrote one after the other; nothing from a value cut short or of another shape."""
        spans: dict[bytes, Span] = {}
        at = 0
        while at < len(value):
            if at + cls._HEAD.size > len(value):
                return {}
            run_key, length, digest, count = cls._HEAD.unpack_from(value, at)
            at += cls._HEAD.size
            end = at + _PAIR_BYTES * count
            if end > len(value):
                return {}
            items = tuple(value[i : i + _PAIR_BYTES] for i in range(at, end, _PAIR_BYTES))
            spans[run_key] = cls(length, digest, items)
            at = end
        return spans


def span_key(run: Sequence[Any], also: Sequence[str] = ()) -> bytes:
    """What a run of items (`layout.event_runs`) is known by: their versions in order (and `also`, in order);
    b"" if one has none."""
    digests = [v.digest for v in run]
    if any(d is None for d in digests):
        return b""
    return hashlib.sha256((" ".join(digests) + "\n" + " ".join(also)).encode()).digest()


def memo_prefix(kind: str) -> str:
    """What every memo key of `kind` starts with."""
    return item_key(f"drilled-{kind}", "", reader_fingerprint())


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


class _MemberCursor:
    """A member's bytes read from the front, whole pieces at a time (`peek`, `skip`) or item by item."""

    def __init__(self, chunks: Iterable[bytes]) -> None:
        self._chunks = iter(chunks)
        self._buffer = bytearray()
        self._at = 0  # where the unread bytes start in `_buffer`

    def _more(self) -> bool:
        chunk = next(self._chunks, None)
        if chunk is None:
            return False
        self._buffer += chunk
        return True

    def _compact(self) -> None:
        if self._at >= _COMPACT_AT:  # what was read goes, now and then: memory stays at a chunk or two
            del self._buffer[: self._at]
            self._at = 0

    def peek(self, size: int) -> bytes | None:
        """The next `size` bytes, not taken; None if fewer are left."""
        self._compact()
        while len(self._buffer) - self._at < size:
            if not self._more():
                return None
        return bytes(self._buffer[self._at : self._at + size])

    def skip(self, size: int) -> None:
        self._at += size

    def _left_is(self, tail: bytes) -> bool:
        """Whether exactly `tail` is left."""
        while len(self._buffer) - self._at <= len(tail) and self._more():
            pass
        return self._buffer[self._at :] == tail


class CardCursor(_MemberCursor):
    """An address book our writer made: card by card (`card`), or runs of cards whole (`peek`, `skip`)."""

    def card(self) -> bytes | None:
        """The next card (`BEGIN:VCARD` ... `END:VCARD` CRLF); None after the last."""
        self._compact()
        if self.peek(1) is None:
            return None
        while (end := self._buffer.find(_END_CARD, self._at)) < 0:
            if not self._more():
                raise Unsplittable("bytes after the last card")
        at = self._at
        if (
            not self._buffer.startswith(_BEGIN_CARD, at)
            or self._buffer.count(b"\nBEGIN:VCARD", at, end)
            or (end and self._buffer[end - 1] != 10)
        ):
            raise Unsplittable("a card that is not one BEGIN:VCARD ... END:VCARD block")
        self._at = end + len(_END_CARD)
        return bytes(self._buffer[at : self._at])

    def finish(self) -> None:
        if not self._left_is(b""):
            raise Unsplittable("bytes after the last card")


def split_cards(chunks: Iterable[bytes]) -> Iterator[bytes]:
    """Each card of an address book our writer made, as its bytes (`BEGIN:VCARD` ... `END:VCARD` CRLF)."""
    cursor = CardCursor(chunks)
    while (card := cursor.card()) is not None:
        yield card
    cursor.finish()


class CalendarSplit(_MemberCursor):
    """A calendar our writer made, read from the front: its header, then its events' VEVENT groups or spans.

    `head` (the VCALENDAR's properties and VTIMEZONEs: what each event is read
    after) is known once `read_head` ran (`groups` runs it). The header, some of
    the groups and `END_CALENDAR` are a calendar the reader reads as it reads
    those events in the whole file. `peek` and `skip` take bytes whole (a span
    proven before, `calendar_remembered`), `group` the next event's VEVENTs.
    """

    def __init__(self, chunks: Iterable[bytes]) -> None:
        super().__init__(chunks)
        self._events = True  # until `read_head` found none
        self.head: bytes | None = None

    def read_head(self) -> bytes:
        """The bytes before the first VEVENT (all but `END_CALENDAR` if it has none)."""
        if self.head is None:
            while (begin := self._buffer.find(b"\r\n" + _BEGIN_EVENT)) < 0:
                if not self._more():
                    data = bytes(self._buffer)
                    self.head = data[: -len(END_CALENDAR)] if data.endswith(END_CALENDAR) else data
                    self._at, self._events = len(self._buffer), False
                    return self.head
            self.head = bytes(self._buffer[: begin + 2])
            self._at = begin + 2
        return self.head

    def _block_end(self, start: int) -> int | None:
        """Where the VEVENT at `start` ends; None if no VEVENT starts there."""
        while len(self._buffer) < start + len(_BEGIN_EVENT):
            if not self._more():
                return None
        if not self._buffer.startswith(_BEGIN_EVENT, start):
            return None
        while (end := self._buffer.find(_END_EVENT, start)) < 0:
            if not self._more():
                raise Unsplittable("a VEVENT that does not end")
        end += len(_END_EVENT)
        if self._buffer.count(b"\nBEGIN:VEVENT\r\n", start, end):
            raise Unsplittable("a VEVENT that does not end before the next one")
        return end

    def group(self) -> bytes | None:
        """The next event's VEVENTs (a series and the overrides that follow it: one UID); None after the last."""
        self._compact()
        end = self._block_end(self._at)
        if end is None:
            return None
        uid = _uid_line(bytes(self._buffer[self._at : end]))
        while (following := self._block_end(end)) is not None and _uid_line(bytes(self._buffer[end:following])) == uid:
            end = following
        group = bytes(self._buffer[self._at : end])
        self._at = end
        return group

    def finish(self) -> None:
        """Check that only `END_CALENDAR` is left."""
        if not self._left_is(END_CALENDAR):
            raise Unsplittable("a calendar that does not end with its last event")

    def groups(self) -> Iterator[bytes]:
        """Each event's VEVENTs, in order, after the header; then the end is checked."""
        self.read_head()
        if not self._events:
            return  # no VEVENT at all: the header was everything
        while (group := self.group()) is not None:
            yield group
        self.finish()


def _uid_line(block: bytes) -> bytes:
    """The UID property's raw text (folds and all: the writer folds the same value the same way)."""
    at = block.find(_UID)
    if at < 0:
        raise Unsplittable("a VEVENT without UID")
    end = at + len(_UID)
    while True:
        end = block.find(b"\r\n", end)
        if end < 0 or block[end + 2 : end + 3] not in (b" ", b"\t"):
            return block[at:end]
        end += 2


# --- the drill's steps with the memo: split members into items, parse only those not proven before ---


def contacts_remembered(result: DrillResult, archive: ArchiveReader, source: Any, memo: DrillMemo) -> None:
    """The address book: whole if proven before as these bytes; else runs of cards proven before as spans
    (as `calendar_remembered` takes events), the rest card by card; only cards not proven before are parsed."""
    book = archive.manifest.meta["layout"].get("address_book", ADDRESS_BOOK)
    if book is None:
        return
    # Each contact's own card file is the same bytes as its card in the address book (the writer makes both
    # from one): their SHA-256s, verified against the files already, are compared with the cards read here.
    files, books = [], []
    for file in archive.manifest.files:
        if file.path.startswith(CARDS_DIR + "/"):
            files.append(file)
        elif file.path == book:
            books.append(file)
    members = hashlib.sha256()  # the address book and every card file, as the verified manifest gives them
    for file in (*books, *files):
        members.update(f"{file.path}\0{file.sha256}\n".encode("utf-8", "surrogatepass"))
    versions = list(source.contact_versions())
    memo.begin(f"contacts:{book}")
    whole = memo.whole_key(members.hexdigest(), (v.digest for v in versions))
    if whole is not None and memo.recall_whole(whole[0]):
        result.items += whole[1]
        memo.skipped += whole[1]
        return
    if len(files) != len(versions):
        raise Unsplittable("as many cards and card files as contacts")
    proven, differences = memo.skipped + memo.remembered, result.differences
    cursor = CardCursor(archive.member_chunks(book))
    opened: list[_OpenRun] = []
    missed: list[tuple[Any, bytes, bytes]] = []
    done = 0
    for run in event_runs(versions):
        shown = files[done : done + len(run)]
        done += len(run)
        run_key = span_key(run, [file.sha256 for file in shown])  # the card files' bytes are part of the proof
        if _span_taken(result, memo, cursor, run_key, len(run), bytes):
            continue
        missed += _cards_missed(result, memo, cursor, list(zip(run, shown, strict=True)), run_key, opened)
        if len(missed) >= MEMO_BATCH:
            _cards_checked(result, memo, source, missed)
            missed = []
    if missed:
        _cards_checked(result, memo, source, missed)
    if cursor.card() is not None:
        raise Unsplittable("as many cards and card files as contacts")
    cursor.finish()
    _keep_proven_runs(memo, opened)
    memo.end(_proven_whole(whole, memo, proven, result, differences))


def _cards_missed(
    result: DrillResult,
    memo: DrillMemo,
    cursor: CardCursor,
    run: list[tuple[Any, Any]],
    run_key: bytes,
    opened: list[_OpenRun],
) -> list[tuple[Any, bytes, bytes]]:
    """A run of (version, card file) not proven as a span: its cards cut and compared with their files,
    the ones proven before counted, the others returned as (version, card, key)."""
    check, same = _RunCheck(), True
    misses: list[tuple[Any, bytes, bytes]] = []
    for version, file in run:
        card = cursor.card()
        if card is None:
            raise Unsplittable("as many cards and card files as contacts")
        hexdigest = sha256(card)
        if file.sha256 != hexdigest:
            same = False
            other = f"{file.path} holds other bytes"
            result.differ([Difference("contact", short(version.uid), "(card file)", "its card", other)])
        key = memo.key("card", hexdigest, version.digest)
        if not check.known(result, memo, card, card, key):
            misses.append((version, card, key))
    if same:
        check.open(run_key, opened)
    return misses


def _cards_checked(result: DrillResult, memo: DrillMemo, source: Any, missed: list[tuple[Any, bytes, bytes]]) -> None:
    """Read `missed` (version, card, key) back and compare; a card the reader refuses is named, the rest read on."""
    # All read before any is compared: a batch that is not one contact per card proves nothing here.
    read_back = list(cards_read_back([card for _, card, _ in missed]))
    for (version, _, key), found in zip(missed, read_back, strict=True):
        if isinstance(found, UnreadableCard):
            result.items += 1
            result.differ([unreadable("contact", short(version.uid), found.problem)])
            continue
        _checked(result, memo, "contact", version, key, found, source.contacts_by_key, contact_id)


def cards_read_back(cards: list[bytes]) -> Iterator[Contact | UnreadableCard]:
    """Each card read back, in order: straight from its bytes (`read_card`), else alone as a stream.

    `Unsplittable` if a card does not give one contact. A card read alone gives what the
    address book's stream gives for it (tests/formats/test_vcard_lean.py): the stream's
    state between cards is the line count, which only messages show, and a refused
    card's message was always the one it gets alone. Why one at a time rather than a
    list: a caller that compares each contact as it comes lets it die young (a list of
    1,000 read-back contacts was promoted and brought on full collections). Why not the
    batch as one stream any more: 1x HEAVY's 10,000 cards took 0.57 s CPU that way,
    against 0.44 s each straight from its bytes, 1.31x (1.24-1.33) in 5 interleaved
    rounds: `bench/vcard_read.py`'s "drill".
    """
    for card in cards:
        found = read_card(card)
        yield found if found is not None else read_card_alone(card)


@dataclass(frozen=True)
class UnreadableCard:
    """In place of a card our vCard reader refused: why."""

    problem: str


def read_card_alone(card: bytes) -> Contact | UnreadableCard:
    """One card read on its own (after the stream refused one); `Unsplittable` if it is not one contact."""
    try:
        (contact,) = stream_vcards([card])
    except InvalidInput as exc:
        return UnreadableCard(str(exc))
    except ValueError:  # not one contact in the card
        raise Unsplittable("one contact per card") from None
    return contact


def calendars_remembered(result: DrillResult, archive: ArchiveReader, source: Any, memo: DrillMemo) -> None:
    names = archive.manifest.meta["layout"]["calendars"]
    wanted = list(source.calendars())
    if len(wanted) != len(names):
        raise Unsplittable("as many calendars as the store holds")
    for (calendar_key, info), name in zip(wanted, names, strict=True):
        calendar_remembered(result, archive, source, memo, calendar_key, info, name)


def calendar_remembered(
    result: DrillResult, archive: ArchiveReader, source: Any, memo: DrillMemo, calendar_key: Any, info: Any, name: str
) -> None:
    """One calendar: its header, its runs of events proven before as spans, the rest group by group.

    Spans: the events are cut into the runs the writer caches them in
    (`layout.event_runs`: content-defined, so an edit changes one run), and a
    run whose events have the versions of a run proven before is a `Span`: its
    bytes are taken whole and hashed once. Why: cutting a calendar into its
    50,000 groups and hashing each was most of a 1x HEAVY repeat's drill when
    1 % had changed (py-spy). A run whose bytes differ is cut into groups, and
    only the groups not proven before are parsed; once all of a run's groups are
    proven, it is kept as a span for the next drill.

    The parsed groups go to the reader as one stream after the header, since the
    header's VTIMEZONEs cost as much to parse as hundreds of events (`pieces`
    decides them batch by batch as the reader asks for more, and queues what it
    sent in `sent`). A calendar with no group to parse is not read by the reader
    at all if its header was proven with the same info before (else the header
    alone is read, which does not parse its VTIMEZONEs).
    """
    line = stamp_line(archive.manifest.created_at)
    versions = list(source.event_versions(calendar_key))
    memo.begin(f"calendar:{name}")
    _events_remembered(result, archive, source, memo, (calendar_key, info, versions), name, line)
    memo.end(None)


def _proven_whole(
    whole: tuple[bytes, int] | None, memo: DrillMemo, proven: int, result: DrillResult, differences: int
) -> bytes | None:
    """`whole`'s digest if every one of its items was proven (skipped or remembered since `proven`)."""
    if whole is None or result.differences != differences:
        return None
    return whole[0] if memo.skipped + memo.remembered - proven == whole[1] else None


@dataclass(frozen=True)
class _OpenRun:
    """A run checked group by group in this drill: a span for the next one if all its groups are proven."""

    key: bytes
    length: int
    sha256: bytes  # of its stamp-free bytes
    items: bytes  # its groups' proofs, joined (half the memory of a tuple at 10x HEAVY)


def _events_remembered(
    result: DrillResult,
    archive: ArchiveReader,
    source: Any,
    memo: DrillMemo,
    calendar: tuple[Any, Any, list[Any]],
    name: str,
    line: bytes,
) -> None:
    """`calendar_remembered` span by span and group by group; `calendar` is its key, info and event versions."""
    calendar_key, info, versions = calendar
    split = CalendarSplit(archive.member_chunks(name))
    head = split.read_head()
    opened: list[_OpenRun] = []

    def missed_batches() -> Iterator[list[tuple[Any, bytes, bytes]]]:
        """The groups not proven before, as (version, key, bytes), a batch of runs at a time."""
        for runs in batches(event_runs(versions), MEMO_BATCH // RUN_TARGET):
            misses: list[tuple[Any, bytes, bytes]] = []
            for run in runs:
                run_key = span_key(run)
                if _span_taken(result, memo, split, run_key, len(run), lambda data: _stamp_free(data, line)):
                    continue
                misses += _run_missed(result, memo, split, run, run_key, line, opened)
            yield misses
        split.finish()  # a group left over is not the end either

    pending = missed_batches()
    first = next((batch for batch in pending if batch), [])
    head_key = memo.key("calendar", sha256(head), record_digest(info))
    if not first:  # every batch was read: the end is checked
        result.items += 1
        if head_key in memo.known([head_key]):
            memo.skipped += 1
        else:
            found_info, _ = stream_calendar([head, END_CALENDAR])
            _calendar_info(result, memo, head_key, info, found_info)
        _keep_proven_runs(memo, opened)
        return

    load = functools.partial(source.events_by_key, calendar_key)
    sent: deque[tuple[Any, bytes]] = deque()  # (version, key) of each group handed to the reader, in order

    def pieces() -> Iterator[bytes]:
        """The header, then the missed groups the one-pass reader leaves to the stream (it checks the others)."""
        yield head
        for todo in itertools.chain([first], pending):
            piece: list[bytes] = []  # groups handed on ~64 KiB at a time: the reader's cost per chunk is not small
            for version, key, group in todo:
                event = read_block(group)  # a series VEVENT as our writer lays it out: no stream needed
                if event is not None:
                    _checked(result, memo, "event", version, key, event, load, event_id)
                    continue
                sent.append((version, key))
                piece.append(group)
                if len(piece) >= PIECE_GROUPS:
                    yield b"".join(piece)
                    piece = []
            if piece:
                yield b"".join(piece)
        yield END_CALENDAR

    found_info, events = stream_calendar_items(pieces())
    result.items += 1
    _calendar_info(result, memo, head_key, info, found_info)
    for event in events:
        if not sent:
            raise Unsplittable("one event per group")
        version, key = sent.popleft()
        if isinstance(event, UnreadableEvent):  # named by its record; the events after it still compared
            result.items += 1
            result.differ([unreadable("event", event_id(load([version.key])[version.key]), event.problem)])
            continue
        _checked(result, memo, "event", version, key, event, load, event_id)
    if sent:
        raise Unsplittable("one event per group")
    _keep_proven_runs(memo, opened)


def _run_missed(
    result: DrillResult,
    memo: DrillMemo,
    split: CalendarSplit,
    run: list[Any],
    run_key: bytes,
    line: bytes,
    opened: list[_OpenRun],
) -> list[tuple[Any, bytes, bytes]]:
    """A run not proven as a span: its groups cut, the ones proven before counted, the others returned."""
    check = _RunCheck()
    misses: list[tuple[Any, bytes, bytes]] = []
    for version in run:
        group = split.group()
        if group is None:
            raise Unsplittable("as many event groups as events")
        free = _stamp_free(group, line)
        key = memo.key("event", sha256(free), version.digest)
        if not check.known(result, memo, group, free, key):
            misses.append((version, key, group))
    check.open(run_key, opened)
    return misses


def _span_taken(
    result: DrillResult,
    memo: DrillMemo,
    cursor: _MemberCursor,
    run_key: bytes,
    count: int,
    hashed: Callable[[bytes], bytes],
) -> bool:
    """Take the run's bytes whole if they are a span proven before (its `count` items counted as proven)."""
    span = memo.span(run_key)
    if span is None:
        return False
    data = cursor.peek(span.length)
    if data is None or hashlib.sha256(hashed(data)).digest() != span.sha256:
        return False
    cursor.skip(span.length)
    memo.keep_span(run_key, span)
    memo.skipped += count
    result.items += count
    return True


class _RunCheck:
    """A run cut item by item: its length, the SHA-256 of its bytes as hashed, its items' proofs."""

    def __init__(self) -> None:
        self.length = 0
        self.digest = hashlib.sha256()
        self.items: list[bytes] = []

    def known(self, result: DrillResult, memo: DrillMemo, data: bytes, hashed: bytes, key: bytes) -> bool:
        """Add one item (`data` as read, `hashed` as the span hashes it); whether it was proven before (counted)."""
        self.length += len(data)
        self.digest.update(hashed)
        self.items.append(key)
        if memo.known_one(key):
            memo.skipped += 1
            result.items += 1
            return True
        return False

    def open(self, run_key: bytes, opened: list[_OpenRun]) -> None:
        """Note the run as a span to keep if all its items end up proven (`_keep_proven_runs`)."""
        if run_key and all(self.items):
            opened.append(_OpenRun(run_key, self.length, self.digest.digest(), b"".join(self.items)))


def _keep_proven_runs(memo: DrillMemo, opened: list[_OpenRun]) -> None:
    """Each run checked group by group whose groups are all proven now: a span for the next drill."""
    if not opened:
        return
    kept = memo.kept()
    for run in opened:
        items = tuple(run.items[i : i + _PAIR_BYTES] for i in range(0, len(run.items), _PAIR_BYTES))
        if all(item in kept for item in items):
            memo.keep_span(run.key, Span(run.length, run.sha256, items))


def _calendar_info(result: DrillResult, memo: DrillMemo, key: bytes, info: Any, found: Any) -> None:
    if found == info:
        memo.remember(key)
    else:
        result.differ(differences_in("calendar", short(info.name), info, found))


def _stamp_free(group: bytes, line: bytes) -> bytes:
    """The group's bytes with the export time's DTSTAMP lines as a slot (the reader does not read DTSTAMP)."""
    return group.replace(line, _SLOT)


def notes_remembered(result: DrillResult, archive: ArchiveReader, source: Any, memo: DrillMemo) -> None:
    paths = archive.manifest.meta["layout"]["notes"]
    wanted = set(paths)
    digests = {f.path: f.sha256 for f in archive.manifest.files if f.path in wanted}
    memo.begin("notes")
    pairs = zip_longest(source.note_versions(), paths)
    for batch in batches(pairs, MEMO_BATCH):
        if any(v is None or path is None for v, path in batch):
            raise Unsplittable("as many notes as the store holds")
        keys = [memo.key("note", digests[path], v.digest) if not v.attachments else b"" for v, path in batch]
        known = memo.known(keys)
        for (version, path), key in zip(batch, keys, strict=True):
            if key and key in known:
                result.items += 1
                memo.skipped += 1
                continue
            note = read_note(path, archive.open_member(path), archive.open_member)
            _checked(result, memo, "note", version, key, note, source.notes_by_key, note_id)
    memo.end(None)  # notes are not skipped whole: those with attachments are always read


def _one_each(pair: tuple[Any, Any], what: str) -> tuple[Any, Any]:
    if pair[0] is None or pair[1] is None:
        raise Unsplittable(what)
    return pair


def _checked(
    result: DrillResult,
    memo: DrillMemo,
    kind: str,
    version: Any,
    key: bytes,
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
        result.differ(differences_in(kind, name(record), record, got) or [whole_item(kind, name(record))])
