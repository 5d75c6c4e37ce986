"""Archives in an S3-compatible bucket the operator owns, so every node reads the same ones.

Why a bucket: with archives on local disk, web, workers and scheduler on
different hosts need a shared NFS volume. With this backend they share only
PostgreSQL, Redis and one bucket; a web process serves an archive another host
wrote, by redirecting to a short-lived presigned URL (or streaming `open()`).

Written directly on boto3 (store imports no delivery), and small on purpose:
one known store, one operator. No SSRF guard: the endpoint comes from the
operator's settings, never from a user, unlike the users' own buckets in
`delivery/`.

Integrity, because "the store said 200" proves little (moto and some
S3-compatible stores accept a wrong `x-amz-checksum-sha256` and a wrong
`Content-MD5`): each upload sends the SHA-256 and MD5 we computed, and is then
checked by HEAD: size, the SHA-256 checksum (`ChecksumMode=ENABLED`) and, where
the ETag is an MD5, the ETag. A store that reports no SHA-256 gets the object
read back and hashed instead. A mismatch deletes the object and raises.

Never overwriting: writes carry `If-None-Match: *`. A store that refuses that
header is remembered and then checked with HEAD before the write; that leaves
a race (two writers of one key between HEAD and PUT, the later one wins),
harmless here because keys hold a fresh archive ID and only its own run
writes them.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import io
import logging
import re
import threading
import urllib.parse
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO

import boto3
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

from store.archive_bucket_io import READ_CHUNK, BodyReader, Expected
from store.archive_bucket_upload import SourceChanged, Taken, Uploader
from store.archive_files import ArchiveExistsError, ArchiveFilesError, ArchiveMissingError

log = logging.getLogger("lifeboat.archive_bucket")

MiB = 1 << 20
MAX_PRESIGN_SECONDS = 7 * 24 * 3600  # SigV4's limit
_MD5_ETAG = re.compile(r"^[0-9a-f]{32}(-\d+)?$")
_SAFE_RELPATH = re.compile(r"^[A-Za-z0-9._-]+(/[A-Za-z0-9._-]+)*$")


@dataclass(frozen=True)
class BucketSettings:
    """Where the operator's bucket is and how to reach it.

    Without an access key pair boto3's default chain is used (environment,
    shared config, instance profile, IRSA); presigned URLs then live at most
    as long as those temporary credentials.
    """

    bucket: str
    scratch_dir: Path  # local folder for exports being written before upload
    prefix: str = ""  # e.g. "archives/"; keys are prefix + relpath
    endpoint_url: str | None = None  # None: AWS itself
    region: str | None = None
    access_key_id: str | None = None
    secret_access_key: str | None = field(default=None, repr=False)
    path_style: bool = False
    redirect_downloads: bool = True  # False: download_url() is None and the web streams open()
    multipart_threshold: int = 64 * MiB
    part_size: int = 16 * MiB  # S3 wants at least 5 MiB for every part but the last
    connect_timeout: float = 10.0
    read_timeout: float = 60.0
    max_attempts: int = 4

    def __post_init__(self) -> None:
        if not self.bucket:
            raise ValueError("the archive bucket needs a name")
        if bool(self.access_key_id) != bool(self.secret_access_key):
            raise ValueError("give both the access key ID and the secret access key, or neither")
        if self.part_size < 5 * MiB or self.multipart_threshold < self.part_size:
            raise ValueError("part_size must be at least 5 MiB and multipart_threshold at least part_size")


class BucketArchiveFiles:
    """The `ArchiveFiles` protocol on an S3-compatible bucket."""

    def __init__(self, settings: BucketSettings) -> None:
        self.settings = settings
        self._prefix = settings.prefix.strip("/") + "/" if settings.prefix.strip("/") else ""
        self._client: Any = None
        self._uploader: Uploader | None = None
        self._lock = threading.Lock()

    # -- the protocol -----------------------------------------------------------------

    def scratch(self) -> Path:
        self.settings.scratch_dir.mkdir(parents=True, exist_ok=True)
        return self.settings.scratch_dir

    def local_path(self, relpath: str) -> Path | None:
        return None

    def put(self, relpath: str, source: Path, *, sha256: str, size: int) -> None:
        """Upload `source` as `relpath`, never replacing anything, and prove what was stored."""
        key = self.key(relpath)
        try:
            actual = source.stat().st_size
        except OSError as exc:
            raise ArchiveFilesError(f"cannot read {source}: {exc.strerror}") from exc
        if actual != size:
            raise ArchiveFilesError(f"{source} is {actual} bytes, expected {size}; not stored")
        if not self.uploader.conditional_writes and self.exists(relpath):
            raise ArchiveExistsError(f"{relpath} is already stored; not overwritten")
        try:
            expected = self.uploader.upload(key, source, size, sha256.lower())
        except Taken as taken:
            # A retried request whose first attempt landed finds its own object: that is success.
            if taken.retried and self._judge(key, taken.expected) is None:
                return
            raise ArchiveExistsError(f"{relpath} is already stored; not overwritten") from None
        except SourceChanged:
            raise ArchiveFilesError(f"{source} does not match its recorded SHA-256; not stored") from None
        except OSError as exc:
            raise ArchiveFilesError(f"cannot read {source}: {exc}") from exc
        except (ClientError, BotoCoreError) as exc:
            raise self._error("upload", key, exc) from exc
        problem = self._judge(key, expected)
        if problem is not None:
            self._delete_key(key)
            raise ArchiveFilesError(f"{relpath} was stored damaged ({problem}); the object was removed")

    def open(self, relpath: str) -> BinaryIO:
        """A streaming reader of the stored object; memory stays flat whatever its size."""
        try:
            answer = self.client.get_object(Bucket=self.settings.bucket, Key=self.key(relpath))
        except ClientError as exc:
            if _missing(exc):
                raise ArchiveMissingError(f"no archive stored as {relpath}") from None
            raise self._error("read", self.key(relpath), exc) from exc
        except BotoCoreError as exc:
            raise self._error("read", self.key(relpath), exc) from exc
        return io.BufferedReader(BodyReader(answer["Body"]), buffer_size=READ_CHUNK)

    def exists(self, relpath: str) -> bool:
        try:
            self.client.head_object(Bucket=self.settings.bucket, Key=self.key(relpath))
        except ClientError as exc:
            if _missing(exc):
                return False
            raise self._error("check", self.key(relpath), exc) from exc
        except BotoCoreError as exc:
            raise self._error("check", self.key(relpath), exc) from exc
        return True

    def delete(self, relpath: str) -> None:
        """Remove the object; a missing one is fine (S3 answers 204 either way)."""
        try:
            self._delete_key(self.key(relpath), quiet=False)
        except (ClientError, BotoCoreError) as exc:
            raise self._error("delete", self.key(relpath), exc) from exc

    def download_url(self, relpath: str, *, filename: str, expires_in: int) -> str | None:
        """A presigned GET that makes browsers save the file as `filename`; None when streaming.

        Signing needs no request, so it does not prove the object exists:
        callers that want a friendly "expired" page check `exists()` first.
        """
        if not self.settings.redirect_downloads:
            return None
        if not 1 <= expires_in <= MAX_PRESIGN_SECONDS:
            raise ValueError(f"expires_in must be between 1 and {MAX_PRESIGN_SECONDS} seconds")
        key = self.key(relpath)
        params = {
            "Bucket": self.settings.bucket,
            "Key": key,
            "ResponseContentDisposition": content_disposition(filename),
            "ResponseContentType": "application/zip",
            "ResponseCacheControl": "private, no-store",
        }
        try:
            return str(self.client.generate_presigned_url("get_object", Params=params, ExpiresIn=expires_in))
        except BotoCoreError as exc:  # e.g. no credentials found by the default chain
            raise self._error("sign a download link for", key, exc) from exc

    # -- the client and keys -----------------------------------------------------------

    @property
    def client(self) -> Any:
        """Built on first use: parsing botocore's S3 model costs a noticeable fraction of a second."""
        with self._lock:
            if self._client is None:
                self._client = self._build_client()
            return self._client

    @property
    def uploader(self) -> Uploader:
        """The uploader, which remembers the headers this store refused (for this process)."""
        client = self.client
        with self._lock:
            if self._uploader is None:
                s = self.settings
                self._uploader = Uploader(
                    client, s.bucket, multipart_threshold=s.multipart_threshold, part_size=s.part_size
                )
            return self._uploader

    def _build_client(self) -> Any:
        s = self.settings
        config = Config(
            region_name=s.region,
            signature_version="s3v4",
            s3={"addressing_style": "path" if s.path_style else "auto"},
            # boto3 >= 1.36 otherwise sends CRC trailers many S3-compatible stores reject;
            # we send SHA-256 ourselves and check what was stored.
            request_checksum_calculation="when_required",
            response_checksum_validation="when_required",
            retries={"mode": "standard", "max_attempts": s.max_attempts},
            connect_timeout=s.connect_timeout,
            read_timeout=s.read_timeout,
        )
        session = boto3.session.Session(  # our own session: the default one is not thread-safe to create
            aws_access_key_id=s.access_key_id,
            aws_secret_access_key=s.secret_access_key,
            region_name=s.region,
        )
        return session.client("s3", endpoint_url=s.endpoint_url, config=config)

    def stored_before(self, cutoff: dt.datetime) -> Iterator[str]:
        """Relpaths of objects under the prefix last written before `cutoff` (housekeeping's clean-up).

        A bucket holds no partial files (an upload appears whole or not at all);
        abandoned multipart uploads are for the bucket's lifecycle rule.
        """
        pages = self.client.get_paginator("list_objects_v2").paginate(Bucket=self.settings.bucket, Prefix=self._prefix)
        try:
            for page in pages:
                for item in page.get("Contents", []):
                    if item["LastModified"] < cutoff:
                        yield item["Key"][len(self._prefix) :]
        except (BotoCoreError, ClientError) as exc:
            raise self._error("list", self._prefix or "/", exc) from exc

    def key(self, relpath: str) -> str:
        """The object key for `relpath`; refuses anything that could leave the prefix."""
        if not _SAFE_RELPATH.match(relpath) or any(part in {".", ".."} for part in relpath.split("/")):
            raise ValueError(f"not an archive path: {relpath!r}")
        return self._prefix + relpath

    def close(self) -> None:
        with self._lock:
            if self._client is not None:
                self._client.close()
                self._client = None
                self._uploader = None

    # -- verification ----------------------------------------------------------------

    def _judge(self, key: str, expected: Expected) -> str | None:
        """None if the stored object is exactly `expected`, else what is wrong with it."""
        try:
            head = self.client.head_object(Bucket=self.settings.bucket, Key=key, ChecksumMode="ENABLED")
        except (ClientError, BotoCoreError) as exc:
            return f"it could not be checked: {exc}"
        if head.get("ContentLength") != expected.size:
            return f"{head.get('ContentLength')} bytes stored, {expected.size} sent"
        etag = str(head.get("ETag") or "").strip('"').lower()
        encrypted = str(head.get("ServerSideEncryption", "")).startswith("aws:kms") or head.get("SSECustomerAlgorithm")
        if _MD5_ETAG.match(etag) and not encrypted and etag != expected.etag:
            return "its ETag is not the MD5 of what was sent"
        reported = head.get("ChecksumSHA256")
        if reported:
            value, _, count = str(reported).partition("-")
            if value != expected.checksum_b64 or (count and count != str(len(expected.parts))):
                return "its SHA-256 checksum differs from what was sent"
            return None
        return self._reread(key, expected)

    def _reread(self, key: str, expected: Expected) -> str | None:
        """The store reports no SHA-256: read the object back and hash it."""
        digest, total = hashlib.sha256(), 0
        try:
            body = self.client.get_object(Bucket=self.settings.bucket, Key=key)["Body"]
            with body:
                for chunk in body.iter_chunks(MiB):
                    digest.update(chunk)
                    total += len(chunk)
        except (ClientError, BotoCoreError) as exc:
            return f"it could not be read back: {exc}"
        if total != expected.size or digest.hexdigest() != expected.sha256_hex:
            return "reading it back gave different bytes"
        return None

    def _delete_key(self, key: str, *, quiet: bool = True) -> None:
        try:
            self.client.delete_object(Bucket=self.settings.bucket, Key=key)
        except (ClientError, BotoCoreError):
            if not quiet:
                raise
            log.warning("could not remove a damaged archive object", extra={"key": key})

    def _error(self, action: str, key: str, exc: BaseException) -> ArchiveFilesError:
        return ArchiveFilesError(f"could not {action} s3://{self.settings.bucket}/{key}: {exc}")


def content_disposition(filename: str) -> str:
    """`attachment` with an ASCII fallback name and the exact name as RFC 6266 `filename*`."""
    fallback = "".join(c if 32 <= ord(c) < 127 and c not in '"\\;/' else "_" for c in filename) or "archive.zip"
    value = f'attachment; filename="{fallback}"'
    if fallback != filename:
        value += "; filename*=UTF-8''" + urllib.parse.quote(filename, safe="")
    return value


def _missing(exc: ClientError) -> bool:
    """A missing key (GET says NoSuchKey, HEAD only 404); NoSuchBucket is a setup error, not a missing archive."""
    return str(exc.response.get("Error", {}).get("Code", "")) in {"NoSuchKey", "NotFound", "404"}


__all__ = [
    "ArchiveExistsError",
    "ArchiveFilesError",
    "ArchiveMissingError",
    "BucketArchiveFiles",
    "BucketSettings",
    "content_disposition",
]
