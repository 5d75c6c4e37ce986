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
from exporters.archive.layout import batches
from exporters.archive.places import ADDRESS_BOOK, CARDS_DIR
from exporters.archive.reader import ArchiveReader
from exporters.archive.reuse import ItemCache, item_key
from exporters.ical.quick import read_block
from exporters.ical.reader import UnreadableEvent, stream_calendar, stream_calendar_items
from exporters.ical.writer import stamp_line
from exporters.markdown.reader import read_note
from exporters.vcard.reader import stream_vcards

DRILL_MEMO_VERSION = 1
MEMO_BATCH = 1000  # items looked up in the memo (and their misses parsed) at a time
PIECE_GROUPS = 100  # event groups handed to the reader at a time (~64 KiB)
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

    def begin(self, member: str) -> None:
        """Open `member`'s ledger: `key`, `known` and `remember` are about it until `end`."""
        self._key = memo_prefix("ledger") + hashlib.sha256(member.encode("utf-8", "surrogatepass")).hexdigest()
        found = self.cache.get_many([self._key]).get(self._key, b"")
        if len(found) < _PAIR_BYTES or len(found) % _PAIR_BYTES:  # none, or not what `end` writes
            found = bytes(_PAIR_BYTES)
        self._whole = found[:_PAIR_BYTES]
        self._proven = {found[i : i + _PAIR_BYTES] for i in range(_PAIR_BYTES, len(found), _PAIR_BYTES)}
        self._kept = []

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
        """Write the open ledger: the pairs proven in this drill, and `whole` if all its items were."""
        value = (whole or bytes(_PAIR_BYTES)) + b"".join(dict.fromkeys(self._kept))
        self.cache.put(self._key, value)
        self._kept = []


def memo_prefix(kind: str) -> str:
    """What every memo key of `kind` starts with."""
    return item_key(f"drilled-{kind}", "", reader_fingerprint())


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def split_cards(chunks: Iterable[bytes]) -> Iterator[bytes]:
    """Each card of an address book our writer made, as its bytes (`BEGIN:VCARD` ... `END:VCARD` CRLF)."""
    buffer = b""
    for chunk in chunks:
        buffer += chunk
        start = 0
        while (end := buffer.find(_END_CARD, start)) >= 0:
            card = buffer[start : end + len(_END_CARD)]
            if not card.startswith(_BEGIN_CARD) or card.count(b"\nBEGIN:VCARD") or (end and buffer[end - 1] != 10):
                raise Unsplittable("a card that is not one BEGIN:VCARD ... END:VCARD block")
            yield card
            start = end + len(_END_CARD)
        buffer = buffer[start:]
    if buffer:
        raise Unsplittable("bytes after the last card")


class CalendarSplit:
    """A calendar our writer made, cut into its header and its events' VEVENT groups, as a stream.

    `head` (the VCALENDAR's properties and VTIMEZONEs: what each event is read
    after) is known once `groups()` yielded its first group, or ended. The
    header, some of the groups and `END_CALENDAR` are a calendar the reader
    reads as it reads those events in the whole file.
    """

    def __init__(self, chunks: Iterable[bytes]) -> None:
        self._chunks = iter(chunks)
        self.head: bytes | None = None

    def _blocks(self) -> Iterator[bytes]:
        buffer = b""
        for chunk in self._chunks:
            buffer += chunk
            start = 0
            while True:
                if self.head is None:
                    begin = buffer.find(b"\r\n" + _BEGIN_EVENT)
                    if begin < 0:
                        break
                    self.head = buffer[: begin + 2]
                    start = begin + 2
                if not buffer.startswith(_BEGIN_EVENT, start):
                    break
                end = buffer.find(_END_EVENT, start)
                if end < 0:
                    break
                block = buffer[start : end + len(_END_EVENT)]
                if block.count(b"\nBEGIN:VEVENT\r\n"):
                    raise Unsplittable("a VEVENT that does not end before the next one")
                yield block
                start = end + len(_END_EVENT)
            buffer = buffer[start:]
        if self.head is None:
            self.head = buffer[: -len(END_CALENDAR)] if buffer.endswith(END_CALENDAR) else buffer
            return
        if buffer != END_CALENDAR:
            raise Unsplittable("a calendar that does not end with its last event")

    def groups(self) -> Iterator[bytes]:
        """Each event's VEVENTs (a series and the overrides that follow it: one UID), in order."""
        group: list[bytes] = []
        uid = b""
        for block in self._blocks():
            this = _uid_line(block)
            if group and this != uid:
                yield b"".join(group)
                group = []
            group.append(block)
            uid = this
        if group:
            yield b"".join(group)


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
    book = archive.manifest.meta["layout"].get("address_book", ADDRESS_BOOK)
    if book is None:
        return
    # Each contact's own card file is the same bytes as its card in the address book (the writer makes both
    # from one): their SHA-256s, verified against the files already, are compared with the cards read here.
    files = [f for f in archive.manifest.files if f.path.startswith(CARDS_DIR + "/")]
    members = hashlib.sha256()  # the address book and every card file, as the verified manifest gives them
    for file in (*(f for f in archive.manifest.files if f.path == book), *files):
        members.update(f"{file.path}\0{file.sha256}\n".encode("utf-8", "surrogatepass"))
    memo.begin(f"contacts:{book}")
    whole = memo.whole_key(members.hexdigest(), (v.digest for v in source.contact_versions()))
    if whole is not None and memo.recall_whole(whole[0]):
        result.items += whole[1]
        memo.skipped += whole[1]
        return
    proven, differences = memo.skipped + memo.remembered, result.differences
    triples = zip_longest(source.contact_versions(), split_cards(archive.member_chunks(book)), files)
    for batch in batches(triples, MEMO_BATCH):
        if any(v is None or card is None or file is None for v, card, file in batch):
            raise Unsplittable("as many cards and card files as contacts")
        digests = [sha256(card) for _, card, _ in batch]
        for (version, _, file), digest in zip(batch, digests, strict=True):
            if file.sha256 != digest:
                other = f"{file.path} holds other bytes"
                result.differ([Difference("contact", short(version.uid), "(card file)", "its card", other)])
        keys = [memo.key("card", digest, v.digest) for (v, _, _), digest in zip(batch, digests, strict=True)]
        known = memo.known(keys)
        missed = [(v, card, key) for (v, card, _), key in zip(batch, keys, strict=True) if key not in known]
        result.items += len(batch) - len(missed)
        memo.skipped += len(batch) - len(missed)
        if not missed:
            continue
        _cards_checked(result, memo, source, missed)
    memo.end(_proven_whole(whole, memo, proven, result, differences))


def _cards_checked(result: DrillResult, memo: DrillMemo, source: Any, missed: list[tuple[Any, bytes, bytes]]) -> None:
    """Read `missed` (version, card, key) back and compare; a card the reader refuses is named, the rest read on."""
    found = stream_vcards(card for _, card, _ in missed)  # a chunk per card: never the batch as one text
    read = 0
    try:
        for contact in found:
            if read == len(missed):
                raise Unsplittable("one contact per card")
            version, _, key = missed[read]
            read += 1
            _checked(result, memo, "contact", version, key, contact, source.contacts_by_key, contact_id)
    except InvalidInput:  # the card after the last one read: it and the ones after it are read one at a time
        for version, card, key in missed[read:]:
            alone = read_card_alone(card)
            if isinstance(alone, UnreadableCard):
                result.items += 1
                result.differ([unreadable("contact", short(version.uid), alone.problem)])
                continue
            _checked(result, memo, "contact", version, key, alone, source.contacts_by_key, contact_id)
        return
    if read != len(missed):
        raise Unsplittable("one contact per card")


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
    """One calendar: its header and the event groups not proven before, read as one stream.

    Why one stream: the header's VTIMEZONEs cost as much to parse as hundreds of
    events, so the misses of every batch follow one header (`pieces` decides them
    batch by batch as the reader asks for more, and queues what it sent in `sent`).
    The stream starts at the first group not proven before; a calendar with none
    is not read at all if its header was proven with the same info before (else
    the header alone is read, which does not parse its VTIMEZONEs).
    """
    line = stamp_line(archive.manifest.created_at)
    body = stamp_free_sha256(archive.member_chunks(name), line)
    versions = list(source.event_versions(calendar_key))  # read once: the whole member's key, then each group's
    memo.begin(f"calendar:{name}")
    whole = memo.whole_key(body, itertools.chain([record_digest(info)], (v.digest for v in versions)))  # header first
    if whole is not None and memo.recall_whole(whole[0]):
        result.items += whole[1]
        memo.skipped += whole[1]
        return
    proven, differences = memo.skipped + memo.remembered, result.differences
    _events_remembered(result, archive, source, memo, (calendar_key, info, versions), name, line)
    memo.end(_proven_whole(whole, memo, proven, result, differences))


def _proven_whole(
    whole: tuple[bytes, int] | None, memo: DrillMemo, proven: int, result: DrillResult, differences: int
) -> bytes | None:
    """`whole`'s digest if every one of its items was proven (skipped or remembered since `proven`)."""
    if whole is None or result.differences != differences:
        return None
    return whole[0] if memo.skipped + memo.remembered - proven == whole[1] else None


def _events_remembered(
    result: DrillResult,
    archive: ArchiveReader,
    source: Any,
    memo: DrillMemo,
    calendar: tuple[Any, Any, list[Any]],
    name: str,
    line: bytes,
) -> None:
    """`calendar_remembered` item by item; `calendar` is its key, info and event versions in order."""
    calendar_key, info, versions = calendar
    split = CalendarSplit(archive.member_chunks(name))
    sent: deque[tuple[Any, bytes]] = deque()  # (version, key) of each group handed to the reader, in order
    pending = batches(zip_longest(versions, split.groups()), MEMO_BATCH)

    def missed(batch: list[tuple[Any, bytes]]) -> list[tuple[Any, bytes, bytes]]:
        """The batch's groups not proven before, as (version, key, bytes); the others are counted here."""
        if any(v is None or group is None for v, group in batch):
            raise Unsplittable("as many event groups as events")
        keys = [memo.key("event", sha256(_stamp_free(group, line)), v.digest) for v, group in batch]
        known = memo.known(keys)
        hits = sum(key in known for key in keys)
        result.items += hits
        memo.skipped += hits
        return [(v, key, group) for (v, group), key in zip(batch, keys, strict=True) if key not in known]

    first: list[tuple[Any, bytes, bytes]] = []
    for batch in pending:
        first = missed(batch)
        if first:
            break
    assert split.head is not None  # the groups were read up to the first miss, or to the end
    head_key = memo.key("calendar", sha256(split.head), record_digest(info))
    if not first:
        result.items += 1
        if head_key in memo.known([head_key]):
            memo.skipped += 1
            return
        found_info, _ = stream_calendar([split.head, END_CALENDAR])
        _calendar_info(result, memo, head_key, info, found_info)
        return

    load = functools.partial(source.events_by_key, calendar_key)

    def pieces() -> Iterator[bytes]:
        """The header, then the missed groups the one-pass reader leaves to the stream (it checks the others)."""
        assert split.head is not None
        yield split.head
        todo = first
        while True:
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
            batch = next(pending, None)
            if batch is None:
                break
            todo = missed(batch)
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


def _calendar_info(result: DrillResult, memo: DrillMemo, key: bytes, info: Any, found: Any) -> None:
    if found == info:
        memo.remember(key)
    else:
        result.differ(differences_in("calendar", short(info.name), info, found))


def stamp_free_sha256(chunks: Iterable[bytes], line: bytes) -> str:
    """SHA-256 of a member's bytes with its export time's DTSTAMP lines as a slot, streamed.

    The same bytes `bytes.replace(line, slot)` of the whole member gives (left to
    right, never overlapping); a line cut between two chunks is caught by keeping
    the last `len(line) - 1` bytes back for the next.
    """
    digest = hashlib.sha256()
    rest = b""
    for chunk in chunks:
        data = rest + chunk
        done = 0
        while (at := data.find(line, done)) >= 0:
            digest.update(data[done:at])
            digest.update(_SLOT)
            done = at + len(line)
        keep = max(done, len(data) - len(line) + 1)
        digest.update(data[done:keep])
        rest = data[keep:]
    digest.update(rest)
    return digest.hexdigest()


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
