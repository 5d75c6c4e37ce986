"""Compute what the store should report for an upload, and judge what it did report.

Why our own arithmetic: moto accepts a wrong `ChecksumSHA256` and several
S3-compatible stores ignore checksum headers, so "the store said OK" proves
nothing. We hash the archive ourselves (SHA-256 for the checksum, MD5 for the
ETag) and compare what HEAD reports; when the report is missing or disagrees,
the archive is downloaded again and hashed, which settles it either way.
"""

from __future__ import annotations

import base64
import hashlib
import io
import os
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO

BLOCK = 1 << 20
_MD5_ETAG = re.compile(r"^[0-9a-f]{32}(-\d+)?$")
_KMS = ("aws:kms", "aws:kms:dsse")


def b64(digest: bytes) -> str:
    return base64.b64encode(digest).decode("ascii")


@dataclass(frozen=True)
class Part:
    """One multipart part: where it sits in the file and its digests."""

    number: int
    offset: int
    size: int
    sha256: bytes
    md5: bytes

    @property
    def sha256_b64(self) -> str:
        return b64(self.sha256)


@dataclass(frozen=True)
class Expected:
    """What a correct copy of the upload looks like from the store's side."""

    size: int
    sha256_hex: str  # of the whole object
    md5: bytes = b""  # of the whole object (single part only)
    parts: tuple[Part, ...] = field(default=())

    @property
    def checksum_b64(self) -> str:
        """`ChecksumSHA256` as S3 reports it: plain for one part, composite for multipart."""
        if not self.parts:
            return b64(bytes.fromhex(self.sha256_hex))
        return b64(hashlib.sha256(b"".join(p.sha256 for p in self.parts)).digest())

    @property
    def etag(self) -> str:
        """The ETag an MD5-based store computes (`md5-of-md5s-N` for multipart)."""
        if not self.parts:
            return self.md5.hex()
        joined = hashlib.md5(b"".join(p.md5 for p in self.parts), usedforsecurity=False)
        return f"{joined.hexdigest()}-{len(self.parts)}"


def hash_range(handle: BinaryIO, offset: int, size: int, whole: Any = None) -> tuple[bytes, bytes]:
    """SHA-256 and MD5 of one byte range; also feed it to `whole` (a running hash) if given."""
    sha, md5 = hashlib.sha256(), hashlib.md5(usedforsecurity=False)
    handle.seek(offset)
    left = size
    while left:
        block = handle.read(min(BLOCK, left))
        if not block:
            raise OSError(f"the archive is shorter than expected at byte {offset + size - left}")
        sha.update(block)
        md5.update(block)
        if whole is not None:
            whole.update(block)
        left -= len(block)
    return sha.digest(), md5.digest()


def expected_single(path: Path, size: int) -> Expected:
    """Hash a whole file for a single-part upload."""
    with path.open("rb") as handle:
        sha, md5 = hash_range(handle, 0, size)
    return Expected(size=size, sha256_hex=sha.hex(), md5=md5)


def plan_parts(size: int, part_size: int) -> list[tuple[int, int, int]]:
    """(number, offset, size) for each part; every part but the last is `part_size`."""
    count = max(1, -(-size // part_size))
    return [(n + 1, n * part_size, min(part_size, size - n * part_size)) for n in range(count)]


class FileSlice(io.RawIOBase):
    """A read-only, seekable window onto part of a file, so parts stream from disk.

    Why not bytes: holding each in-flight part in memory costs part size times
    concurrency (and urllib3 copies small bodies once more); streaming keeps
    memory flat whatever the archive size. botocore rewinds it on retries.
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


@dataclass(frozen=True)
class Verdict:
    """The judgement on one HEAD response."""

    state: str  # "verified", "corrupt" or "redownload"
    detail: str
    warning: str | None = None


def checksum_matches(reported: str, expected: Expected) -> bool:
    """Compare a reported `ChecksumSHA256`, with or without AWS's `-N` part-count suffix."""
    value, _, count = reported.partition("-")
    if count and (not expected.parts or count != str(len(expected.parts))):
        return False
    return value == expected.checksum_b64


def etag_verdict(head: dict[str, Any], expected: Expected) -> bool | None:
    """True/False if the ETag is an MD5 we can compare; None if not (KMS, SSE-C, odd stores)."""
    etag = str(head.get("ETag") or "").strip('"').lower()
    encrypted = head.get("ServerSideEncryption") in _KMS or head.get("SSECustomerAlgorithm")
    if encrypted or not _MD5_ETAG.match(etag):
        return None
    return etag == expected.etag


def judge_head(head: dict[str, Any], expected: Expected) -> Verdict:
    """Decide from HEAD alone when possible; ask for a re-download when the evidence is thin."""
    size = head.get("ContentLength")
    if size != expected.size:
        return Verdict("corrupt", f"the stored object is {size} bytes, the archive {expected.size}")
    reported = head.get("ChecksumSHA256")
    sha_ok = None if not reported else checksum_matches(str(reported), expected)
    etag_ok = etag_verdict(head, expected)
    if sha_ok and etag_ok is not False:
        extra = " and the MD5 ETag" if etag_ok else ""
        return Verdict("verified", f"verified by HEAD: size, SHA-256{extra} match")
    if sha_ok is None and etag_ok:
        return Verdict(
            "verified",
            "verified by HEAD: size and MD5 ETag match",
            "this store does not support SHA-256 checksums; verified by size and MD5 ETag",
        )
    if sha_ok is False:
        why = "the store reported a different SHA-256 checksum"
    elif etag_ok is False:
        why = "the store's ETag is not the MD5 of what was sent"
    else:
        why = "this store does not support SHA-256 checksums"
    return Verdict("redownload", why)


def stream_sha256(chunks: Iterable[bytes]) -> tuple[str, int]:
    """SHA-256 hex and length of a streamed body."""
    digest, total = hashlib.sha256(), 0
    for chunk in chunks:
        digest.update(chunk)
        total += len(chunk)
    return digest.hexdigest(), total
