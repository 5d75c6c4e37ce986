"""Is a delivered archive still there, unchanged and readable? One object's health, from its receipt.

Why separate from delivering: a delivery proves the copy arrived; this proves,
weeks later, that it is still there as it arrived (issue 16's scrub). It starts
from what the receipt recorded (the key, the version id the store gave, the
ETag, the archive's size and SHA-256), never from the archive on Lifeboat's side,
which retention may have removed long ago.

Two depths, as restic's `check` and `check --read-data`:

- **light**: one HEAD of the recorded version. Missing, another size, another
  ETag, or (in a versioned bucket) a newer object now shadowing it at the key
  are each found without reading the data. Cheap enough to run weekly for
  every user.
- **deep**: a streamed GET of the whole object whose SHA-256 must be the
  archive's; memory stays flat (`stream_sha256` over 1 MiB chunks). What the
  archive *holds* is the caller's to check (the verifier, a signed manifest);
  this module knows bytes, not formats.

A store that refuses to answer (403) is "unreadable": the copy may be fine, but
nobody can show it, which the user has to hear as loudly as "missing".
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from botocore.exceptions import ClientError

from delivery.s3.checksums import BLOCK, stream_sha256
from errors import DeliveryError

HEALTHY, MISSING, CHANGED, UNREADABLE = "healthy", "missing", "changed", "unreadable"
# The copy is fine, but the bucket refuses a new object: the next delivery would fail (`S3Delivery.inspect`).
UNWRITABLE = "unwritable"
_ABSENT = {"404", "NoSuchKey", "NotFound", "NoSuchVersion"}
_DENIED = {"403", "AccessDenied", "Forbidden"}


@dataclass(frozen=True)
class Delivered:
    """What a receipt says was stored: where, which version, and what the object must be."""

    key: str
    size: int
    sha256: str  # hex, of the whole archive file
    etag: str | None = None  # as the store answered the upload, without quotes
    version_id: str | None = None  # versioned buckets only


@dataclass(frozen=True)
class Health:
    """One object's state (`HEALTHY`, `MISSING`, `CHANGED`, `UNREADABLE`) and the finding in words."""

    state: str
    detail: str
    deep: bool = False  # the data itself was read and hashed

    @property
    def healthy(self) -> bool:
        return self.state == HEALTHY


def inspect_object(
    client: Any, bucket: str, delivered: Delivered, *, deep: bool, fail: Callable[[BaseException, str], DeliveryError]
) -> Health:
    """The health of `delivered` in `bucket`; `fail` maps errors that say nothing about the object (network)."""
    where = f"s3://{bucket}/{delivered.key}"
    version = {"VersionId": delivered.version_id} if delivered.version_id else {}
    try:
        head = client.head_object(Bucket=bucket, Key=delivered.key, **version)
    except ClientError as exc:
        return _refused(exc, where, "look at it") or _raise(fail, exc, "s3:GetObject")
    size = head.get("ContentLength")
    if size != delivered.size:
        return Health(CHANGED, f"{where} is {size} bytes now; the archive delivered there was {delivered.size}")
    etag = str(head.get("ETag") or "").strip('"')
    if delivered.etag and etag and etag != delivered.etag:
        return Health(CHANGED, f"{where} has another ETag than at delivery ({etag}, not {delivered.etag}): rewritten")
    if delivered.version_id:
        shadow = _current_version(client, bucket, delivered.key)
        if shadow == _DELETED:
            return Health(
                MISSING,
                f"{where} was deleted: the bucket's versioning still keeps the delivered version "
                f"{delivered.version_id}; remove the delete marker to bring it back",
            )
        if shadow is not None and shadow != delivered.version_id:
            return Health(
                CHANGED,
                f"{where}: a newer object replaced the delivered one at this key (the delivered version "
                f"{delivered.version_id} is still kept by the bucket's versioning)",
            )
    if not deep:
        return Health(HEALTHY, f"{where} is there: size and ETag as at delivery")
    try:
        body = client.get_object(Bucket=bucket, Key=delivered.key, **version)["Body"]
    except ClientError as exc:
        return _refused(exc, where, "read it") or _raise(fail, exc, "s3:GetObject")
    try:
        digest, length = stream_sha256(body.iter_chunks(BLOCK))
    except Exception as exc:
        raise fail(exc, "s3:GetObject") from exc
    finally:
        body.close()
    if (digest, length) != (delivered.sha256.lower(), delivered.size):
        return Health(CHANGED, f"{where}: its bytes no longer match the archive's SHA-256", deep=True)
    return Health(HEALTHY, f"{where} read in full: size and SHA-256 as at delivery", deep=True)


_DELETED = "(a delete marker)"


def _current_version(client: Any, bucket: str, key: str) -> str | None:
    """The version id a plain HEAD of `key` finds now; `_DELETED` behind a delete marker; None if unknown."""
    try:
        answer = client.head_object(Bucket=bucket, Key=key)
    except ClientError as exc:
        headers = exc.response.get("ResponseMetadata", {}).get("HTTPHeaders", {})
        if str(headers.get("x-amz-delete-marker", "")).lower() == "true":
            return _DELETED
        return None  # a refusal: the recorded version's own HEAD already answered
    version = answer.get("VersionId")
    return str(version) if version and version != "null" else None


def _refused(exc: ClientError, where: str, doing: str) -> Health | None:
    """MISSING or UNREADABLE for the store's "not there" and "not allowed"; None for anything else."""
    status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
    code = str((exc.response.get("Error", {}) or {}).get("Code", ""))
    if code in _ABSENT or status == 404:
        return Health(MISSING, f"{where} is gone: the store says there is no such object (or version)")
    if code in _DENIED or status == 403:
        return Health(
            UNREADABLE,
            f"{where} cannot be checked: the store refused to {doing} (access denied). "
            "The key or role Lifeboat uses needs s3:GetObject on the archives again.",
        )
    return None


def _raise(fail: Callable[[BaseException, str], DeliveryError], exc: BaseException, action: str) -> Health:
    raise fail(exc, action) from exc


__all__ = ["CHANGED", "HEALTHY", "MISSING", "UNREADABLE", "UNWRITABLE", "Delivered", "Health", "inspect_object"]
