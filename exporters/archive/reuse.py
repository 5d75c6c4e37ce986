"""Reuse what an earlier export wrote for items whose content did not change (issue 15).

A periodic export of an account that changed by 1 % should cost about 1 % of
the work. The store gives each contact, event and note a content version
(`account.versions`); the bundle asks an `ItemCache` (given by `jobs`, kept on
disk per user) for the bytes it wrote for that version under the same options,
and serialises only the items it has nothing for.

What is kept per item, and why:

- a contact: its vCard and the card as a raw-DEFLATE *segment* (see below).
  Contacts are most of an export's deflate work: every card is written twice
  (its own file and the address book), and photos make them large. Reusing the
  segment saves both deflates and, in the first export too, the address book's.
- an event: its VEVENT bytes. A calendar is one member of thousands of small
  events; compressed apart, each would lose the shared window (measured at 0.1x
  HEAVY: 54 KB as one stream, 540 KB as per-event segments, 105 KB as runs of
  32), while deflating the whole calendar costs little (12 ms for 1.5 MB).
- a note: its Markdown bytes (deflating them costs even less). Attachments are
  not kept: they are the user's own bytes, read from the store each time.

Why segments make the archive the same bytes either way: a segment is a fresh
raw-DEFLATE stream ended with a sync flush, so it ends on a byte boundary
holding no state from before; segments joined and closed with an empty final
block (`FINAL_BLOCK`) are one valid DEFLATE stream. Every card is compressed
like this whether it came from the cache or was serialised now, so a card's
member and the address book are the same bytes on both paths
(`exporters.archive.writer.DeflatedEntry` writes them).

Why the key holds a fingerprint of the writers: cached bytes are only right
while the code and libraries that produced them are the same. Rather than trust
someone to bump a number on every writer change, the key includes a digest of
the exporters' own source files, the versions of the libraries they call, and
the zlib and Unicode versions the bytes depend on.
"""

from __future__ import annotations

import functools
import hashlib
import importlib.metadata
import struct
import sys
import unicodedata
import zlib
from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol, TypeVar

from account.records import Contact, Event, Note
from account.versions import ContactVersion, EventVersion, NoteVersion

K = TypeVar("K", contravariant=True)  # a calendar key: only passed in
CACHE_FORMAT = 1  # bump when what an entry holds changes
FINAL_BLOCK = b"\x03\x00"  # an empty final fixed-Huffman block: what zlib's finish writes after a flush
_LEVEL = zlib.Z_DEFAULT_COMPRESSION  # what zipfile's ZIP_DEFLATED uses
_CARD_HEAD = struct.Struct("<I")


class ItemCache(Protocol):
    """Bytes by key, kept between exports of one user; an optimisation only.

    `get_many` returns only entries it can vouch for (a damaged one is dropped and
    left out, so the item is serialised again); `put` may keep or forget. A `group`
    names an entry that holds this one's bytes too (an event's run): a cache that
    drops what an export did not read keeps an entry whose group was read, since
    the run's events are wanted one by one again as soon as one of them changes;
    `regroup` moves stored entries into another group. `touch` says that keys
    were used without reading them (the events of a run that was read): an
    event's group names only the last run it joined, and an edit undone makes
    an earlier run the one read again. A cache may consume `keys` lazily, or
    not at all when it keeps no list of what a run used.
    """

    def get_many(self, keys: Sequence[str]) -> Mapping[str, bytes]: ...
    def put(self, key: str, value: bytes, group: str = "") -> None: ...
    def regroup(self, keys: Sequence[str], group: str) -> None: ...
    def touch(self, keys: Iterable[str]) -> None: ...


class VersionedSource(Protocol[K]):
    """What a source offers beyond `layout.AccountSource` for reuse: versions first, records on demand."""

    def contact_versions(self) -> Iterable[ContactVersion]: ...
    def contacts_by_key(self, keys: Collection[int]) -> Mapping[int, Contact]: ...
    def event_versions(self, calendar_key: K) -> Iterable[EventVersion]: ...
    def events_by_key(self, calendar_key: K, keys: Collection[int]) -> Mapping[int, Event]: ...
    def note_versions(self) -> Iterable[NoteVersion]: ...
    def notes_by_key(self, keys: Collection[int]) -> Mapping[int, Note]: ...


@dataclass
class ReuseStats:
    """Items whose bytes came from the cache (hits) or were serialised now (misses), per kind."""

    hits: dict[str, int] = field(default_factory=lambda: {"contacts": 0, "events": 0, "notes": 0})
    misses: dict[str, int] = field(default_factory=lambda: {"contacts": 0, "events": 0, "notes": 0})

    def as_dict(self) -> dict[str, dict[str, int]]:
        return {"hits": dict(self.hits), "misses": dict(self.misses)}


def deflate_segment(data: bytes) -> bytes:
    """`data` as a self-contained raw-DEFLATE segment ending on a byte boundary (see the module docstring)."""
    compressor = zlib.compressobj(_LEVEL, zlib.DEFLATED, -zlib.MAX_WBITS)
    return compressor.compress(data) + compressor.flush(zlib.Z_SYNC_FLUSH)


def pack_card(card: bytes, segment: bytes) -> bytes:
    return _CARD_HEAD.pack(len(card)) + card + segment


def unpack_card(value: bytes) -> tuple[bytes, bytes] | None:
    """(card, segment) from a cache value; None if it is not one (the caller serialises again)."""
    if len(value) < _CARD_HEAD.size:
        return None
    (size,) = _CARD_HEAD.unpack_from(value)
    end = _CARD_HEAD.size + size
    if end > len(value):
        return None
    return value[_CARD_HEAD.size : end], value[end:]


def item_key(kind: str, digest: str, *options: str) -> str:
    """The cache key of an item's bytes: its content version under these options and these writers."""
    return _key_prefix(kind, options) + digest


@functools.lru_cache(maxsize=64)
def _key_prefix(kind: str, options: tuple[str, ...]) -> str:
    """What every key of `kind` under `options` starts with (one hash per kind, not per item)."""
    text = "\x1f".join((writer_fingerprint(), kind, *options))
    return hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()[:32] + ":"


@functools.cache
def writer_fingerprint() -> str:
    """A digest of everything the cached bytes depend on besides the item and the options."""
    digest = hashlib.sha256(f"lifeboat-item-cache-{CACHE_FORMAT}".encode())
    exporters = Path(__file__).resolve().parent.parent
    for root in (exporters, exporters.parent / "account"):  # the writers and the record rules they call
        for path in sorted(root.rglob("*.py")):
            digest.update(str(path.relative_to(root.parent)).encode())
            digest.update(path.read_bytes())
    for library in ("vobject", "icalendar", "tzdata"):
        try:
            version = importlib.metadata.version(library)
        except importlib.metadata.PackageNotFoundError:
            version = "absent"
        digest.update(f"{library}={version}".encode())
    runtime = (sys.version_info[:2], zlib.ZLIB_RUNTIME_VERSION, unicodedata.unidata_version)
    digest.update(repr(runtime).encode())
    return digest.hexdigest()
