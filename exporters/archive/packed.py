"""Zip members compressed ahead of the zip: written to a plain file now, copied into the archive later.

Why: a big export uses two processes (`jobs.export_split`). The second one
serialises the calendars while the first writes the contacts, but the archive's
order is contacts, calendars, notes, and every member's bytes are the zip's own.
So each process packs what the zip cannot take yet into a file of its own:
every member's raw-DEFLATE stream exactly as `zipfile` would write it (the same
compressor, level and writes), with its CRC-32, size and SHA-256 counted on
the way. The archive writer then copies those bytes as they are
(`exporters.archive.writer.RawEntry`): no member is compressed twice, and the
archive is the same bytes as one process writes (tests/formats/test_export_split.py).

Why one file and an index rather than a file per member: a calendar is one
member, but the notes are thousands; one file read in order is one open and a
sequential read.
"""

from __future__ import annotations

import hashlib
import zlib
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import astuple, dataclass
from typing import IO, Any

from exporters.archive.writer import Entry, RawEntry

CHUNK = 1 << 18  # compressed bytes handed to the zip writer at a time
_LEVEL = zlib.Z_DEFAULT_COMPRESSION  # what zipfile's ZIP_DEFLATED uses


@dataclass(frozen=True)
class PackedMember:
    """One member in a packed file: where its compressed bytes are, and what they stand for."""

    path: str
    offset: int  # of its compressed bytes in the packed file
    compressed: int  # their length
    size: int  # of the plain bytes
    crc: int  # CRC-32 of the plain bytes
    sha256: str  # of the plain bytes

    def to_json(self) -> list[Any]:
        return list(astuple(self))

    @classmethod
    def from_json(cls, row: Sequence[Any]) -> PackedMember:
        path, offset, compressed, size, crc, sha256 = row
        return cls(str(path), int(offset), int(compressed), int(size), int(crc), str(sha256))


def pack_entries(entries: Iterable[Entry], out: IO[bytes]) -> Iterator[PackedMember]:
    """Compress each entry into `out` (from where it stands) as `zipfile` would; yield where each went.

    Each chunk goes to its own `compress` call, as `zipfile` hands each write to
    its compressor, so the stream is the one the zip writer would have made.
    """
    offset = out.tell()
    for entry in entries:
        compressor = zlib.compressobj(_LEVEL, zlib.DEFLATED, -zlib.MAX_WBITS)
        digest = hashlib.sha256()
        crc = size = written = 0
        for chunk in [entry.chunks] if isinstance(entry.chunks, bytes) else entry.chunks:
            digest.update(chunk)
            crc = zlib.crc32(chunk, crc)
            size += len(chunk)
            data = compressor.compress(chunk)
            out.write(data)
            written += len(data)
        data = compressor.flush()
        out.write(data)
        written += len(data)
        yield PackedMember(entry.path, offset, written, size, crc, digest.hexdigest())
        offset += written


def raw_entries(members: Iterable[PackedMember], packed: IO[bytes]) -> Iterator[RawEntry]:
    """The members of the packed file `packed` as entries the archive writer copies without compressing."""
    for member in members:
        yield RawEntry(member.path, member.crc, member.size, member.sha256, _read(packed, member))


def _read(packed: IO[bytes], member: PackedMember) -> Iterator[bytes]:
    packed.seek(member.offset)
    left = member.compressed
    while left:
        data = packed.read(min(CHUNK, left))
        if not data:
            raise EOFError(f"the packed file ends inside {member.path!r}")
        left -= len(data)
        yield data
