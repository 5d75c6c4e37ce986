"""Write a verified ZIP archive entry by entry, and check or read one later.

Why streaming: a large account can hold gigabytes of attachments, so every
entry is copied chunk by chunk into `ZipFile.open(name, "w")` while its SHA-256
and size are counted; memory stays flat whatever the archive size.

Why temp file, verify, then place: an archive that appears under its final
name must be complete and correct. It is written to `.<name>.partial-<random>`
in the destination folder, fsynced, read back in full (each member's SHA-256,
size and ZIP CRC against the manifest), and only then linked into place without
ever replacing an existing archive. Any failure removes the partial file.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import hashlib
import os
import secrets
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
    checksums_text,
    manifest_from_meta,
    parse_manifest,
)
from exporters.paths import PathRegistry, collision_key, sanitize_component, unsafe_path_reason
from exporters.readme import readme_text

CHUNK = 1 << 20
_RESERVED_KEYS = frozenset(collision_key(n) for n in RESERVED_NAMES)
MAX_MANIFEST_BYTES = 256 << 20  # far above any real account; refuses zip bombs posing as one


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


def _zip_info(path: str, now: dt.datetime) -> zipfile.ZipInfo:
    stamp = now.astimezone(dt.UTC)
    date_time = (1980, 1, 1, 0, 0, 0) if stamp.year < 1980 else stamp.timetuple()[:6]
    info = zipfile.ZipInfo(path, date_time=date_time)  # type: ignore[arg-type]
    info.compress_type = zipfile.ZIP_DEFLATED
    info.external_attr = 0o644 << 16  # readable files once extracted (0 means "no permissions")
    return info


def _write_member(zf: zipfile.ZipFile, path: str, chunks: Iterable[bytes], now: dt.datetime) -> ManifestFile:
    if isinstance(chunks, bytes | bytearray | memoryview):
        chunks = [bytes(chunks)]  # iterating bytes would yield ints
    digest = hashlib.sha256()
    size = 0
    with zf.open(_zip_info(path, now), "w", force_zip64=True) as member:
        for chunk in chunks:
            digest.update(chunk)
            size += len(chunk)
            member.write(chunk)
    return ManifestFile(path=path, sha256=digest.hexdigest(), size=size)


def _write_zip(
    raw: IO[bytes],
    entries: Iterable[Entry],
    head: Manifest,
    now: dt.datetime,
    layout: Callable[[], Mapping[str, Any]] | None,
) -> None:
    checker = PathRegistry()
    files: list[ManifestFile] = []
    zf = zipfile.ZipFile(raw, "w", compression=zipfile.ZIP_DEFLATED)
    try:
        for entry in entries:
            if entry.path != README_NAME and collision_key(entry.path) in _RESERVED_KEYS:
                raise ArchiveError(f"entry {entry.path!r} uses a name the archive reserves for itself")
            _check_path(checker, entry.path)
            files.append(_write_member(zf, entry.path, entry.chunks, now))
        if layout is not None:
            head = _with_meta(head, "layout", layout())
        if not any(f.path == README_NAME for f in files):
            _check_path(checker, README_NAME)
            version = str(head.meta.get("vcard_version", "3.0"))
            text = readme_text(version, manifest=head).encode("utf-8")
            files.append(_write_member(zf, README_NAME, text, now))
        files.append(_write_member(zf, CHECKSUMS_NAME, checksums_text(files), now))
        manifest = replace(head, files=tuple(files))
        _write_member(zf, MANIFEST_NAME, manifest.to_json(), now)
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


def _read_checked(zf: zipfile.ZipFile, info: zipfile.ZipInfo, expected: ManifestFile) -> Iterator[bytes]:
    """Yield a member's bytes, raising `ArchiveError` at the end if they do not match."""
    path = expected.path
    if info.file_size != expected.size:
        raise ArchiveError(f"{path}: size is {info.file_size} bytes in the zip, {expected.size} in manifest.json")
    digest = hashlib.sha256()
    size = 0
    try:
        with zf.open(info) as member:
            while chunk := member.read(CHUNK):
                size += len(chunk)
                if size > expected.size:
                    raise ArchiveError(f"{path}: larger than the {expected.size} bytes manifest.json lists")
                digest.update(chunk)
                yield chunk
    except (
        zipfile.BadZipFile,
        zlib.error,
        EOFError,
        OSError,
        RuntimeError,
        NotImplementedError,
    ) as exc:
        raise ArchiveError(f"{path}: damaged in the zip ({exc})") from None
    if size != expected.size:
        raise ArchiveError(f"{path}: {size} bytes, but manifest.json lists {expected.size}")
    if digest.hexdigest() != expected.sha256:
        raise ArchiveError(f"{path}: SHA-256 does not match manifest.json (the file was changed or damaged)")


class ArchiveReader:
    """A verified archive opened for restores: members are read by path and re-checked."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self.manifest = verify_archive(self.path)
        self._zip = zipfile.ZipFile(self.path)
        self._listed = {f.path: f for f in self.manifest.files}

    def __enter__(self) -> ArchiveReader:
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        self.close()

    def close(self) -> None:
        self._zip.close()

    def paths(self) -> list[str]:
        """The user data in the archive: every listed file but README, SHA256SUMS and manifest."""
        return [f.path for f in self.manifest.files if f.path not in RESERVED_NAMES]

    def open_member(self, path: str) -> bytes:
        """Return the bytes of `path`, re-checked; `KeyError` if the manifest does not list it."""
        expected = self._listed[path]
        try:
            info = self._zip.getinfo(path)
        except KeyError:
            raise ArchiveError(f"{path}: listed in manifest.json but missing from the zip") from None
        return b"".join(_read_checked(self._zip, info, expected))


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


def _open_zip(path: Path) -> zipfile.ZipFile:
    try:
        return zipfile.ZipFile(path)
    except FileNotFoundError:
        raise ArchiveError(f"{path} does not exist") from None
    except (zipfile.BadZipFile, OSError, ValueError) as exc:
        raise ArchiveError(f"{path} is not a readable ZIP archive; is it truncated? ({exc})") from None


def verify_archive(path: Path) -> Manifest:
    """Check the archive at `path` completely and return its manifest.

    It must be a zip with a known-format `manifest.json`; every listed file
    must be present with the listed size and SHA-256 (and a good CRC); nothing
    else may be in it; no member path may escape the extraction folder; and
    SHA256SUMS must agree with the manifest. Raises `ArchiveError` naming the
    file and the problem.
    """
    with _open_zip(Path(path)) as zf:
        infos = zf.infolist()
        names: dict[str, zipfile.ZipInfo] = {}
        for info in infos:
            reason = unsafe_path_reason(info.filename)
            if reason is not None:
                raise ArchiveError(f"member {info.filename!r} is unsafe to extract: {reason}")
            if info.filename in names:
                raise ArchiveError(f"member {info.filename!r} appears twice in the zip")
            names[info.filename] = info
        manifest_info = names.get(MANIFEST_NAME)
        if manifest_info is None:
            raise ArchiveError(f"{MANIFEST_NAME} is missing: this is not a complete Lifeboat archive")
        if manifest_info.file_size > MAX_MANIFEST_BYTES:
            raise ArchiveError(f"{MANIFEST_NAME} is implausibly large ({manifest_info.file_size} bytes)")
        try:
            manifest = parse_manifest(zf.read(manifest_info))
        except (
            zipfile.BadZipFile,
            zlib.error,
            EOFError,
            OSError,
            RuntimeError,
            NotImplementedError,
        ) as exc:
            raise ArchiveError(f"{MANIFEST_NAME}: damaged in the zip ({exc})") from None
        listed = {f.path for f in manifest.files}
        for required in (README_NAME, CHECKSUMS_NAME):
            if required not in listed:
                raise ArchiveError(f"{required}: not listed in manifest.json, which every archive has")
        for name in names:
            if name != MANIFEST_NAME and name not in listed:
                raise ArchiveError(f"{name}: in the zip but not listed in manifest.json (added later?)")
        for expected in manifest.files:
            info = names.get(expected.path)
            if info is None:
                raise ArchiveError(f"{expected.path}: listed in manifest.json but missing from the zip")
            if expected.path == CHECKSUMS_NAME:
                data = b"".join(_read_checked(zf, info, expected))
                if data != checksums_text(manifest.files):
                    raise ArchiveError(f"{CHECKSUMS_NAME}: does not agree with manifest.json")
                continue
            for _ in _read_checked(zf, info, expected):
                pass
    return manifest
