"""Byte plumbing for the archive bucket: digests, file windows for parts, a reader over a response.

Why our own small versions rather than `delivery`'s: store must not import
delivery (the import contracts forbid it), and these few pieces are all the
archive bucket needs. Everything here streams: memory stays flat whatever the
archive's size.
"""

from __future__ import annotations

import base64
import hashlib
import io
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO

BLOCK = 1 << 20
READ_CHUNK = 256 << 10


@dataclass(frozen=True)
class Expected:
    """What a correct stored copy looks like: size, SHA-256 and, per multipart part, (SHA-256, MD5)."""

    size: int
    sha256_hex: str
    md5: bytes = b""  # of the whole file (single-part uploads only)
    parts: tuple[tuple[bytes, bytes], ...] = field(default=())

    @property
    def checksum_b64(self) -> str:
        """`ChecksumSHA256` as S3 reports it: plain for one part, the hash of part hashes for multipart."""
        if not self.parts:
            return _b64(bytes.fromhex(self.sha256_hex))
        return _b64(hashlib.sha256(b"".join(sha for sha, _ in self.parts)).digest())

    @property
    def etag(self) -> str:
        """The ETag an MD5-based store computes (`md5-of-md5s-N` for multipart)."""
        if not self.parts:
            return self.md5.hex()
        joined = hashlib.md5(b"".join(md5 for _, md5 in self.parts), usedforsecurity=False)
        return f"{joined.hexdigest()}-{len(self.parts)}"


def hash_range(handle: BinaryIO, offset: int, length: int, whole: Any = None) -> tuple[bytes, bytes]:
    """SHA-256 and MD5 of one byte range, also fed to `whole` (a running hash) if given."""
    sha, md5 = hashlib.sha256(), hashlib.md5(usedforsecurity=False)
    handle.seek(offset)
    left = length
    while left:
        block = handle.read(min(BLOCK, left))
        if not block:
            raise OSError(f"the file ended {left} bytes early")
        sha.update(block)
        md5.update(block)
        if whole is not None:
            whole.update(block)
        left -= len(block)
    return sha.digest(), md5.digest()


def hash_file(path: Path, size: int) -> Expected:
    """Digests of a whole file for a single-part upload."""
    with path.open("rb") as handle:
        sha, md5 = hash_range(handle, 0, size)
    return Expected(size=size, sha256_hex=sha.hex(), md5=md5)


def plan_parts(size: int, part_size: int) -> list[tuple[int, int, int]]:
    """(number, offset, length) of each part; every part but the last is `part_size`."""
    count = max(1, -(-size // part_size))
    return [(n + 1, n * part_size, min(part_size, size - n * part_size)) for n in range(count)]


class FileSlice(io.RawIOBase):
    """A read-only, seekable window onto part of a file, so a request body streams from disk.

    botocore needs seek/tell to rewind the body when it retries a request.
    """

    def __init__(self, path: Path, offset: int, size: int) -> None:
        super().__init__()
        self._fd = os.open(path, os.O_RDONLY)
        self._offset = offset
        self._size = size
        self._pos = 0

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def __len__(self) -> int:
        return self._size

    def tell(self) -> int:
        return self._pos

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        base = {io.SEEK_SET: 0, io.SEEK_CUR: self._pos, io.SEEK_END: self._size}[whence]
        self._pos = max(0, min(self._size, base + offset))
        return self._pos

    def read(self, size: int | None = -1) -> bytes:
        left = self._size - self._pos
        want = left if size is None or size < 0 else min(size, left)
        if want <= 0:
            return b""
        data = os.pread(self._fd, want, self._offset + self._pos)
        self._pos += len(data)
        return data

    def readinto(self, buffer: Any) -> int:
        data = self.read(len(buffer))
        buffer[: len(data)] = data
        return len(data)

    def close(self) -> None:
        if not self.closed:
            os.close(self._fd)
        super().close()


class BodyReader(io.RawIOBase):
    """A raw reader over botocore's `StreamingBody`, so callers get an ordinary binary file.

    `StreamingBody` raises if the connection ends before Content-Length bytes
    arrived, so a truncated download is an error, not a short archive.
    """

    def __init__(self, body: Any) -> None:
        super().__init__()
        self._body = body

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        data = self._body.read(min(len(buffer), READ_CHUNK))  # bounded, however much the caller asks for
        buffer[: len(data)] = data
        return len(data)

    def close(self) -> None:
        if not self.closed:
            self._body.close()
        super().close()


def _b64(digest: bytes) -> str:
    return base64.b64encode(digest).decode("ascii")
