"""Write a verified ZIP archive entry by entry, and check or read one later.

Why streaming: a large account can hold gigabytes of attachments, so every
entry is copied chunk by chunk into `ZipFile.open(name, "w")` while its SHA-256
and size are counted; memory stays flat whatever the archive size.

Why temp file, verify, then place: an archive that appears under its final
name must be complete and correct. It is written to `.<name>.partial-<random>`
in the destination folder, fsynced, read back in full (each member's SHA-256,
size and ZIP CRC against the manifest), and only then linked into place without
ever replacing an existing archive. Any failure removes the partial file.

Why per-member records go to disk: a large account has 150,000 members, and
everything known per member (its path and hash for the manifest and SHA256SUMS,
its place in the zip, its name for clash checks) is kept in a temporary SQLite
`Spool` while writing and verifying, and `manifest.json` is written and parsed
as a stream. Memory then stays flat whatever the number of members; only the
verified manifest handed back holds the file list, packed (`FileTable`).
"""

from __future__ import annotations

import contextlib
import datetime as dt
import hashlib
import os
import secrets
import struct
import zipfile
import zlib
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from types import TracebackType
from typing import IO, Any

from exporters.manifest import (
    CHECKSUMS_NAME,
    MANIFEST_NAME,
    README_NAME,
    RESERVED_NAMES,
    ArchiveError,
    Manifest,
    ManifestFile,
    checksums_chunks,
    manifest_from_meta,
    read_manifest,
)
from exporters.paths import PathRegistry, collision_key, sanitize_component
from exporters.readme import readme_text
from exporters.repack import Kind, UnsafeMember, ZipSurvey, classify
from exporters.spool import Spool, iter_rows
from exporters.zipdir import Member, central_directory, member_chunks, spool_members

CHUNK = 1 << 20
_RESERVED_KEYS = frozenset(collision_key(n) for n in RESERVED_NAMES)
MAX_MANIFEST_BYTES = 256 << 20  # far above any real account; refuses zip bombs posing as one
MANIFEST_CHUNK = 1 << 16  # manifest.json is parsed as it is read: small pieces suffice


@dataclass(frozen=True)
class Entry:
    """One file of the archive: its path inside the zip and its content as chunks."""

    path: str
    chunks: Iterable[bytes]


@dataclass(frozen=True)
class ArchiveInfo:
    path: Path
    sha256: str  # of the whole zip file
    size: int
    manifest: Manifest  # as read back from the written archive; `to_json()` gives its bytes


def _check_path(registry: PathRegistry, path: str) -> None:
    problem = registry.add(path)
    if problem is not None:
        raise ArchiveError(f"entry {path!r} cannot be archived: {problem}")


def _date_time(now: dt.datetime) -> tuple[int, int, int, int, int, int]:
    stamp = now.astimezone(dt.UTC)
    return (1980, 1, 1, 0, 0, 0) if stamp.year < 1980 else stamp.timetuple()[:6]  # type: ignore[return-value]


def _zip_info(path: str, date_time: tuple[int, int, int, int, int, int]) -> zipfile.ZipInfo:
    info = zipfile.ZipInfo(path, date_time=date_time)
    info.compress_type = zipfile.ZIP_DEFLATED
    info.external_attr = 0o644 << 16  # readable files once extracted (0 means "no permissions")
    return info


def _write_member(
    zf: zipfile.ZipFile, path: str, chunks: Iterable[bytes], date_time: tuple[int, int, int, int, int, int]
) -> tuple[str, str, int]:
    """Write one member; return (path, SHA-256, size) for the manifest."""
    if isinstance(chunks, bytes | bytearray | memoryview):
        chunks = [bytes(chunks)]  # iterating bytes would yield ints
    digest = hashlib.sha256()
    size = 0
    with zf.open(_zip_info(path, date_time), "w", force_zip64=True) as member:
        for chunk in chunks:
            digest.update(chunk)
            size += len(chunk)
            member.write(chunk)
    return path, digest.hexdigest(), size


_WRITER_SCHEMA = "CREATE TABLE files (path TEXT, sha256 TEXT, size INTEGER)"


def _listed(spool: Spool) -> Iterator[ManifestFile]:
    """The files written so far, in order, as the manifest lists them."""
    for path, sha256, size in iter_rows(spool.execute("SELECT path, sha256, size FROM files ORDER BY rowid")):
        yield ManifestFile(path, sha256, size)


def _write_zip(
    raw: IO[bytes],
    entries: Iterable[Entry],
    head: Manifest,
    now: dt.datetime,
    layout: Callable[[], Mapping[str, Any]] | None,
) -> None:
    date_time = _date_time(now)
    with Spool(_WRITER_SCHEMA) as spool:
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
                files.add(_write_member(zf, entry.path, entry.chunks, date_time))
                has_readme = has_readme or entry.path == README_NAME
            if layout is not None:
                head = _with_meta(head, "layout", layout())
            if not has_readme:
                _check_path(checker, README_NAME)
                version = str(head.meta.get("vcard_version", "3.0"))
                text = readme_text(version, manifest=head).encode("utf-8")
                files.add(_write_member(zf, README_NAME, text, date_time))
            files.add(_write_member(zf, CHECKSUMS_NAME, checksums_chunks(_listed(spool)), date_time))
            _write_member(zf, MANIFEST_NAME, head.json_chunks(_listed(spool)), date_time)
        except BaseException:
            # The caller deletes the partial file; closing only releases it.
            with contextlib.suppress(Exception):
                zf.close()
            raise
        zf.close()


def _with_meta(head: Manifest, key: str, value: Any) -> Manifest:
    manifest = replace(head, meta={**head.meta, key: value})
    try:
        manifest.to_json()
    except (TypeError, ValueError) as exc:
        raise ArchiveError(f"meta {key!r} cannot be stored in manifest.json: {exc}") from None
    return manifest


def _file_sha256(path: Path) -> tuple[str, int]:
    digest = hashlib.sha256()
    size = 0
    with path.open("rb") as f:
        while chunk := f.read(CHUNK):
            digest.update(chunk)
            size += len(chunk)
    return digest.hexdigest(), size


def _fsync_dir(folder: Path) -> None:
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return  # Windows cannot open folders; its renames are durable enough
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def _place(temp: Path, final: Path) -> None:
    """Give `temp` the name `final` atomically, refusing to replace an existing file."""
    try:
        os.link(temp, final)  # fails if `final` exists, unlike os.replace
    except FileExistsError:
        raise ArchiveError(f"{final} already exists; archives are never overwritten") from None
    except OSError:
        # File systems without hard links: check, then rename (a narrow race remains).
        if final.exists():
            raise ArchiveError(f"{final} already exists; archives are never overwritten") from None
        os.replace(temp, final)
    else:
        temp.unlink()


def write_archive(
    dest_dir: Path,
    name: str,
    entries: Iterable[Entry],
    meta: Mapping[str, Any],
    now: dt.datetime,
    *,
    layout: Callable[[], Mapping[str, Any]] | None = None,
) -> ArchiveInfo:
    """Write `entries` plus SHA256SUMS and manifest.json (and README.txt) to `dest_dir/name`.

    `meta` goes into the manifest as is: usually `user` (email), `counts` and
    `vcard_version`, optionally `generator`. `layout`, if given, is called once
    every entry is written and its result stored as meta `layout` (a bundle
    knows its file names only then). If no entry is `README.txt`, one is added.
    `now` (aware) is the creation time and every member's timestamp, so the
    same input gives the same bytes. Raises `ArchiveError` if `name` exists or
    is not portable, an entry path is unsafe or clashes, or verification fails.
    """
    dest_dir = Path(dest_dir)
    # 200 bytes leaves room for the `.<name>.partial-<random>` temporary name.
    if name.startswith(".") or sanitize_component(name, max_bytes=200) != name:
        raise ArchiveError(f"archive name {name!r} is not a plain, portable file name")
    head = manifest_from_meta(meta, now)
    final = dest_dir / name
    if final.exists():
        raise ArchiveError(f"{final} already exists; archives are never overwritten")
    if not dest_dir.is_dir():
        raise ArchiveError(f"destination folder {dest_dir} does not exist")
    temp = dest_dir / f".{name}.partial-{secrets.token_hex(8)}"
    fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0), 0o600)
    try:
        with os.fdopen(fd, "wb") as raw:
            _write_zip(raw, entries, head, now, layout)
            raw.flush()
            os.fsync(raw.fileno())
        manifest = verify_archive(temp)
        sha256, size = _file_sha256(temp)
        _place(temp, final)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            temp.unlink()
        raise
    _fsync_dir(dest_dir)
    return ArchiveInfo(path=final, sha256=sha256, size=size, manifest=manifest)


_DAMAGE = (zipfile.BadZipFile, zlib.error, EOFError, OSError, RuntimeError, NotImplementedError)


def _read_checked(f: IO[bytes], member: Member, expected: ManifestFile) -> Iterator[bytes]:
    """Yield a member's bytes, raising `ArchiveError` at the end if they do not match."""
    path = expected.path
    if member.file_size != expected.size:
        raise ArchiveError(f"{path}: size is {member.file_size} bytes in the zip, {expected.size} in manifest.json")
    digest = hashlib.sha256()
    size = 0
    try:
        for chunk in member_chunks(f, member):
            size += len(chunk)
            if size > expected.size:
                raise ArchiveError(f"{path}: larger than the {expected.size} bytes manifest.json lists")
            digest.update(chunk)
            yield chunk
    except _DAMAGE as exc:
        raise ArchiveError(f"{path}: damaged in the zip ({exc})") from None
    if size != expected.size:
        raise ArchiveError(f"{path}: {size} bytes, but manifest.json lists {expected.size}")
    if digest.hexdigest() != expected.sha256:
        raise ArchiveError(f"{path}: SHA-256 does not match manifest.json (the file was changed or damaged)")


class ArchiveReader:
    """A verified archive opened for restores and checks: members are read by path and re-checked.

    `survey` says what verification passed over (folder entries, macOS
    extras, a top folder) in a zip the user made again from the unpacked files.
    """

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self.manifest, self.survey, self._file, self._spool = _verified(self.path, keep=True)

    def __enter__(self) -> ArchiveReader:
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        self.close()

    def close(self) -> None:
        self._spool.close()
        self._file.close()

    def paths(self) -> list[str]:
        """The user data in the archive: every listed file but README, SHA256SUMS and manifest."""
        return self.manifest.paths

    def member_chunks(self, path: str) -> Iterator[bytes]:
        """Yield the bytes of `path` in pieces, re-checked at the end; `KeyError` if not listed."""
        row = self._spool.first(f"SELECT {_JOINED} WHERE listed.path = ?", (path,))
        if row is None:
            raise KeyError(path)
        return _read_checked(self._file, Member(*row[1:]), self.manifest.files[row[0]])

    def open_member(self, path: str) -> bytes:
        """Return the bytes of `path`, re-checked; `KeyError` if the manifest does not list it."""
        return b"".join(self.member_chunks(path))

    def paths_in_zip_order(self) -> Iterator[str]:
        """Every file manifest.json lists (README and SHA256SUMS too) in zip order: reads never seek back."""
        query = "SELECT zip.path FROM zip JOIN listed ON listed.path = zip.path ORDER BY zip.seq"
        for (path,) in iter_rows(self._spool.execute(query)):
            yield path


def open_archive(path: Path) -> ArchiveReader:
    """Verify the archive at `path` in full, then open it for reading members."""
    return ArchiveReader(path)


def iter_members(path: Path) -> Iterator[tuple[str, bytes]]:
    """Yield `(path, bytes)` for each user file of a verified archive, in archive order."""
    with open_archive(path) as archive:
        for member in archive.paths():
            yield member, archive.open_member(member)


def open_member(path: Path, member: str) -> bytes:
    """Return one member of the archive at `path` after verifying the whole archive."""
    with open_archive(path) as archive:
        return archive.open_member(member)


# `zip` holds the members that are files (not folder entries or macOS extras): `name` as the zip
# spells it (to find its header), `path` the archive path it stands for (`exporters.repack`).
_READER_SCHEMA = """
CREATE TABLE zip (seq INTEGER PRIMARY KEY, name TEXT NOT NULL, flags INTEGER, method INTEGER, crc INTEGER,
                  csize INTEGER, size INTEGER, offset INTEGER, path TEXT NOT NULL);
CREATE TABLE listed (seq INTEGER PRIMARY KEY, path TEXT NOT NULL)
"""
# Each listed file with its zip member (NULLs when the zip lacks it), for `SELECT ... WHERE/ORDER BY`.
_JOINED = (
    "listed.seq, zip.name, zip.flags, zip.method, zip.crc, zip.csize, zip.size, zip.offset "
    "FROM listed LEFT JOIN zip ON zip.path = listed.path"
)


def read_member(path: Path, name: str) -> bytes:
    """One member's bytes, CRC-checked but without verifying the rest (e.g. manifest.json to attach).

    Unlike `zipfile.ZipFile(path).read(name)`, it scans the central directory
    one entry at a time instead of loading an object per member, so memory is
    the member's size whatever the archive holds. `KeyError` if it is absent.
    """
    with _open_file(Path(path)) as f:
        try:
            member = next((m for m in central_directory(f) if m.name == name), None)
            if member is None:
                raise KeyError(name)
            return b"".join(member_chunks(f, member))
        except (*_DAMAGE, struct.error) as exc:
            raise ArchiveError(f"{name}: cannot be read from {path} ({exc})") from None


def _open_file(path: Path) -> IO[bytes]:
    try:
        return path.open("rb")
    except FileNotFoundError:
        raise ArchiveError(f"{path} does not exist") from None
    except OSError as exc:
        raise ArchiveError(f"{path} cannot be read ({exc})") from None


def _scan_members(path: Path, f: IO[bytes], spool: Spool) -> tuple[Member | None, ZipSurvey]:
    """Record every file member in `spool` (refusing unsafe and repeated names); return manifest.json's.

    Folder entries and macOS extras are checked for safety, counted in the
    returned `ZipSurvey` and left out; a top folder shared by everything (a zip of
    the unpacked folder made from outside it) is dropped from the paths.
    """
    rows = spool.table("zip", 9)
    survey = ZipSurvey()
    try:
        for seq, member in enumerate(central_directory(f)):
            kind, member_path = classify(member.name, member.mode)
            survey.add(kind, member_path)
            if kind is Kind.FOLDER and member.file_size:
                raise ArchiveError(f"member {member.name!r} is a folder entry that holds data")
            if kind is Kind.FILE:
                rows.add((seq, *member[:7], member_path))
    except UnsafeMember as exc:
        raise ArchiveError(str(exc)) from None
    except (zipfile.BadZipFile, OSError, ValueError, struct.error) as exc:
        raise ArchiveError(f"{path} is not a readable ZIP archive; is it truncated? ({exc})") from None
    prefix = survey.prefix()
    if prefix:
        spool.execute("UPDATE zip SET path = substr(path, ?)", (len(prefix) + 1,))
    twice = spool.first("SELECT name FROM zip GROUP BY path HAVING count(*) > 1 ORDER BY max(seq) LIMIT 1")
    if twice is not None:
        raise ArchiveError(f"member {twice[0]!r} appears twice in the zip")
    spool.execute("CREATE UNIQUE INDEX zip_path ON zip (path)")
    row = spool.first("SELECT name, flags, method, crc, csize, size, offset FROM zip WHERE path = ?", (MANIFEST_NAME,))
    return (None if row is None else Member(*row)), survey


def _verified(path: Path, *, keep: bool = False) -> tuple[Manifest, ZipSurvey, IO[bytes], Spool]:
    """Verify the archive at `path` (see `verify_archive`); return the open file and the spool of members.

    With `keep`, the caller closes both; otherwise they are closed already.
    """
    f = _open_file(path)
    spool = Spool(_READER_SCHEMA)
    try:
        manifest, survey = _verify(path, f, spool)
    except BaseException:
        spool.close()
        f.close()
        raise
    if not keep:
        spool.close()
        f.close()
    return manifest, survey, f, spool


def _verify(path: Path, f: IO[bytes], spool: Spool) -> tuple[Manifest, ZipSurvey]:
    manifest_member, survey = _scan_members(path, f, spool)
    if manifest_member is None:
        raise ArchiveError(f"{MANIFEST_NAME} is missing: this is not a complete Lifeboat archive")
    if manifest_member.file_size > MAX_MANIFEST_BYTES:
        raise ArchiveError(f"{MANIFEST_NAME} is implausibly large ({manifest_member.file_size} bytes)")
    try:
        chunks = member_chunks(f, manifest_member, MANIFEST_CHUNK)
        manifest = read_manifest(chunks, seen=spool.keys("listed_keys"))
    except _DAMAGE as exc:
        raise ArchiveError(f"{MANIFEST_NAME}: damaged in the zip ({exc})") from None
    listed = spool.table("listed", 2)
    has = {README_NAME: False, CHECKSUMS_NAME: False}
    for seq, entry in enumerate(manifest.files):
        listed.add((seq, entry.path))
        if entry.path in has:
            has[entry.path] = True
    for required, present in has.items():
        if not present:
            raise ArchiveError(f"{required}: not listed in manifest.json, which every archive has")
    spool.execute("CREATE UNIQUE INDEX listed_path ON listed (path)")
    extra = spool.first(
        "SELECT name FROM zip WHERE path != ? AND path NOT IN (SELECT path FROM listed) ORDER BY seq LIMIT 1",
        (MANIFEST_NAME,),
    )
    if extra is not None:
        raise ArchiveError(f"{extra[0]}: in the zip but not listed in manifest.json (added later?)")
    rows = iter_rows(spool.execute(f"SELECT {_JOINED} ORDER BY listed.seq"))
    for row, expected in zip(rows, manifest.files, strict=True):
        if row[1] is None:
            raise ArchiveError(f"{expected.path}: listed in manifest.json but missing from the zip")
        checked = _read_checked(f, Member(*row[1:]), expected)
        if expected.path != CHECKSUMS_NAME:
            for _ in checked:
                pass
            continue
        for _ in checked:
            pass
        # The member matched its listed hash; it agrees if the manifest's own list hashes the same.
        digest, size = hashlib.sha256(), 0
        for chunk in checksums_chunks(manifest.files):
            digest.update(chunk)
            size += len(chunk)
        if (digest.hexdigest(), size) != (expected.sha256, expected.size):
            raise ArchiveError(f"{CHECKSUMS_NAME}: does not agree with manifest.json")
    return manifest, survey


def verify_archive(path: Path) -> Manifest:
    """Check the archive at `path` completely and return its manifest.

    It must be a zip with a known-format `manifest.json`; every listed file
    must be present with the listed size and SHA-256 (and a good CRC); nothing
    else may be in it; no member path may escape the extraction folder; and
    SHA256SUMS must agree with the manifest. Raises `ArchiveError` naming the
    file and the problem. Memory stays flat in the number of members: they are
    checked one at a time against records in a temporary `Spool`.

    A zip made again from the unpacked files verifies too (`exporters.repack`):
    folder entries and the files macOS adds are passed over, names are read
    as the zipping tool meant them, and one top folder around everything is
    dropped; unsafe names are refused wherever they appear.
    """
    return _verified(Path(path))[0]
