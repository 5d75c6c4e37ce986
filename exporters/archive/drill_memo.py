"""What earlier fidelity drills proved, so a repeat export parses only what changed (issue 16).

Why it is sound: our readers are deterministic functions of the bytes they read,
and the drill compares what they give with a record whose content version
(`account.versions.record_digest`) it knows. So "these exact bytes read back as
the record of that version" stays true for as long as the readers are the same
code: a key is the SHA-256 of the item's bytes, the record's version and a
fingerprint of the readers (`reader_fingerprint`: their source, the record rules
and the parsing libraries' versions). Only items that read back equal are kept;
an item whose bytes or record changed has another key and is parsed again.

What an item's bytes are:

- a contact: its card in the address book (`BEGIN:VCARD` to `END:VCARD`);
- an event: its VEVENTs (the series and its RECURRENCE-ID overrides, which the
  writer puts together), parsed after the calendar's header and VTIMEZONEs, the
  context they are read in. An event that says nowhere when it changed carries
  the export time in DTSTAMP, which the reader does not read: those lines stand
  as a slot in the key (`exporters.ical.writer.stamp_template`), as in the cache;
- a note without attachments: its `.md` file (SHA-256 from the verified
  manifest). Notes with attachments are always read.

The memo lives in the user's export cache (`exporters.archive.reuse.ItemCache`,
`jobs.export_cache`), so it is pruned with what the user's exports use, and is
an optimisation only: no cache means every item is parsed.

Splitting the archive's members into those items is done on bytes; anything
not laid out as our writers lay it out (a count that does not match, a card or
an event block that does not close) raises `Unsplittable`, and the drill then
reads that kind in full.
"""

from __future__ import annotations

import functools
import hashlib
import importlib.metadata
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path

from exporters.archive.reuse import ItemCache, item_key

DRILL_MEMO_VERSION = 1
CLEAN = b"1"
_BEGIN_CARD, _END_CARD = b"BEGIN:VCARD\r\n", b"END:VCARD\r\n"
_BEGIN_EVENT, _END_EVENT = b"BEGIN:VEVENT\r\n", b"\r\nEND:VEVENT\r\n"
END_CALENDAR = b"END:VCALENDAR\r\n"
_UID = b"\r\nUID:"


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
    """Keys of items that read back equal to their record, kept in the user's item cache."""

    def __init__(self, cache: ItemCache) -> None:
        self.cache = cache
        self.skipped = 0  # items not parsed: their bytes were proven against the same record before

    def key(self, kind: str, item_sha256: str, record_digest: str | None) -> str:
        """ "" when the record has no version (nothing to vouch for it)."""
        if record_digest is None:
            return ""
        pair = hashlib.sha256(f"{item_sha256}:{record_digest}".encode()).hexdigest()
        return item_key(f"drilled-{kind}", pair, reader_fingerprint())

    def known(self, keys: Sequence[str]) -> set[str]:
        wanted = [k for k in keys if k]
        return set(self.cache.get_many(wanted)) if wanted else set()

    def remember(self, key: str) -> None:
        if key:
            self.cache.put(key, CLEAN)


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
