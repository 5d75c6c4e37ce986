"""Where archive files live: a small backend seam, and the one way a new archive is placed.

Why a seam: the embedded deployment keeps archives in a folder (`ARCHIVE_DIR`);
scale-out keeps them in an operator's bucket (`store.archive_bucket`) so web,
workers and scheduler share nothing but the database, Redis and that bucket.
Callers (jobs, the download view, the CLI) speak only `ArchiveFiles`.

Why placement lives here and not in the exporters: the exporters turn records
into bytes written to a file object; durability is a storage concern. A new
archive is written to a temporary file in `scratch()`, fsynced, verified by a
callback (the exporters' read-back verifier, passed in by jobs: the store knows
no formats), hashed, and only then `put()` under its final name, which never
replaces an existing archive (restic's write-once rule; Radicale's atomic write).
"""

from __future__ import annotations

import contextlib
import datetime as dt
import fcntl
import hashlib
import os
import re
import secrets
import shutil
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import BinaryIO, Generic, Protocol, TypeVar

from errors import LifeboatError

CHUNK = 1 << 20
T = TypeVar("T")


class ArchiveFilesError(LifeboatError):
    """An archive file could not be stored, found or removed; the message says which and why."""


class ArchiveExistsError(ArchiveFilesError, FileExistsError):
    """Something is already stored under that name; it was left alone (archives are never overwritten)."""


class ArchiveMissingError(ArchiveFilesError, FileNotFoundError):
    """Nothing is stored under that name (never written, expired or deleted)."""


class ArchiveFiles(Protocol):
    """Where archive files live. Relpaths are POSIX paths like `<user id>/<archive id>.zip`."""

    def scratch(self) -> Path:
        """A local folder for temporary files (for the local backend, on the store's own file system)."""
        ...

    def put(self, relpath: str, source: Path, *, sha256: str, size: int) -> None:
        """Store `source` as `relpath` atomically, never overwriting; check stored size and SHA-256 first.

        Raises `ArchiveFilesError`. `source` is the caller's to remove afterwards.
        """
        ...

    def open(self, relpath: str) -> BinaryIO:
        """A streaming read of the stored file; `ArchiveFilesError` if it is missing."""
        ...

    def local_path(self, relpath: str) -> Path | None:
        """A real file to sendfile or read (local backend); None for a bucket."""
        ...

    def exists(self, relpath: str) -> bool: ...

    def delete(self, relpath: str) -> None:
        """Remove `relpath`; a missing file is fine."""
        ...

    def download_url(self, relpath: str, *, filename: str, expires_in: int) -> str | None:
        """A presigned URL for a bucket; None means "serve it yourself"."""
        ...

    def stored_before(self, cutoff: dt.datetime) -> Iterator[str]:
        """Relpaths of every file (temporary ones included) last written before `cutoff`, for clean-up."""
        ...


def check_relpath(relpath: str) -> str:
    """Refuse relpaths that could leave the store (absolute, `..`, empty parts, backslashes)."""
    parts = PurePosixPath(relpath).parts
    if not relpath or relpath.startswith("/") or "\\" in relpath or any(p in ("", ".", "..") for p in parts):
        raise ArchiveFilesError(f"{relpath!r} is not a relative archive path")
    if relpath != "/".join(parts):
        raise ArchiveFilesError(f"{relpath!r} is not a plain relative archive path")
    return relpath


def file_digest(path: Path) -> tuple[str, int]:
    """SHA-256 (hex) and size of the file at `path`, read in 1 MiB pieces."""
    digest = hashlib.sha256()
    size = 0
    with path.open("rb") as f:
        while chunk := f.read(CHUNK):
            digest.update(chunk)
            size += len(chunk)
    return digest.hexdigest(), size


def fsync_dir(folder: Path) -> None:
    """Make a rename or link in `folder` durable (a no-op where folders cannot be opened)."""
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


# A temporary file's name, `.<name>.partial-<pid>-<random>`: the pid says who wrote it (for people), the lock
# that writer holds on it says whether it still does (for `remove_abandoned_partials`).
_PARTIAL = re.compile(r"\..+\.partial-[0-9]+-[0-9a-f]{16}")


@contextlib.contextmanager
def partial_file(final: Path) -> Iterator[Path]:
    """A new, empty, owner-only temporary file beside `final`, locked while in use and removed afterwards.

    Why the lock: a writer killed outright (SIGKILL, out of memory) runs no clean-up
    and leaves its partial file, and only the lock tells the next run or start-up
    (`remove_abandoned_partials`) that its writer is gone: the kernel drops an
    flock with the last descriptor of a dead process, while a live writer in
    another process keeps it, so its file is never taken from under it (a pid in
    the name alone could be reused, or belong to another container).
    """
    while True:
        path = final.with_name(f".{final.name}.partial-{os.getpid()}-{secrets.token_hex(8)}")
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0), 0o600)
        fcntl.flock(fd, fcntl.LOCK_EX)
        if _names(path, fd):
            break
        os.close(fd)  # removed as abandoned between its creation and the lock: take another name
    try:
        yield path
    finally:
        try:
            path.unlink(missing_ok=True)
        finally:
            os.close(fd)


def _names(path: Path, fd: int) -> bool:
    """Whether `path` is still the file open as `fd` (not removed, not replaced)."""
    try:
        return os.stat(path, follow_symlinks=False).st_ino == os.fstat(fd).st_ino
    except FileNotFoundError:
        return False


def partial_in_use(path: Path) -> bool:
    """Whether `path` is a `partial_file` whose writer still holds it (never to be removed then)."""
    return _lock_or_remove(path, remove=False) is False


def remove_abandoned_partials(folder: Path, *, nested: bool = True) -> int:
    """Remove the `partial_file`s in `folder` (and, `nested`, its subfolders) whose writer has ended.

    One look at each name and lock, whatever the age: what a killed export left
    goes at the next run or start-up instead of waiting for housekeeping's age
    limit. Other temporary files are left to that limit (`jobs.housekeeping`).
    """
    if not folder.is_dir():
        return 0
    found = [*folder.glob(".*.partial-*"), *(folder.glob("*/.*.partial-*") if nested else [])]
    return sum(1 for path in found if _lock_or_remove(path, remove=True))


def _lock_or_remove(path: Path, *, remove: bool) -> bool | None:
    """True: abandoned (and removed, with `remove`); False: its writer holds it; None: not a `partial_file`."""
    if not _PARTIAL.fullmatch(path.name):
        return None
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW)
    except OSError:
        return None  # gone already, or not a plain file
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return False
        if remove and _names(path, fd):
            path.unlink(missing_ok=True)  # under the lock: a writer that locks after this sees it gone
        return True
    finally:
        os.close(fd)


class LocalArchiveFiles:
    """Archives in a folder (`ARCHIVE_DIR`): the embedded default, shared by every process on the host."""

    def __init__(self, root: Path) -> None:
        self.root = Path(root)

    def _path(self, relpath: str) -> Path:
        return self.root / check_relpath(relpath)

    def scratch(self) -> Path:
        # The store's own folder: temporary files are dot-files there, on the same file system,
        # so `put` links them into place and `stored_before` finds the ones a crash left.
        self.root.mkdir(parents=True, exist_ok=True)
        return self.root

    def put(self, relpath: str, source: Path, *, sha256: str, size: int) -> None:
        final = self._path(relpath)
        final.parent.mkdir(parents=True, exist_ok=True)
        _place(Path(source), final)
        try:
            stored = file_digest(final)
        except OSError as exc:
            raise ArchiveFilesError(f"{final} cannot be read back ({exc})") from None
        if stored != (sha256, size):
            final.unlink(missing_ok=True)
            raise ArchiveFilesError(f"{final}: stored bytes differ from what was written (size or SHA-256)")
        fsync_dir(final.parent)

    def open(self, relpath: str) -> BinaryIO:
        try:
            return self._path(relpath).open("rb")
        except FileNotFoundError:
            raise ArchiveMissingError(f"{relpath} does not exist") from None

    def local_path(self, relpath: str) -> Path | None:
        return self._path(relpath)

    def exists(self, relpath: str) -> bool:
        return self._path(relpath).is_file()

    def delete(self, relpath: str) -> None:
        self._path(relpath).unlink(missing_ok=True)

    def download_url(self, relpath: str, *, filename: str, expires_in: int) -> str | None:
        return None

    def stored_before(self, cutoff: dt.datetime) -> Iterator[str]:
        if not self.root.is_dir():
            return
        limit = cutoff.timestamp()
        # Archives sit at `<user>/<file>`; temporary files of crashed writers at the top or there.
        for path in [*self.root.glob(".*"), *self.root.glob("*/*")]:
            if path.is_file() and path.stat().st_mtime <= limit:
                yield path.relative_to(self.root).as_posix()


def _place(temp: Path, final: Path) -> None:
    """Give `temp`'s bytes the name `final` atomically, refusing to replace an existing file."""
    try:
        os.link(temp, final)  # fails if `final` exists, unlike os.replace
    except FileExistsError:
        raise ArchiveExistsError(f"{final} already exists; archives are never overwritten") from None
    except OSError:
        # No hard links here (another file system, or none at all): check, then copy under a
        # temporary name and rename (a narrow race remains).
        if final.exists():
            raise ArchiveExistsError(f"{final} already exists; archives are never overwritten") from None
        with partial_file(final) as staged:
            shutil.copyfile(temp, staged)
            with staged.open("rb+") as f:
                os.fsync(f.fileno())
            os.replace(staged, final)


@dataclass(frozen=True)
class Stored(Generic[T]):
    """A file placed by `store_new`: what its verification returned, and its SHA-256 and size."""

    relpath: str
    sha256: str
    size: int
    verified: T


def store_new(
    files: ArchiveFiles,
    relpath: str,
    write: Callable[[BinaryIO], object],  # what it returns (a byte count, say) is ignored
    verify: Callable[[Path], T],
) -> Stored[T]:
    """Write a new file through `write`, fsync it, `verify` it, then `put` it as `relpath`.

    A file that appears under its final name is therefore complete, durable and
    verified; any failure removes the temporary file and raises. The temporary
    file is a `partial_file`, beside the final file in a folder store. Raises
    `ArchiveFilesError` if `relpath` already exists (files are never overwritten).
    """
    check_relpath(relpath)
    if files.exists(relpath):
        raise ArchiveExistsError(f"{relpath} already exists; archives are never overwritten")
    # In a folder store the temporary file sits beside the final one: same file system
    # (so `put` links it), and a crash leaves it where clean-up looks.
    final = files.local_path(relpath)
    folder = final.parent if final is not None else files.scratch()
    folder.mkdir(parents=True, exist_ok=True)
    with partial_file(folder / PurePosixPath(relpath).name) as temp:
        with temp.open("r+b") as raw:
            write(raw)
            raw.flush()
            os.fsync(raw.fileno())
        verified = verify(temp)
        sha256, size = file_digest(temp)
        files.put(relpath, temp, sha256=sha256, size=size)
    return Stored(relpath=relpath, sha256=sha256, size=size, verified=verified)


@contextlib.contextmanager
def local_copy(files: ArchiveFiles, relpath: str) -> Iterator[Path]:
    """A real file holding `relpath` for readers that need one (zip readers seek, senders stat).

    The stored file itself for a folder store; otherwise a temporary download in
    `scratch()`, removed afterwards. `ArchiveFilesError` if it is missing.
    """
    path = files.local_path(relpath)
    if path is not None:
        if not path.is_file():
            raise ArchiveMissingError(f"{relpath} does not exist")
        yield path
        return
    temp = files.scratch() / f".{PurePosixPath(relpath).name}.download-{secrets.token_hex(8)}"
    try:
        with files.open(relpath) as source, temp.open("xb") as out:
            shutil.copyfileobj(source, out, CHUNK)
        yield temp
    finally:
        temp.unlink(missing_ok=True)


def as_archive_files(where: ArchiveFiles | str | os.PathLike[str]) -> ArchiveFiles:
    """The archive store; a plain folder path means that folder (the embedded default, and most tests)."""
    return LocalArchiveFiles(Path(where)) if isinstance(where, str | os.PathLike) else where
