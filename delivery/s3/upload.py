"""Put one file into S3 without overwriting anything, single-part or multipart.

Why not boto3's `upload_file`: it cannot send a precomputed SHA-256 per part,
so with checksums on it falls back to botocore computing them, over HTTPS as
aws-chunked trailers that older MinIO, R2, B2, Ceph and Wasabi reject. Here
each request carries `x-amz-checksum-sha256` and `Content-MD5` headers that we
computed, parts stream from disk (flat memory), and the last request is
conditional (`If-None-Match: *`) so an existing archive is never replaced.

Stores differ, so two capabilities are discovered per upload and dropped with
a warning when refused: SHA-256 checksum headers and conditional writes.
"""

from __future__ import annotations

import contextlib
import hashlib
from collections import deque
from collections.abc import Callable, Mapping
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from botocore.exceptions import ClientError

from delivery.s3.checksums import (
    Expected,
    FileSlice,
    Part,
    b64,
    expected_single,
    hash_range,
    plan_parts,
)
from delivery.s3.object_lock import NOT_ENABLED, refused_for_lock
from delivery.s3.settings import TransferSettings
from errors import DeliveryError

Fail = Callable[[BaseException, str], DeliveryError]


class ObjectExistsError(Exception):
    """The key exists (the conditional write said so); the caller decides what that means."""


@dataclass(frozen=True)
class Stored:
    """An upload as the store acknowledged it: what it should hold, and the ETag and version id it answered.

    Why keep the answer: the ETag and version id are the receipt a user can
    look the object up by (a versioned bucket keeps every version under one key).
    """

    expected: Expected
    etag: str | None = None
    version_id: str | None = None


def answered_ids(answer: Mapping[str, Any]) -> tuple[str | None, str | None]:
    """(ETag without its quotes, version id) from a PutObject, CompleteMultipartUpload or HeadObject answer."""
    etag = str(answer.get("ETag") or "").strip('"') or None
    version = answer.get("VersionId")
    # S3 answers "null" for an object written while versioning was off or suspended.
    return etag, (str(version) if version and version != "null" else None)


class _CapabilityRefusedError(Exception):
    """The store refused a capability (SHA-256 headers or If-None-Match)."""

    def __init__(self, capability: str) -> None:
        super().__init__(capability)
        self.capability = capability


@dataclass
class Capabilities:
    """What this store accepted during this delivery."""

    checksums: bool = True
    conditional: bool = True
    warnings: list[str] = field(default_factory=list)

    def drop(self, capability: str) -> None:
        if capability == "checksums" and self.checksums:
            self.checksums = False
            self.warnings.append(
                "this store rejected SHA-256 checksum headers; uploaded without them and "
                "verified the result another way"
            )
        elif capability == "conditional" and self.conditional:
            self.conditional = False
            self.warnings.append(
                "this store does not support conditional writes (If-None-Match); relied on "
                "checking for an existing object first"
            )


def _refusal(exc: ClientError) -> str | None:
    """Which capability a 400/501 error refuses, if it is that kind of error."""
    error = exc.response.get("Error", {}) or {}
    code = str(error.get("Code", ""))
    if code not in {"NotImplemented", "InvalidArgument", "InvalidRequest", "BadRequest", "501"}:
        return None
    named = (error.get("Header", ""), error.get("ArgumentName", ""), error.get("Message", ""))
    text = " ".join(str(part) for part in named).lower()
    if "checksum" in text:
        return "checksums"
    if "if-none-match" in text or "conditional" in text or code in {"NotImplemented", "501"}:
        return "conditional"
    return None


def _is_precondition_failed(exc: ClientError) -> bool:
    code = str((exc.response.get("Error", {}) or {}).get("Code", ""))
    status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
    return code in {"PreconditionFailed", "412", "ConditionalRequestConflict"} or status == 412


class Uploader:
    """Uploads for one client and bucket; errors are mapped by `fail(exc, action)`."""

    def __init__(
        self, client: Any, bucket: str, transfer: TransferSettings, fail: Fail, *, lock: Mapping[str, Any] | None = None
    ) -> None:
        self.client = client
        self.bucket = bucket
        self.transfer = transfer
        self.fail = fail
        # Object Lock parameters for archives and their manifests (`delivery.s3.object_lock`); never for probes.
        self.lock = dict(lock or {})

    def _refused(self, exc: ClientError, action: str) -> DeliveryError:
        """The error for a refused write: the bucket's missing Object Lock in words, else as `fail` maps it."""
        if self.lock and refused_for_lock(exc):
            return DeliveryError(str(exc), permanent=True, user_message=NOT_ENABLED)
        return self.fail(exc, action)

    def upload(self, path: Path, key: str, size: int, sha256_hex: str, caps: Capabilities) -> Stored:
        """Upload with whatever the store accepts; return what the stored object should be, and the store's answer.

        Raise `ObjectExistsError` if the key turned out to be taken, `DeliveryError` otherwise.
        """
        for _ in range(3):  # at most one retry per capability dropped
            try:
                if size < self.transfer.multipart_threshold:
                    return self._single(path, key, size, sha256_hex, caps)
                return self._multipart(path, key, size, sha256_hex, caps)
            except _CapabilityRefusedError as refused:
                caps.drop(refused.capability)
        raise DeliveryError("the store refused every upload variant", permanent=True)

    def put_bytes(self, key: str, data: bytes, caps: Capabilities, content_type: str, *, locked: bool = False) -> None:
        """Small objects (manifest, connection probe): same headers and conditions, no file; `locked` as archives."""
        args: dict[str, Any] = {
            "Bucket": self.bucket,
            "Key": key,
            "Body": data,
            "ContentType": content_type,
            "ContentMD5": b64(hashlib.md5(data, usedforsecurity=False).digest()),
            **(self.lock if locked else {}),
        }
        for _ in range(3):
            try:
                self._put(args, b64(hashlib.sha256(data).digest()), caps)
                return
            except _CapabilityRefusedError as refused:
                caps.drop(refused.capability)
        raise DeliveryError("the store refused every upload variant", permanent=True)

    def _put(self, args: dict[str, Any], sha256_b64: str, caps: Capabilities) -> dict[str, Any]:
        call = dict(args)
        if caps.checksums:
            call |= {"ChecksumAlgorithm": "SHA256", "ChecksumSHA256": sha256_b64}
        if caps.conditional:
            call["IfNoneMatch"] = "*"
        try:
            return dict(self.client.put_object(**call))
        except ClientError as exc:
            if _is_precondition_failed(exc):
                raise ObjectExistsError(args["Key"]) from None
            capability = _refusal(exc)
            if capability and getattr(caps, capability):
                raise _CapabilityRefusedError(capability) from None
            raise self._refused(exc, "s3:PutObject") from exc
        except Exception as exc:
            raise self.fail(exc, "s3:PutObject") from exc

    def _single(self, path: Path, key: str, size: int, sha256_hex: str, caps: Capabilities) -> Stored:
        expected = expected_single(path, size)
        _check_local(expected.sha256_hex, sha256_hex)
        with FileSlice(path, 0, size) as body:
            args = {
                "Bucket": self.bucket,
                "Key": key,
                "Body": body,
                "ContentLength": size,
                "ContentType": content_type(key),
                "ContentMD5": b64(expected.md5),
                **self.lock,
            }
            answer = self._put(args, expected.checksum_b64, caps)
        return Stored(expected, *answered_ids(answer))

    def _multipart(self, path: Path, key: str, size: int, sha256_hex: str, caps: Capabilities) -> Stored:
        create: dict[str, Any] = {
            "Bucket": self.bucket,
            "Key": key,
            "ContentType": content_type(key),
            **self.lock,
        }
        if caps.checksums:
            create["ChecksumAlgorithm"] = "SHA256"
        try:
            upload_id = self.client.create_multipart_upload(**create)["UploadId"]
        except ClientError as exc:
            capability = _refusal(exc)
            if capability == "checksums" and caps.checksums:
                raise _CapabilityRefusedError(capability) from None
            raise self._refused(exc, "s3:PutObject") from exc
        except Exception as exc:
            raise self.fail(exc, "s3:PutObject") from exc
        try:
            sent = self._send_parts(path, key, size, sha256_hex, upload_id, caps)
            answer = self._complete(key, upload_id, sent, caps)
        except BaseException:
            self._abort(key, upload_id)
            raise
        expected = Expected(size=size, sha256_hex=sha256_hex, parts=tuple(part for part, _ in sent))
        etag, version_id = answered_ids(answer)
        if self.lock:
            self.lock_if_unlocked(key, version_id)
        return Stored(expected, etag, version_id)

    def lock_if_unlocked(self, key: str, version_id: str | None) -> None:
        """Set the retention a multipart upload asked for where the store did not keep it.

        Why: AWS keeps the lock given to CreateMultipartUpload, but not every store
        does (moto drops it), and an archive believed locked must be locked; an
        earlier attempt's object found at the key gets it too. An object that
        carries a date already is left alone (compliance dates only move later).
        """
        version = {"VersionId": version_id} if version_id else {}
        try:
            head = self.client.head_object(Bucket=self.bucket, Key=key, **version)
            if head.get("ObjectLockRetainUntilDate"):
                return
            retention = {"Mode": self.lock["ObjectLockMode"], "RetainUntilDate": self.lock["ObjectLockRetainUntilDate"]}
            self.client.put_object_retention(Bucket=self.bucket, Key=key, Retention=retention, **version)
        except ClientError as exc:
            raise self._refused(exc, "s3:PutObjectRetention") from exc
        except Exception as exc:
            raise self.fail(exc, "s3:PutObjectRetention") from exc

    def _send_parts(
        self, path: Path, key: str, size: int, sha256_hex: str, upload_id: str, caps: Capabilities
    ) -> list[tuple[Part, str]]:
        """Hash parts in order on this thread while a small pool uploads them from disk.

        Returns each part with the ETag the store gave it.
        """
        whole = hashlib.sha256()
        sent: list[tuple[Part, str]] = []
        window: deque[tuple[Part, Future[str]]] = deque()
        plan = plan_parts(size, self.transfer.part_size_for(size))
        with ThreadPoolExecutor(self.transfer.concurrency, thread_name_prefix="s3-part") as pool:
            try:
                with path.open("rb") as handle:
                    for number, offset, length in plan:
                        sha, md5 = hash_range(handle, offset, length, whole)
                        part = Part(number, offset, length, sha, md5)
                        future = pool.submit(self._send_part, path, key, upload_id, part, caps)
                        window.append((part, future))
                        # Bound the read-ahead, and surface the first failure early.
                        while len(window) > 2 * self.transfer.concurrency or (window and window[0][1].done()):
                            done, result = window.popleft()
                            sent.append((done, result.result()))
                while window:
                    done, result = window.popleft()
                    sent.append((done, result.result()))
            except BaseException:
                for _, future in window:
                    future.cancel()
                raise
        _check_local(whole.hexdigest(), sha256_hex)
        return sent

    def _send_part(self, path: Path, key: str, upload_id: str, part: Part, caps: Capabilities) -> str:
        args: dict[str, Any] = {
            "Bucket": self.bucket,
            "Key": key,
            "UploadId": upload_id,
            "PartNumber": part.number,
            "ContentLength": part.size,
            "ContentMD5": b64(part.md5),
        }
        if caps.checksums:
            args |= {"ChecksumAlgorithm": "SHA256", "ChecksumSHA256": part.sha256_b64}
        with FileSlice(path, part.offset, part.size) as body:
            try:
                answer = self.client.upload_part(Body=body, **args)
            except ClientError as exc:
                capability = _refusal(exc)
                if capability == "checksums" and caps.checksums:
                    raise _CapabilityRefusedError(capability) from None
                raise self.fail(exc, "s3:PutObject") from exc
            except Exception as exc:
                raise self.fail(exc, "s3:PutObject") from exc
        return str(answer["ETag"])

    def _complete(self, key: str, upload_id: str, sent: list[tuple[Part, str]], caps: Capabilities) -> dict[str, Any]:
        listed = []
        for part, etag in sent:
            entry: dict[str, Any] = {"PartNumber": part.number, "ETag": etag}
            if caps.checksums:
                entry["ChecksumSHA256"] = part.sha256_b64
            listed.append(entry)
        args: dict[str, Any] = {
            "Bucket": self.bucket,
            "Key": key,
            "UploadId": upload_id,
            "MultipartUpload": {"Parts": listed},
        }
        for _ in range(2):
            call = dict(args, IfNoneMatch="*") if caps.conditional else args
            try:
                return dict(self.client.complete_multipart_upload(**call))
            except ClientError as exc:
                if _is_precondition_failed(exc):
                    raise ObjectExistsError(key) from None
                if _refusal(exc) == "conditional" and caps.conditional:
                    caps.drop("conditional")
                    continue
                raise self.fail(exc, "s3:PutObject") from exc
            except Exception as exc:
                raise self.fail(exc, "s3:PutObject") from exc
        raise DeliveryError("the store refused every way of completing the upload", permanent=True)

    def _abort(self, key: str, upload_id: str) -> None:
        """Best effort: an abandoned upload only costs storage until a lifecycle rule cleans it."""
        with contextlib.suppress(Exception):  # the original failure is what the user needs to see
            self.client.abort_multipart_upload(Bucket=self.bucket, Key=key, UploadId=upload_id)


def _check_local(actual_hex: str, recorded_hex: str) -> None:
    if actual_hex != recorded_hex.lower():
        raise DeliveryError(
            "the archive on disk no longer matches its recorded SHA-256",
            permanent=True,
            user_message=(
                "The archive file changed on the server after it was verified, so it was not "
                "delivered. Run the export again."
            ),
        )


__all__ = ["Capabilities", "ObjectExistsError", "Stored", "Uploader", "answered_ids"]


def content_type(key: str) -> str:
    """A zip is application/zip; an archive sealed to the user's key (`….zip.age`, `….zip.gpg`) is opaque bytes."""
    return "application/zip" if key.lower().endswith(".zip") else "application/octet-stream"
