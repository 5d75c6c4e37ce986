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

import base64
import hashlib
import io
import logging
import re
import threading
import urllib.parse
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO

import boto3
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

from store.archive_bucket_io import BodyReader, Expected, FileSlice, hash_file, hash_range, plan_parts

try:
    from store.archive_files import ArchiveFilesError
except ImportError:  # pragma: no cover  MERGE: drop this fallback once a1's store/archive_files.py is in

    class ArchiveFilesError(Exception):  # type: ignore[no-redef]
        """Stand-in for `store.archive_files.ArchiveFilesError` until that module is merged."""


log = logging.getLogger("lifeboat.archive_bucket")

MiB = 1 << 20
MAX_PRESIGN_SECONDS = 7 * 24 * 3600  # SigV4's limit
_MD5_ETAG = re.compile(r"^[0-9a-f]{32}(-\d+)?$")
_SAFE_RELPATH = re.compile(r"^[A-Za-z0-9._-]+(/[A-Za-z0-9._-]+)*$")


class ArchiveExistsError(ArchiveFilesError, FileExistsError):
    """Something is already stored under that name; it was left alone."""


class ArchiveMissingError(ArchiveFilesError, FileNotFoundError):
    """Nothing is stored under that name (never written, expired or deleted)."""


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
        self._lock = threading.Lock()
        # Discovered per process: stores that refuse a header are remembered and spared it.
        self.conditional_writes = True
        self.checksum_headers = True

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
        if not self.conditional_writes and self.exists(relpath):
            raise ArchiveExistsError(f"{relpath} is already stored; not overwritten")
        try:
            if size < self.settings.multipart_threshold:
                expected = self._put_single(key, source, size, sha256.lower())
            else:
                expected = self._put_multipart(key, source, size, sha256.lower())
        except _Exists as exists:
            # A retried request whose first attempt landed finds its own object: that is success.
            if exists.retried and self._judge(key, exists.expected) is None:
                return
            raise ArchiveExistsError(f"{relpath} is already stored; not overwritten") from None
        except OSError as exc:
            raise ArchiveFilesError(f"cannot read {source}: {exc}") from exc
        problem = self._judge(key, expected)
        if problem is not None:
            self._delete_key(key)
            raise ArchiveFilesError(f"{relpath} was stored damaged ({problem}); the object was removed")

    def open(self, relpath: str) -> BinaryIO:
        """A streaming reader of the stored object; memory stays flat whatever its size."""
        try:
            answer = self.client.get_object(Bucket=self.settings.bucket, Key=self.key(relpath))
        except ClientError as exc:
            if _status(exc) == 404:
                raise ArchiveMissingError(f"no archive stored as {relpath}") from None
            raise self._error("read", relpath, exc) from exc
        except BotoCoreError as exc:
            raise self._error("read", relpath, exc) from exc
        return io.BufferedReader(BodyReader(answer["Body"]), buffer_size=MiB)

    def exists(self, relpath: str) -> bool:
        try:
            self.client.head_object(Bucket=self.settings.bucket, Key=self.key(relpath))
        except ClientError as exc:
            if _status(exc) == 404:
                return False
            raise self._error("check", relpath, exc) from exc
        except BotoCoreError as exc:
            raise self._error("check", relpath, exc) from exc
        return True

    def delete(self, relpath: str) -> None:
        """Remove the object; a missing one is fine (S3 answers 204 either way)."""
        try:
            self._delete_key(self.key(relpath), quiet=False)
        except (ClientError, BotoCoreError) as exc:
            raise self._error("delete", relpath, exc) from exc

    def download_url(self, relpath: str, *, filename: str, expires_in: int) -> str | None:
        """A presigned GET that makes browsers save the file as `filename`; None when streaming.

        Signing needs no request, so it does not prove the object exists:
        callers that want a friendly "expired" page check `exists()` first.
        """
        if not self.settings.redirect_downloads:
            return None
        if not 1 <= expires_in <= MAX_PRESIGN_SECONDS:
            raise ValueError(f"expires_in must be between 1 and {MAX_PRESIGN_SECONDS} seconds")
        return str(
            self.client.generate_presigned_url(
                "get_object",
                Params={
                    "Bucket": self.settings.bucket,
                    "Key": self.key(relpath),
                    "ResponseContentDisposition": content_disposition(filename),
                    "ResponseContentType": "application/zip",
                    "ResponseCacheControl": "private, no-store",
                },
                ExpiresIn=expires_in,
            )
        )

    # -- the client and keys -----------------------------------------------------------

    @property
    def client(self) -> Any:
        """Built on first use: parsing botocore's S3 model costs a noticeable fraction of a second."""
        with self._lock:
            if self._client is None:
                self._client = self._build_client()
            return self._client

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
            user_agent_appid="lifeboat-archives",
        )
        session = boto3.session.Session(  # our own session: the default one is not thread-safe to create
            aws_access_key_id=s.access_key_id,
            aws_secret_access_key=s.secret_access_key,
            region_name=s.region,
        )
        return session.client("s3", endpoint_url=s.endpoint_url, config=config)

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

    # -- uploads ------------------------------------------------------------------------

    def _put_single(self, key: str, source: Path, size: int, sha256: str) -> Expected:
        expected = hash_file(source, size)
        _check_source(source, expected.sha256_hex, sha256)
        args: dict[str, Any] = {
            "Bucket": self.settings.bucket,
            "Key": key,
            "ContentLength": size,
            "ContentType": "application/zip",
            "ContentMD5": _b64(expected.md5),
        }
        while True:
            call = dict(args)
            if self.checksum_headers:
                call |= {"ChecksumAlgorithm": "SHA256", "ChecksumSHA256": expected.checksum_b64}
            if self.conditional_writes:
                call["IfNoneMatch"] = "*"
            with FileSlice(source, 0, size) as body:
                try:
                    self.client.put_object(Body=body, **call)
                except ClientError as exc:
                    if _precondition_failed(exc):
                        raise _Exists(expected, _retried(exc)) from None
                    if self._drop_refused(exc):
                        continue
                    raise self._error("upload", key, exc) from exc
                except BotoCoreError as exc:
                    raise self._error("upload", key, exc) from exc
            return expected

    def _put_multipart(self, key: str, source: Path, size: int, sha256: str) -> Expected:
        """Parts stream from disk one at a time; each is hashed just before it is sent."""
        bucket = self.settings.bucket
        create: dict[str, Any] = {"Bucket": bucket, "Key": key, "ContentType": "application/zip"}
        if self.checksum_headers:
            create["ChecksumAlgorithm"] = "SHA256"
        try:
            upload_id = self.client.create_multipart_upload(**create)["UploadId"]
        except ClientError as exc:
            if self._drop_refused(exc):
                return self._put_multipart(key, source, size, sha256)
            raise self._error("upload", key, exc) from exc
        except BotoCoreError as exc:
            raise self._error("upload", key, exc) from exc
        try:
            whole = hashlib.sha256()
            parts: list[dict[str, Any]] = []
            digests: list[tuple[bytes, bytes]] = []
            with source.open("rb") as handle:
                for number, offset, length in plan_parts(size, self.settings.part_size):
                    part_sha, part_md5 = hash_range(handle, offset, length, whole)
                    args: dict[str, Any] = {
                        "Bucket": bucket,
                        "Key": key,
                        "UploadId": upload_id,
                        "PartNumber": number,
                        "ContentLength": length,
                        "ContentMD5": _b64(part_md5),
                    }
                    if "ChecksumAlgorithm" in create:
                        args |= {"ChecksumAlgorithm": "SHA256", "ChecksumSHA256": _b64(part_sha)}
                    with FileSlice(source, offset, length) as body:
                        etag = self.client.upload_part(Body=body, **args)["ETag"]
                    entry = {"PartNumber": number, "ETag": etag}
                    if "ChecksumAlgorithm" in create:
                        entry["ChecksumSHA256"] = _b64(part_sha)
                    parts.append(entry)
                    digests.append((part_sha, part_md5))
            _check_source(source, whole.hexdigest(), sha256)
            expected = Expected(size=size, sha256_hex=sha256, parts=tuple(digests))
            self._complete(key, upload_id, parts, expected)
        except BaseException as exc:
            self._abort(key, upload_id)
            if isinstance(exc, (ClientError, BotoCoreError)):
                raise self._error("upload", key, exc) from exc
            raise
        return expected

    def _complete(self, key: str, upload_id: str, parts: list[dict[str, Any]], expected: Expected) -> None:
        args: dict[str, Any] = {
            "Bucket": self.settings.bucket,
            "Key": key,
            "UploadId": upload_id,
            "MultipartUpload": {"Parts": parts},
        }
        while True:
            call = dict(args, IfNoneMatch="*") if self.conditional_writes else args
            try:
                self.client.complete_multipart_upload(**call)
                return
            except ClientError as exc:
                if _precondition_failed(exc):
                    raise _Exists(expected, _retried(exc)) from None
                if _refused(exc) == "conditional" and self.conditional_writes:
                    self._drop("conditional")
                    continue
                raise

    def _abort(self, key: str, upload_id: str) -> None:
        """Best effort: an abandoned upload costs storage until a lifecycle rule clears it."""
        try:
            self.client.abort_multipart_upload(Bucket=self.settings.bucket, Key=key, UploadId=upload_id)
        except (ClientError, BotoCoreError):
            log.warning("could not abort a multipart upload", extra={"key": key})

    def _drop_refused(self, exc: ClientError) -> bool:
        """Forget a header this store refused; True if the request should be tried again without it."""
        capability = _refused(exc)
        if capability == "checksums" and self.checksum_headers:
            self._drop("checksums")
            return True
        if capability == "conditional" and self.conditional_writes:
            self._drop("conditional")
            return True
        return False

    def _drop(self, capability: str) -> None:
        if capability == "checksums":
            self.checksum_headers = False
            log.warning("the archive bucket refuses SHA-256 checksum headers; verifying by reading back")
        else:
            self.conditional_writes = False
            log.warning("the archive bucket refuses If-None-Match; checking for existing objects first (racy)")

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

    def _error(self, action: str, relpath: str, exc: BaseException) -> ArchiveFilesError:
        where = f"s3://{self.settings.bucket}/{self._prefix}{relpath}" if "/" in relpath else relpath
        return ArchiveFilesError(f"could not {action} {where}: {exc}")


class _Exists(Exception):
    """The conditional write found the key taken; `retried` if an earlier attempt may have been ours."""

    def __init__(self, expected: Expected, retried: bool) -> None:
        super().__init__("exists")
        self.expected = expected
        self.retried = retried


def content_disposition(filename: str) -> str:
    """`attachment` with an ASCII fallback name and the exact name as RFC 6266 `filename*`."""
    fallback = "".join(c if 32 <= ord(c) < 127 and c not in '"\\;/' else "_" for c in filename) or "archive.zip"
    value = f'attachment; filename="{fallback}"'
    if fallback != filename:
        value += "; filename*=UTF-8''" + urllib.parse.quote(filename, safe="")
    return value


def _check_source(source: Path, actual_hex: str, recorded_hex: str) -> None:
    if actual_hex != recorded_hex:
        raise ArchiveFilesError(f"{source} does not match its recorded SHA-256; not stored")


def _b64(digest: bytes) -> str:
    return base64.b64encode(digest).decode("ascii")


def _status(exc: ClientError) -> int | None:
    status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
    code = str(exc.response.get("Error", {}).get("Code", ""))
    return 404 if code in {"NoSuchKey", "NotFound", "404"} else status


def _precondition_failed(exc: ClientError) -> bool:
    code = str(exc.response.get("Error", {}).get("Code", ""))
    return code in {"PreconditionFailed", "412"} or _status(exc) == 412


def _retried(exc: ClientError) -> bool:
    return bool(exc.response.get("ResponseMetadata", {}).get("RetryAttempts"))


def _refused(exc: ClientError) -> str | None:
    """Which header ("checksums" or "conditional") a 400/501 refuses, if that is what it says."""
    error = exc.response.get("Error", {}) or {}
    code = str(error.get("Code", ""))
    if code not in {"NotImplemented", "InvalidArgument", "InvalidRequest", "BadRequest", "501"}:
        return None
    text = " ".join(str(error.get(name, "")) for name in ("Header", "ArgumentName", "Message")).lower()
    if "checksum" in text:
        return "checksums"
    if "if-none-match" in text or "conditional" in text or code in {"NotImplemented", "501"}:
        return "conditional"
    return None


__all__ = [
    "ArchiveExistsError",
    "ArchiveFilesError",
    "ArchiveMissingError",
    "BucketArchiveFiles",
    "BucketSettings",
    "content_disposition",
]
