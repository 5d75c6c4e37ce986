"""Upload one archive file into the bucket without overwriting anything, single-part or multipart.

Why not boto3's `upload_file`: it cannot send a SHA-256 we computed per part,
and with checksums switched on botocore sends CRC trailers several
S3-compatible stores reject. Here every request carries `Content-MD5` and
`x-amz-checksum-sha256` computed from the file, parts stream from disk one at
a time (memory stays flat), and the request that creates the object carries
`If-None-Match: *`.

Stores differ, so two headers are discovered: one refused (400/501 naming it)
is dropped for the rest of the process, with a warning, and the upload is
tried again without it. Without `If-None-Match` the caller checks for an
existing object first (see `store.archive_bucket`).
"""

from __future__ import annotations

import base64
import hashlib
import logging
from pathlib import Path
from typing import Any

from botocore.exceptions import ClientError

from store.archive_bucket_io import Expected, FileSlice, hash_file, hash_range, plan_parts

log = logging.getLogger("lifeboat.archive_bucket")


class Taken(Exception):
    """The conditional write found the key taken; `retried` if an earlier attempt of ours may have landed."""

    def __init__(self, expected: Expected, retried: bool) -> None:
        super().__init__("the key is taken")
        self.expected = expected
        self.retried = retried


class SourceChanged(Exception):
    """The file on disk is not the archive that was recorded (SHA-256 differs); nothing was stored."""


class _Refused(Exception):
    def __init__(self, capability: str) -> None:
        super().__init__(capability)
        self.capability = capability


class Uploader:
    """Uploads for one client and bucket; remembers which headers the store refuses."""

    def __init__(self, client: Any, bucket: str, *, multipart_threshold: int, part_size: int) -> None:
        self.client = client
        self.bucket = bucket
        self.multipart_threshold = multipart_threshold
        self.part_size = part_size
        self.conditional_writes = True
        self.checksum_headers = True

    def upload(self, key: str, source: Path, size: int, sha256: str) -> Expected:
        """Store `source` as `key`; return what the stored object should be.

        Raises `Taken`, `SourceChanged`, `OSError` (reading the file) or
        botocore's errors, which the caller maps.
        """
        while True:
            try:
                if size < self.multipart_threshold:
                    return self._single(key, source, size, sha256)
                return self._multipart(key, source, size, sha256)
            except _Refused as refused:
                self._drop(refused.capability)

    def _single(self, key: str, source: Path, size: int, sha256: str) -> Expected:
        expected = hash_file(source, size)
        _check_source(expected.sha256_hex, sha256)
        call: dict[str, Any] = {
            "Bucket": self.bucket,
            "Key": key,
            "ContentLength": size,
            "ContentType": "application/zip",
            "ContentMD5": _b64(expected.md5),
        }
        if self.checksum_headers:
            call |= {"ChecksumAlgorithm": "SHA256", "ChecksumSHA256": expected.checksum_b64}
        if self.conditional_writes:
            call["IfNoneMatch"] = "*"
        with FileSlice(source, 0, size) as body:
            try:
                self.client.put_object(Body=body, **call)
            except ClientError as exc:
                self._raise_known(exc, expected)
                raise
        return expected

    def _multipart(self, key: str, source: Path, size: int, sha256: str) -> Expected:
        """Each part is hashed just before it is sent from disk; any failure aborts the upload."""
        checksums = self.checksum_headers
        create: dict[str, Any] = {"Bucket": self.bucket, "Key": key, "ContentType": "application/zip"}
        if checksums:
            create["ChecksumAlgorithm"] = "SHA256"
        try:
            upload_id = self.client.create_multipart_upload(**create)["UploadId"]
        except ClientError as exc:
            self._raise_known(exc, None)
            raise
        try:
            whole = hashlib.sha256()
            listed: list[dict[str, Any]] = []
            digests: list[tuple[bytes, bytes]] = []
            with source.open("rb") as handle:
                for number, offset, length in plan_parts(size, self.part_size):
                    part_sha, part_md5 = hash_range(handle, offset, length, whole)
                    args: dict[str, Any] = {
                        "Bucket": self.bucket,
                        "Key": key,
                        "UploadId": upload_id,
                        "PartNumber": number,
                        "ContentLength": length,
                        "ContentMD5": _b64(part_md5),
                    }
                    entry: dict[str, Any] = {"PartNumber": number}
                    if checksums:
                        args |= {"ChecksumAlgorithm": "SHA256", "ChecksumSHA256": _b64(part_sha)}
                        entry["ChecksumSHA256"] = _b64(part_sha)
                    with FileSlice(source, offset, length) as body:
                        try:
                            entry["ETag"] = self.client.upload_part(Body=body, **args)["ETag"]
                        except ClientError as exc:
                            self._raise_known(exc, None)
                            raise
                    listed.append(entry)
                    digests.append((part_sha, part_md5))
            _check_source(whole.hexdigest(), sha256)
            expected = Expected(size=size, sha256_hex=sha256, parts=tuple(digests))
            self._complete(key, upload_id, listed, expected)
        except BaseException:
            self._abort(key, upload_id)
            raise
        return expected

    def _complete(self, key: str, upload_id: str, listed: list[dict[str, Any]], expected: Expected) -> None:
        args: dict[str, Any] = {
            "Bucket": self.bucket,
            "Key": key,
            "UploadId": upload_id,
            "MultipartUpload": {"Parts": listed},
        }
        while True:
            call = dict(args, IfNoneMatch="*") if self.conditional_writes else args
            try:
                self.client.complete_multipart_upload(**call)
                return
            except ClientError as exc:
                if _precondition_failed(exc):
                    raise Taken(expected, _retried(exc)) from None
                if _refused(exc) == "conditional" and self.conditional_writes:
                    self._drop("conditional")  # the parts are up: complete again without the header
                    continue
                raise

    def _abort(self, key: str, upload_id: str) -> None:
        """Best effort: an abandoned upload costs storage until a lifecycle rule clears it."""
        try:
            self.client.abort_multipart_upload(Bucket=self.bucket, Key=key, UploadId=upload_id)
        except Exception:  # the original failure is the one to report
            log.warning("could not abort a multipart upload", extra={"key": key})

    def _raise_known(self, exc: ClientError, expected: Expected | None) -> None:
        """Turn "key taken" and "header refused" into our exceptions; return for anything else."""
        if expected is not None and _precondition_failed(exc):
            raise Taken(expected, _retried(exc)) from None
        capability = _refused(exc)
        if capability is not None and getattr(self, _FLAGS[capability]):
            raise _Refused(capability) from None

    def _drop(self, capability: str) -> None:
        setattr(self, _FLAGS[capability], False)
        if capability == "checksums":
            log.warning("the archive bucket refuses SHA-256 checksum headers; verifying uploads by reading back")
        else:
            log.warning("the archive bucket refuses If-None-Match; checking for an existing object first (racy)")


_FLAGS = {"checksums": "checksum_headers", "conditional": "conditional_writes"}


def _check_source(actual_hex: str, recorded_hex: str) -> None:
    if actual_hex != recorded_hex:
        raise SourceChanged("the file does not match its recorded SHA-256")


def _b64(digest: bytes) -> str:
    return base64.b64encode(digest).decode("ascii")


def _precondition_failed(exc: ClientError) -> bool:
    code = str(exc.response.get("Error", {}).get("Code", ""))
    status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
    return code in {"PreconditionFailed", "412"} or status == 412


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
