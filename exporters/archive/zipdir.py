"""The ZIP central directory, one member at a time: written from disk, read as a stream.

Why not leave it to `zipfile`: `ZipFile` keeps a `ZipInfo` object per member
(about 400 bytes with its numbers and name index) for as long as it is open,
both when writing and when reading, so an archive of 150,000 members costs some
60 MB in each direction. The writer still uses `zipfile` for everything on
disk; only its member list is swapped for `SpooledFileList`, which keeps each
`ZipInfo` as a row in a `Spool` and rebuilds it when `zipfile` writes the
central directory at `close()` (`ZipFile.filelist` and `ZipFile.NameToInfo` are
the only places `zipfile` keeps members; every archive is read back in full
afterwards, and tests/formats/test_zipfile_internals.py checks both attributes
and `ZipInfo.__slots__` on a real `ZipFile`, naming whichever a future Python
changes).
The reader (`central_directory`, `member_chunks`) parses the format directly
(PKWARE APPNOTE 6.3: end records, ZIP64, central and local headers) and holds
one record at a time; it reads stored and deflated members, which is what any
common tool writes. Why not stream-zip / stream-unzip: the first writes other
bytes and keeps every central-directory record in memory; the second never reads
the central directory, so it cannot compare it with the local headers, and took
5x the CPU (docs/performance.md, "Zip writer", "Zip reader").

Why names are decoded beyond what `zipfile` does: `zipfile` reads a name as
UTF-8 only when general-purpose flag bit 11 is set and as CP437 otherwise. Many
tools set no flag: Info-ZIP's `zip` on Linux and macOS stores the file system's
UTF-8 bytes as they are (and sometimes the same name again in its "Unicode
Path" extra field, 0x7075), so an archive a user unpacked and zipped again
would come back with `Müller` read as `M├╝ller`. `_decode_name` follows the
order Info-ZIP's own `unzip` trusts: the flag, then a Unicode Path field whose
CRC matches the stored name, then bytes that are valid UTF-8, then CP437 (what
DOS and Windows' built-in compressed folders write for names in the OEM code page).
"""

from __future__ import annotations

import struct
import zipfile
import zlib
from collections.abc import Iterator
from typing import IO, Any, NamedTuple

from exporters.archive.spool import Spool, iter_rows

CHUNK = 1 << 18  # what a member read yields at most: a few of these are all a read holds

_EOCD = struct.Struct("<4s4H2LH")  # end of central directory record
_LOCATOR64 = struct.Struct("<4sLQL")  # ZIP64 end of central directory locator
_EOCD64 = struct.Struct("<4sQ2H2L4Q")  # ZIP64 end of central directory record
_CENTRAL = struct.Struct("<4s4B4HL2L5H2L")  # central directory file header
_LOCAL = struct.Struct("<4s2B4HL2L2H")  # local file header
_EXTRA = struct.Struct("<HH")
_MAX_COMMENT = 0xFFFF
_UTF8_FLAG = 0x800
_ENCRYPTED_FLAG = 0x1
# Flags no reader copes with (patched data, strong encryption), and the newest "version needed to
# extract" zipfile accepts: a member claiming either is refused, as `unzip` and zipfile would refuse it.
_UNREADABLE_FLAGS = 0x20 | 0x40
_MAX_EXTRACT_VERSION = 63
_ZIP64_EXTRA = 0x0001
_UNICODE_PATH_EXTRA = 0x7075  # Info-ZIP: version 1, CRC-32 of the stored name, the name in UTF-8
_FULL32 = 0xFFFFFFFF

BadZip = zipfile.BadZipFile


class Member(NamedTuple):
    """What the central directory says about one member, as far as reading it needs."""

    name: str
    flags: int
    method: int
    crc: int
    compress_size: int
    file_size: int
    header_offset: int  # already corrected for data prepended to the archive
    mode: int = 0  # Unix file type and permissions (high half of the external attributes), 0 if none


# ---------------------------------------------------------------- writing


# What varies per member; every other ZipInfo field is the same for (nearly) all of them.
_VARYING = ("orig_filename", "filename", "CRC", "compress_size", "file_size", "header_offset")
_SHARED = tuple(s for s in zipfile.ZipInfo.__slots__ if s not in _VARYING)
_UNSET = object()


class UnindexedNames(dict[str, zipfile.ZipInfo]):
    """Stands in for `ZipFile.NameToInfo` while writing: stays empty (the archive checks names itself)."""

    def __setitem__(self, key: str, value: zipfile.ZipInfo) -> None:
        return None


class SpooledFileList:
    """Stands in for `ZipFile.filelist` while writing: each `ZipInfo` becomes a spool row.

    Fields shared by many members (time, permissions, versions, flags) are kept
    once per distinct combination, so a row is a name and four numbers.
    """

    def __init__(self, spool: Spool) -> None:
        self._spool = spool
        spool.execute(
            "CREATE TABLE zipinfo (name TEXT, crc INTEGER, csize INTEGER, size INTEGER, offset INTEGER, kind INTEGER)"
        )
        self._rows = spool.table("zipinfo", 6)
        self._kinds: dict[tuple[object, ...], int] = {}
        self._count = 0

    def append(self, info: zipfile.ZipInfo) -> None:
        if info.orig_filename != info.filename:
            raise ValueError(f"member name {info.orig_filename!r} was changed by zipfile; archive names are portable")
        shared = tuple(getattr(info, slot, _UNSET) for slot in _SHARED)
        kind = self._kinds.setdefault(shared, len(self._kinds))
        self._rows.add((info.filename, info.CRC, info.compress_size, info.file_size, info.header_offset, kind))
        self._count += 1

    def __len__(self) -> int:
        return self._count

    def __iter__(self) -> Iterator[zipfile.ZipInfo]:
        kinds = list(self._kinds)
        cursor = self._spool.execute("SELECT name, crc, csize, size, offset, kind FROM zipinfo ORDER BY rowid")
        for name, crc, csize, size, offset, kind in iter_rows(cursor):
            info = zipfile.ZipInfo(name)
            for slot, value in zip(_SHARED, kinds[kind], strict=True):
                if value is not _UNSET:
                    setattr(info, slot, value)
            info.CRC, info.compress_size, info.file_size, info.header_offset = crc, csize, size, offset
            yield info


def spool_members(zf: zipfile.ZipFile, spool: Spool) -> None:
    """Make the write-mode `zf` keep its member list in `spool` instead of in memory."""
    if zf.filelist or zf.NameToInfo:
        raise ValueError("swap the member list before writing any member")
    zf.filelist = SpooledFileList(spool)  # type: ignore[assignment]  # list stand-in (test_archive_streaming)
    zf.NameToInfo = UnindexedNames()


# ---------------------------------------------------------------- reading


def _end_records(f: IO[bytes]) -> tuple[int, int, int]:
    """Return (central directory start, its size, bytes prepended to the archive)."""
    f.seek(0, 2)
    file_size = f.tell()
    if file_size < _EOCD.size:
        raise BadZip("File is not a zip file")
    tail_size = min(file_size, _EOCD.size + _MAX_COMMENT)
    f.seek(file_size - tail_size)
    tail = f.read(tail_size)
    found = tail.rfind(b"PK\x05\x06")
    if found < 0 or tail_size - found < _EOCD.size:
        raise BadZip("File is not a zip file")
    _, disk, cd_disk, _, _, cd_size, cd_offset, _ = _EOCD.unpack_from(tail, found)
    eocd_at = file_size - tail_size + found
    records = 0  # bytes of ZIP64 end records between the central directory and the end record
    if eocd_at >= _LOCATOR64.size:
        f.seek(eocd_at - _LOCATOR64.size)
        locator = f.read(_LOCATOR64.size)
        if locator[:4] == b"PK\x06\x07":
            _, _, _, disks = _LOCATOR64.unpack(locator)
            if disks > 1:
                raise BadZip("zipfiles that span multiple disks are not supported")
            start = eocd_at - _LOCATOR64.size - _EOCD64.size
            if start < 0:
                raise BadZip("Corrupt zip64 end of central directory record")
            f.seek(start)
            record = f.read(_EOCD64.size)
            if len(record) != _EOCD64.size or record[:4] != b"PK\x06\x06":
                raise BadZip("Corrupt zip64 end of central directory record")
            _, _, _, _, disk, cd_disk, _, _, cd_size, cd_offset = _EOCD64.unpack(record)
            records = _EOCD64.size + _LOCATOR64.size
    if disk or cd_disk:
        raise BadZip("zipfiles that span multiple disks are not supported")
    prepended = eocd_at - records - cd_size - cd_offset
    if prepended < 0:
        raise BadZip("Bad offset for central directory")
    return cd_offset + prepended, cd_size, prepended


def _zip64_values(extra: bytes, wanted: list[int]) -> list[int]:
    """Replace each 0xFFFFFFFF in `wanted` (file size, compressed size, offset) from the ZIP64 field."""
    at = 0
    while at + _EXTRA.size <= len(extra):
        kind, length = _EXTRA.unpack_from(extra, at)
        body = extra[at + 4 : at + 4 + length]
        if len(body) != length:
            raise BadZip("Corrupt extra field")
        if kind == _ZIP64_EXTRA:
            values = iter(struct.unpack_from(f"<{length // 8}Q", body))
            try:
                return [next(values) if v == _FULL32 else v for v in wanted]
            except StopIteration:
                raise BadZip("Corrupt extra field (ZIP64 sizes missing)") from None
        at += 4 + length
    return wanted


def central_directory(f: IO[bytes]) -> Iterator[Member]:
    """Yield every member the central directory of the zip `f` lists, in order; `BadZipFile` if damaged."""
    start, size, prepended = _end_records(f)
    f.seek(start)
    done = 0
    while done < size:
        head = f.read(_CENTRAL.size)
        if len(head) != _CENTRAL.size or head[:4] != b"PK\x01\x02":
            raise BadZip("Bad magic number for central directory")
        fields = _CENTRAL.unpack(head)
        flags, method, crc, csize, fsize = fields[5], fields[6], fields[9], fields[10], fields[11]
        if flags & _UNREADABLE_FLAGS or fields[3] > _MAX_EXTRACT_VERSION:
            raise BadZip(f"a member needs zip features no reader has (flags {flags:#06x}, version {fields[3]})")
        name_len, extra_len, comment_len, offset = fields[12], fields[13], fields[14], fields[18]
        rest = f.read(name_len + extra_len + comment_len)
        if len(rest) != name_len + extra_len + comment_len:
            raise BadZip("Truncated central directory")
        extra = rest[name_len : name_len + extra_len]
        name = _decode_name(rest[:name_len], flags, extra)
        if _FULL32 in (fsize, csize, offset):
            fsize, csize, offset = _zip64_values(extra, [fsize, csize, offset])
        done += _CENTRAL.size + len(rest)
        yield Member(name, flags, method, crc, csize, fsize, offset + prepended, fields[17] >> 16)


def _unicode_path(raw: bytes, extra: bytes) -> str | None:
    """The name from an Info-ZIP Unicode Path field (0x7075), if there is one that belongs to `raw`.

    The field carries the CRC-32 of the name it was written for; a tool that
    renamed the member without updating the field leaves a stale one, which
    Info-ZIP's specification says to ignore.
    """
    at = 0
    while at + _EXTRA.size <= len(extra):
        kind, length = _EXTRA.unpack_from(extra, at)
        body = extra[at + 4 : at + 4 + length]
        at += 4 + length
        if kind != _UNICODE_PATH_EXTRA or len(body) < 5 or body[0] != 1:
            continue
        if struct.unpack_from("<L", body, 1)[0] != zlib.crc32(raw):
            continue
        try:
            return body[5:].decode("utf-8")
        except UnicodeDecodeError:
            raise BadZip(f"member name {raw!r} has a Unicode Path field that is not UTF-8") from None
    return None


def _decode_name(raw: bytes, flags: int, extra: bytes = b"") -> str:
    """A member's name as the tool that wrote it meant it (see the module docstring for the order)."""
    if flags & _UTF8_FLAG:
        try:
            return raw.decode("utf-8")
        except UnicodeDecodeError:
            raise BadZip(f"member name {raw!r} is not valid UTF-8") from None
    unicode_path = _unicode_path(raw, extra)
    if unicode_path is not None:
        return unicode_path
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        return raw.decode("cp437")  # every byte is a CP437 character: never fails


def member_chunks(f: IO[bytes], member: Member, chunk: int = CHUNK) -> Iterator[bytes]:
    """Yield the uncompressed bytes of `member` (at most `chunk` at a time), then check its CRC-32.

    Raises `BadZipFile`, `zlib.error`, `EOFError` or `NotImplementedError` when
    the data is damaged or uses something other than stored or deflated data;
    never yields more than the `member.file_size` bytes the directory lists.
    """
    inflate = _at_data(f, member)
    crc = size = 0
    for out in _inflated(f, member.compress_size, inflate, chunk):
        size += len(out)
        if size > member.file_size:
            raise BadZip(f"{member.name!r} holds more than the {member.file_size} bytes its header says")
        crc = zlib.crc32(out, crc)
        yield out
    _check_end(member, size, crc)


def small_member(f: IO[bytes], member: Member) -> bytes:
    """The whole uncompressed bytes of `member`, checked as `member_chunks` checks them, read in one go.

    For members of at most `SMALL_MEMBER` bytes (the caller sees to it). Why a
    second way: an archive is mostly small members (a card, a note), and the
    read-back check after every export reads them all; one read and one
    inflate call each, instead of a chain of generators, cost that check 0.87x
    (0.84-0.99) the CPU on a 1x HEAVY repeat archive (median of 6 interleaved
    rounds, loaded machine: `bench/zip_members.py --read ARCHIVE`). Same exceptions.
    """
    inflate = _at_data(f, member)
    data = f.read(member.compress_size)
    if len(data) != member.compress_size:
        raise EOFError("the member's data ends early")
    if inflate is None:
        out = data
    else:
        out = inflate.decompress(data, member.file_size + 1)  # one byte more than listed shows "more"
        if len(out) <= member.file_size and not inflate.eof:
            raise EOFError("Compressed file ended before the end-of-stream marker was reached")
    if len(out) > member.file_size:
        raise BadZip(f"{member.name!r} holds more than the {member.file_size} bytes its header says")
    _check_end(member, len(out), zlib.crc32(out))
    return out


SMALL_MEMBER = 1 << 20


def _at_data(f: IO[bytes], member: Member) -> Any:
    """Check `member`'s local header, leave `f` at its data; its decompressor, or None if stored."""
    f.seek(member.header_offset)
    head = f.read(_LOCAL.size)
    if len(head) != _LOCAL.size:
        raise BadZip("Truncated file header")
    fields = _LOCAL.unpack(head)
    if fields[0] != b"PK\x03\x04":
        raise BadZip("Bad magic number for file header")
    raw = f.read(fields[10] + fields[11])
    name = _decode_name(raw[: fields[10]], fields[3], raw[fields[10] :])
    if name != member.name:
        raise BadZip(f"File name in directory {member.name!r} and header {name!r} differ.")
    if member.flags & _ENCRYPTED_FLAG:
        raise NotImplementedError("the member is encrypted")
    if member.method == zipfile.ZIP_STORED:
        return None
    if member.method == zipfile.ZIP_DEFLATED:
        return zlib.decompressobj(-zlib.MAX_WBITS)
    raise NotImplementedError(f"compression method {member.method} (only stored and deflated are read)")


def _check_end(member: Member, size: int, crc: int) -> None:
    if size != member.file_size:
        raise EOFError(f"{member.name!r} ends after {size} of {member.file_size} bytes")
    if crc != member.crc:
        raise BadZip(f"Bad CRC-32 for file {member.name!r}")


def _inflated(f: IO[bytes], compressed: int, inflate: Any, chunk: int) -> Iterator[bytes]:
    left = compressed
    while left:
        data = f.read(min(chunk, left))
        if not data:
            raise EOFError("the member's data ends early")
        left -= len(data)
        if inflate is None:
            yield data
            continue
        while data:  # bounded output per call: a tiny member may inflate enormously
            if out := inflate.decompress(data, chunk):
                yield out
            data = inflate.unconsumed_tail
    if inflate is not None:
        while out := inflate.decompress(b"", chunk):  # what zlib still holds back
            yield out
        if not inflate.eof:
            raise EOFError("Compressed file ended before the end-of-stream marker was reached")
