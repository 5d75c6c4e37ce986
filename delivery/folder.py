"""Deliver archives into a local folder (a mounted backup disk, a synced folder, a NAS share).

Why written this way (restic's write-once names, Radicale's atomic write):
- The archive is copied to a temporary name in the same folder, fsynced,
  then linked to its final name with `os.link`, which fails if the name
  exists: an archive already there is never replaced, even by a concurrent
  delivery, and a reader never sees half a file.
- The copy is hashed while it is written and read back from disk afterwards:
  the receipt is only issued when size and SHA-256 match what was verified.
- The same archive delivered again (a retried run) is accepted as already
  delivered; a different file under the same name is refused permanently.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path

from delivery.contract import Delivery, Payload, Receipt, archive_unreadable
from errors import DeliveryError

BLOCK = 1024 * 1024


@dataclass(frozen=True)
class FolderSettings:
    """Where to put archives; `path` must be an existing folder the service may write to."""

    path: Path

    def __post_init__(self) -> None:
        if not str(self.path):
            raise ValueError("the delivery folder is not set")
        object.__setattr__(self, "path", Path(self.path))


class FolderDelivery(Delivery):
    """Write each archive to `<folder>/<filename>` once, atomically, and check it on disk."""

    kind = "folder"

    def __init__(self, settings: FolderSettings) -> None:
        self.settings = settings

    def __repr__(self) -> str:
        return f"FolderDelivery({str(self.settings.path)!r})"

    def deliver(self, payload: Payload) -> Receipt:
        """Copy, fsync, link into place without replacing anything, verify; or raise `DeliveryError`."""
        target = self._target(payload.filename)
        if target.exists():
            return self._accept_existing(payload, target)
        folder = self._folder()
        temporary = self._copy(payload, folder)
        try:
            try:
                os.link(temporary, target)  # fails if the name exists: never overwrite
            except FileExistsError:
                return self._accept_existing(payload, target)
            except OSError as exc:
                raise _error(exc, f"cannot create {target}", permanent=exc.errno in _PERMANENT) from None
        finally:
            with contextlib.suppress(OSError):
                os.unlink(temporary)
        _fsync_dir(folder)
        size, digest = _hash_file(target)
        if size != payload.size or digest != payload.sha256.lower():
            with contextlib.suppress(OSError):
                target.unlink()
            raise DeliveryError(
                f"{target} reads back as {size} bytes with another SHA-256; removed",
                permanent=False,
                user_message="The archive was damaged while it was written to the folder; it was removed.",
            )
        return Receipt(location=str(target), detail="written and read back: size and SHA-256 match")

    def test_connection(self) -> str:
        """Write, read back and remove a small probe file."""
        folder = self._folder()
        try:
            with tempfile.NamedTemporaryFile(dir=folder, prefix=".lifeboat-connection-test-") as probe:
                probe.write(b"Lifeboat connection test\n")
                probe.flush()
                os.fsync(probe.fileno())
        except OSError as exc:
            raise _error(exc, f"cannot write to {folder}", permanent=exc.errno in _PERMANENT) from None
        return f"wrote and removed a test file in {folder}"

    def _folder(self) -> Path:
        folder = self.settings.path
        if not folder.is_dir():
            raise DeliveryError(
                f"{folder} is not a folder",
                permanent=True,
                user_message=f"The delivery folder {folder} does not exist (or is not a folder); create it "
                "or mount the disk.",
            )
        return folder

    def _target(self, filename: str) -> Path:
        if not filename or "/" in filename or "\\" in filename or filename.startswith(".") or "\0" in filename:
            raise DeliveryError(f"unusable archive file name {filename!r}", permanent=True)
        return self.settings.path / filename

    def _copy(self, payload: Payload, folder: Path) -> Path:
        """Copy the archive to a temporary file in `folder`, hashing it; fsync it."""
        digest, size = hashlib.sha256(), 0
        try:
            source = payload.path.open("rb")
        except OSError as exc:
            raise archive_unreadable(payload, exc) from None
        try:
            handle, name = tempfile.mkstemp(dir=folder, prefix=".lifeboat-", suffix=".part")
        except OSError as exc:
            source.close()
            raise _error(exc, f"cannot write to {folder}", permanent=exc.errno in _PERMANENT) from None
        try:
            with source, os.fdopen(handle, "wb") as out:
                while block := source.read(BLOCK):
                    digest.update(block)
                    size += len(block)
                    out.write(block)
                out.flush()
                os.fsync(out.fileno())
        except OSError as exc:
            os.unlink(name)
            raise _error(exc, f"writing to {folder} failed", permanent=exc.errno in _PERMANENT) from None
        if size != payload.size or digest.hexdigest() != payload.sha256.lower():
            os.unlink(name)
            raise DeliveryError(
                f"{payload.path} is not the verified archive (size or SHA-256 differ)",
                permanent=True,
                user_message="The archive changed on disk after it was verified. Run the export again.",
            )
        return Path(name)

    def _accept_existing(self, payload: Payload, target: Path) -> Receipt:
        """A file is already there: fine if it is this very archive (an earlier attempt)."""
        size, digest = _hash_file(target)
        if size == payload.size and digest == payload.sha256.lower():
            return Receipt(location=str(target), detail="already delivered by an earlier attempt; SHA-256 matches")
        raise DeliveryError(
            f"{target} exists and differs from this archive",
            permanent=True,
            user_message=f"A different file already exists at {target}; Lifeboat never overwrites. Move or delete it.",
        )


# Errors a retry will not fix: the folder's permissions, a read-only disk, a name too long.
_PERMANENT = {errno.EACCES, errno.EPERM, errno.EROFS, errno.ENAMETOOLONG, errno.ENOTDIR, errno.EISDIR}


def _error(exc: OSError, what: str, *, permanent: bool) -> DeliveryError:
    reason = exc.strerror or type(exc).__name__
    hint = "" if permanent else " (will retry)"
    return DeliveryError(
        f"{what}: {reason}", permanent=permanent, user_message=f"{what[:1].upper()}{what[1:]}: {reason}{hint}."
    )


def _hash_file(path: Path) -> tuple[int, str]:
    digest, size = hashlib.sha256(), 0
    try:
        with path.open("rb") as file:
            while block := file.read(BLOCK):
                digest.update(block)
                size += len(block)
    except OSError as exc:
        raise _error(exc, f"cannot read back {path}", permanent=False) from None
    return size, digest.hexdigest()


def _fsync_dir(folder: Path) -> None:
    """Make the new name durable (POSIX); some file systems cannot fsync a folder."""
    with contextlib.suppress(OSError):
        fd = os.open(folder, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
