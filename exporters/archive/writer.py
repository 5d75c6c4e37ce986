"""Write a Lifeboat archive, entry by entry, into a binary file object the caller gives.

Why streaming: a large account can hold gigabytes of attachments, so every
entry is copied chunk by chunk into `ZipFile.open(name, "w")` while its SHA-256
and size are counted; memory stays flat whatever the archive size.

Why per-member records go to disk: a large account has 150,000 members, and
everything known per member (its path and hash for the manifest and SHA256SUMS,
its place in the zip, its name for clash checks) is kept in a `Spool` (a
private SQLite file in the scratch folder the caller names) while writing, and
`manifest.json` is written as a stream. Memory then stays flat whatever the
number of members.

Why no files are placed here: where the archive lives (a folder, a bucket),
fsyncing it, reading it back with `exporters.archive.reader.verify_archive` and
putting it under its final name without overwriting are the caller's
(`jobs.export` through `store.archive_files`). This module only turns records
into bytes.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import hashlib
import zipfile
import zlib
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

from exporters.archive.changes import SECTION as CHANGES
from exporters.archive.manifest import (
    CHECKSUMS_NAME,
    MANIFEST_NAME,
    README_NAME,
    RESERVED_NAMES,
    SIGNATURE_NAME,
    ArchiveError,
    Manifest,
    ManifestFile,
    checksums_chunks,
    manifest_from_meta,
    plain_meta,
)
from exporters.archive.paths import PathRegistry, collision_key
from exporters.archive.readme import readme_text
from exporters.archive.reuse import FINAL_BLOCK
from exporters.archive.spool import Spool, iter_rows
from exporters.archive.zipdir import spool_members

if TYPE_CHECKING:  # cryptography (~0.012 s CPU to import) is for the code that signs or checks alone
    from exporters.archive.signature import SigningKey

_RESERVED_KEYS = frozenset(collision_key(n) for n in RESERVED_NAMES)
# A member held whole in memory up to this size is put in at once (`_put_whole`); larger ones stream.
WHOLE_IN_MEMORY = 8 << 20


@dataclass(frozen=True)
class Entry:
    """One file of the archive: its path inside the zip and its content as chunks."""

    path: str
    chunks: Iterable[bytes]


@dataclass(frozen=True)
class DeflatedEntry:
    """A file whose content comes already compressed: (plain bytes, raw-DEFLATE segment) pairs.

    Each segment must be a raw-DEFLATE stream of its plain bytes ending on a byte
    boundary (`exporters.archive.reuse.deflate_segment`); the member is the
    segments joined and closed with an empty final block. zipfile still counts
    the CRC-32 and sizes from the plain bytes, and the SHA-256 is taken here as
    for any entry, so a wrong segment fails the read-back check, never silently.
    """

    path: str
    segments: Iterable[tuple[bytes, bytes]]


@dataclass(frozen=True)
class RawEntry:
    """A file whose whole raw-DEFLATE stream was made elsewhere (`exporters.archive.packed`): copied as is.

    `crc`, `size` and `sha256` are of the plain bytes, counted where they were
    compressed; the zip's read-back check inflates the member and compares its
    CRC-32 and SHA-256 again, so a wrong stream fails there, never silently.
    """

    path: str
    crc: int
    size: int
    sha256: str
    compressed: Iterable[bytes]


class _Segments:
    """Stands in for a member's zlib compressor: hands back the segment given for the next write.

    zipfile's `_ZipWriteFile.write` calls `_compressor.compress(plain)` and writes
    what it returns; `close` writes `_compressor.flush()`
    (tests/formats/test_zipfile_internals.py pins both).
    """

    def __init__(self) -> None:
        self.next = b""

    def compress(self, _plain: bytes) -> bytes:
        segment, self.next = self.next, b""
        return segment

    def flush(self) -> bytes:
        return FINAL_BLOCK


def _check_path(registry: PathRegistry, path: str) -> None:
    problem = registry.add(path)
    if problem is not None:
        raise ArchiveError(f"entry {path!r} cannot be archived: {problem}")


def _date_time(now: dt.datetime) -> tuple[int, int, int, int, int, int]:
    stamp = now.astimezone(dt.UTC)
    return (1980, 1, 1, 0, 0, 0) if stamp.year < 1980 else stamp.timetuple()[:6]


def _zip_info(path: str, date_time: tuple[int, int, int, int, int, int]) -> zipfile.ZipInfo:
    info = zipfile.ZipInfo(path, date_time=date_time)
    info.compress_type = zipfile.ZIP_DEFLATED
    info.external_attr = 0o644 << 16  # readable files once extracted (0 means "no permissions")
    return info


def _write_member(
    zf: zipfile.ZipFile, path: str, chunks: bytes | Iterable[bytes], date_time: tuple[int, int, int, int, int, int]
) -> tuple[str, str, int]:
    """Write one member; return (path, SHA-256, size) for the manifest."""
    if isinstance(chunks, bytes | bytearray | memoryview):
        chunks = [bytes(chunks)]  # iterating bytes would yield ints
    if isinstance(chunks, list | tuple) and sum(map(len, chunks)) <= WHOLE_IN_MEMORY:
        # Held whole already (a note, an attachment, the README): deflated as zipfile does it
        # (one compressor per member, `compress` per chunk, then `flush`), then put in at once.
        compressor = zlib.compressobj(zlib.Z_DEFAULT_COMPRESSION, zlib.DEFLATED, -15)
        data = b"".join([*map(compressor.compress, chunks), compressor.flush()])
        return _put_whole(zf, _zip_info(path, date_time), chunks, data)
    digest = hashlib.sha256()
    size = 0
    with zf.open(_zip_info(path, date_time), "w", force_zip64=True) as member:
        for chunk in chunks:
            digest.update(chunk)
            size += len(chunk)
            member.write(chunk)
    return path, digest.hexdigest(), size


def _write_deflated(
    zf: zipfile.ZipFile,
    path: str,
    segments: Iterable[tuple[bytes, bytes]],
    date_time: tuple[int, int, int, int, int, int],
) -> tuple[str, str, int]:
    """Write one member from precompressed segments; return (path, SHA-256, size) for the manifest."""
    if isinstance(segments, list | tuple):  # a card file: its one segment is in memory
        data = b"".join([*(segment for _, segment in segments), FINAL_BLOCK])
        return _put_whole(zf, _zip_info(path, date_time), [plain for plain, _ in segments], data)
    digest = hashlib.sha256()
    size = 0
    with zf.open(_zip_info(path, date_time), "w", force_zip64=True) as member:
        feed = _Segments()
        member._compressor = feed  # type: ignore[attr-defined]  # zipfile internal, pinned by a test
        for plain, segment in segments:
            digest.update(plain)
            size += len(plain)
            feed.next = segment
            member.write(plain)
    return path, digest.hexdigest(), size


def _put_whole(zf: zipfile.ZipFile, info: zipfile.ZipInfo, plain: Sequence[bytes], data: bytes) -> tuple[str, str, int]:
    """Put in a member whose raw-DEFLATE `data` is complete: header, then data, with no seek back.

    Why not `zf.open(info, "w")`: it writes the local header and the data, then
    seeks back to write the header again with the CRC and sizes, and each seek
    flushes the file's buffer. For the 15,000 small members of a 1x HEAVY
    archive (a file per card and per note) that machinery cost more than their
    bytes: 10,000 cards cost 0.50x (0.42-0.59) the CPU here that they cost
    through `open` (median of 5 interleaved rounds on a loaded machine,
    `bench/zip_members.py`). The bytes are the ones
    zipfile writes (its `_open_to_write` and `_ZipWriteFile.close` for a
    seekable file and `force_zip64`): tests/formats/test_zipfile_internals.py
    compares them.
    """
    if zf._writing:  # type: ignore[attr-defined]  # zipfile internal, as `_open_to_write` checks it
        raise ValueError("another member of the zip is still being written")
    digest = hashlib.sha256()
    crc = size = 0
    for chunk in plain:
        digest.update(chunk)
        crc = zlib.crc32(chunk, crc)
        size += len(chunk)
    info.flag_bits = 0  # a seekable file: sizes in the header, no data descriptor
    info.CRC, info.file_size, info.compress_size = crc, size, len(data)
    info.header_offset = zf.start_dir  # each member, ours or zipfile's, leaves the file positioned there
    zf._writecheck(info)  # type: ignore[attr-defined]
    zf._didModify = True  # type: ignore[attr-defined]
    header = info.FileHeader(True)
    assert zf.fp is not None  # open for writing
    zf.fp.write(header)
    zf.fp.write(data)
    zf.start_dir += len(header) + len(data)
    zf.filelist.append(info)
    zf.NameToInfo[info.filename] = info
    return info.filename, digest.hexdigest(), size


def _write_raw(
    zf: zipfile.ZipFile, entry: RawEntry, date_time: tuple[int, int, int, int, int, int]
) -> tuple[str, str, int]:
    """Write one member from its finished raw-DEFLATE stream; return (path, SHA-256, size) for the manifest.

    The stream goes through `_Segments` as empty writes (zipfile counts its
    compressed size), ends with no final block of ours (it has its own), and
    the CRC-32 and size zipfile would have counted are set before `close`
    writes them into the header (tests/formats/test_export_split.py pins both
    attributes).
    """
    with zf.open(_zip_info(entry.path, date_time), "w", force_zip64=True) as member:
        feed = _Segments()
        feed.flush = lambda: b""  # type: ignore[method-assign]  # the stream is already closed
        member._compressor = feed  # type: ignore[attr-defined]  # zipfile internal, pinned by a test
        for data in entry.compressed:
            feed.next = data
            member.write(b"")
        member._crc = entry.crc  # type: ignore[attr-defined]
        member._file_size = entry.size  # type: ignore[attr-defined]
    return entry.path, entry.sha256, entry.size


_WRITER_SCHEMA = "CREATE TABLE files (path TEXT, sha256 TEXT, size INTEGER)"


def _listed(spool: Spool) -> Iterator[ManifestFile]:
    """The files written so far, in order, as the manifest lists them."""
    for path, sha256, size in iter_rows(spool.execute("SELECT path, sha256, size FROM files ORDER BY rowid")):
        yield ManifestFile(path, sha256, size)


def _write_zip(
    raw: IO[bytes],
    entries: Iterable[Entry | DeflatedEntry | RawEntry],
    head: Manifest,
    now: dt.datetime,
    layout: Callable[[], Mapping[str, Any]] | None,
    scratch: Path | None,
    signer: SigningKey | None = None,
    changes: Callable[[], Mapping[str, Any]] | None = None,
) -> None:
    date_time = _date_time(now)
    with Spool(_WRITER_SCHEMA, folder=scratch) as spool:
        checker = PathRegistry(files=spool.keys("names"))
        files = spool.table("files", 3)
        has_readme = False
        zf = zipfile.ZipFile(raw, "w", compression=zipfile.ZIP_DEFLATED)
        try:
            spool_members(zf, spool)
            for entry in entries:
                if entry.path != README_NAME and collision_key(entry.path) in _RESERVED_KEYS:
                    raise ArchiveError(f"entry {entry.path!r} uses a name the archive reserves for itself")
                _check_path(checker, entry.path)
                if isinstance(entry, DeflatedEntry):
                    files.add(_write_deflated(zf, entry.path, entry.segments, date_time))
                elif isinstance(entry, RawEntry):
                    files.add(_write_raw(zf, entry, date_time))
                else:
                    files.add(_write_member(zf, entry.path, entry.chunks, date_time))
                has_readme = has_readme or entry.path == README_NAME
            if layout is not None:
                head = _with_meta(head, "layout", layout())
            if changes is not None:
                head = _with_meta(head, CHANGES, changes())
            if not has_readme:
                _check_path(checker, README_NAME)
                version = str(head.meta.get("vcard_version", "3.0"))
                key = signer.public if signer is not None else None
                text = readme_text(version, manifest=head, signing_key=key).encode("utf-8")
                files.add(_write_member(zf, README_NAME, text, date_time))
            files.add(_write_member(zf, CHECKSUMS_NAME, checksums_chunks(_listed(spool)), date_time))
            _, manifest_sha256, _ = _write_member(zf, MANIFEST_NAME, head.json_chunks(_listed(spool)), date_time)
            if signer is not None:  # after the manifest, listed nowhere: it signs manifest.json's exact bytes
                _write_member(zf, SIGNATURE_NAME, signer.signature_member(manifest_sha256), date_time)
        except BaseException:
            # The caller discards the partial output; closing only releases it.
            with contextlib.suppress(Exception):
                zf.close()
            raise
        zf.close()


def _with_meta(head: Manifest, key: str, value: Any) -> Manifest:
    manifest = replace(head, meta={**head.meta, key: value})
    try:
        replace(head, meta={**head.meta, key: plain_meta(value)}).to_json()  # streamed lists are ours: not read
    except (TypeError, ValueError) as exc:
        raise ArchiveError(f"meta {key!r} cannot be stored in manifest.json: {exc}") from None
    return manifest


def write_archive(
    out: IO[bytes],
    entries: Iterable[Entry | DeflatedEntry | RawEntry],
    meta: Mapping[str, Any],
    now: dt.datetime,
    *,
    scratch: Path | None = None,
    layout: Callable[[], Mapping[str, Any]] | None = None,
    signer: SigningKey | None = None,
    changes: Callable[[], Mapping[str, Any]] | None = None,
) -> None:
    """Write `entries` plus SHA256SUMS and manifest.json (and README.txt) as a zip into `out`.

    `out` must be writable and seekable (zipfile patches each member's header
    after its data); the caller owns it, flushes and closes it. `meta` goes
    into the manifest as is: usually `user` (email), `counts` and
    `vcard_version`, optionally `generator`. `layout`, if given, is called once
    every entry is written and its result stored as meta `layout` (a bundle
    knows its file names only then); `changes` likewise, as meta `changes` (what
    the export had to change, `exporters.archive.changes`). If no entry is `README.txt`, one is added.
    `now` (aware) is the creation time and every member's timestamp, so the
    same input gives the same bytes. `scratch` is the folder for the per-member
    spool (None: SQLite's own temporary folder). With `signer`, the archive
    ends with `manifest.json.sig`, the service's signature over manifest.json
    (`exporters.archive.signature`), and README.txt names the key; the bytes
    are still the same for the same input and key. Raises `ArchiveError` if an
    entry path is unsafe or clashes, or the meta cannot be stored; `out` then
    holds a partial zip the caller discards.
    """
    head = manifest_from_meta(meta, now)
    _write_zip(out, entries, head, now, layout, scratch, signer, changes)
