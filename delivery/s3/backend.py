"""Deliver archives to an S3-compatible bucket the user owns, and prove they arrived intact.

Why so careful: the point of Lifeboat is a copy the provider cannot lose, so
"the SDK returned 200" is not enough. Each archive is written once under
`<prefix>/<yyyy>/<mm>/<filename>` (never overwriting), checked by HEAD against
sizes and hashes we computed ourselves (and downloaded again when the store's
report is missing or disagrees), and a damaged copy is removed, never reported
as delivered. Errors come back as `DeliveryError`s that say what to fix and
whether retrying can help.

The other modules of `delivery.s3` each hold one concern (listed in its
`__init__`); this one ties them into the `Delivery` contract.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import uuid
from collections.abc import Iterable, Iterator, Mapping
from typing import Any

import botocore.session
from botocore.exceptions import ClientError

from delivery.contract import Delivery, Payload, Receipt
from delivery.retention_policy import RetentionPolicy
from delivery.s3 import redaction
from delivery.s3.addresses import AllowList, EndpointNotAllowedError
from delivery.s3.checksums import (
    BLOCK,
    Expected,
    expected_single,
    hash_range,
    judge_head,
    plan_parts,
    stream_sha256,
)
from delivery.s3.checksums import Part as _Part
from delivery.s3.client import ClientFactory
from delivery.s3.endpoint_check import check_endpoint_resolves
from delivery.s3.errors import Where, to_delivery_error
from delivery.s3.inspection import HEALTHY, UNWRITABLE, Delivered, Health, inspect_object
from delivery.s3.object_lock import NOT_ENABLED, bucket_lock, describe_bucket_lock
from delivery.s3.policy import object_arn
from delivery.s3.pruning import MAX_BATCH, Pruner, PruneReport
from delivery.s3.retention import manifest_key
from delivery.s3.settings import S3Settings, Timeouts, TransferSettings
from delivery.s3.upload import Capabilities, ObjectExistsError, Uploader, answered_ids
from errors import DeliveryError

PROBE_BODY = b"Lifeboat connection test: safe to delete.\n"


class S3Delivery(Delivery):
    """Deliver to one user's bucket. `allow_list` is the operator's private-endpoint allow-list."""

    kind = "s3"

    def __init__(
        self,
        settings: S3Settings,
        *,
        allow_list: Iterable[str] | AllowList | None = None,
        transfer: TransferSettings | None = None,
        timeouts: Timeouts | None = None,
        botocore_session: botocore.session.Session | None = None,
        sts_endpoint_url: str | None = None,
    ) -> None:
        self.settings = settings
        self.allow_list = AllowList.parse(allow_list)
        self.transfer = transfer or TransferSettings()
        self.timeouts = timeouts or Timeouts()
        self._factory = ClientFactory(
            settings,
            allow_list=self.allow_list,
            timeouts=self.timeouts,
            pool_size=self.transfer.concurrency + 2,
            botocore_session=botocore_session,
            sts_endpoint_url=sts_endpoint_url,
        )
        endpoint = settings.endpoint_url or f"AWS S3 ({settings.region})"
        self._endpoint_shown = endpoint

    def __repr__(self) -> str:
        return f"S3Delivery({self.settings!r})"

    # -- plumbing ---------------------------------------------------------------

    @property
    def client(self) -> Any:
        """The botocore S3 client (built on first use); tests register event hooks on it."""
        return self._factory.client

    @property
    def assume_role_calls(self) -> int:
        return self._factory.sts_requests

    def close(self) -> None:
        self._factory.close()

    def __enter__(self) -> S3Delivery:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @contextlib.contextmanager
    def _operation(self) -> Iterator[None]:
        """Mask this user's secrets in logs while we work; refuse bad endpoints first."""
        secrets = self._factory.secrets()
        redaction.FILTER.register(*secrets)
        try:
            if self.settings.endpoint_url:
                check_endpoint_resolves(self.settings.endpoint_url, self.allow_list)
            yield
        finally:
            redaction.FILTER.unregister(*secrets)

    def _where(self, action: str) -> Where:
        s = self.settings
        resource = f"arn:aws:s3:::{s.bucket}" if action == "s3:ListBucket" else object_arn(s.bucket, s.prefix)
        return Where(s.bucket, s.region, self._endpoint_shown, resource)

    def _fail(self, exc: BaseException, action: str) -> DeliveryError:
        return to_delivery_error(exc, action=action, where=self._where(action))

    def _call(self, action: str, method: str, **kwargs: Any) -> Any:
        try:
            return getattr(self.client, method)(Bucket=self.settings.bucket, **kwargs)
        except Exception as exc:
            raise self._fail(exc, action) from exc

    def _uploader(self, lock: dict[str, Any] | None = None) -> Uploader:
        return Uploader(self.client, self.settings.bucket, self.transfer, self._fail, lock=lock)

    def object_key(self, payload: Payload) -> str:
        """`<prefix>/<yyyy>/<mm>/<filename>`, dated by the archive's creation (UTC)."""
        name = payload.filename
        if not name or "/" in name or "\\" in name or name in (".", "..") or not name.isprintable():
            raise DeliveryError(f"unusable archive file name {name!r}", permanent=True)
        when = payload.created_at
        folder = f"{when.year:04d}/{when.month:02d}/{name}"
        return f"{self.settings.prefix}/{folder}" if self.settings.prefix else folder

    # -- deliver ----------------------------------------------------------------

    def deliver(self, payload: Payload) -> Receipt:
        """Upload, verify, store the manifest beside it (pruning is `prune`, called by the job after this)."""
        with self._operation():
            key = self.object_key(payload)
            _check_file(payload)
            caps = Capabilities()
            rule = self.settings.lock
            lock = rule.put_args(dt.datetime.now(dt.UTC)) if rule else None
            uploader = self._uploader(lock)
            existing = self._head(key, required=False)
            if existing is None:
                try:
                    stored = uploader.upload(payload.path, key, payload.size, payload.sha256, caps)
                except ObjectExistsError:
                    existing = self._head(key, required=True)
            if existing is not None:
                # An earlier attempt's object: its receipt is what the store reports for it now.
                detail, warnings = self._accept_existing(payload, key, existing)
                etag, version_id = answered_ids(existing)
                if lock and not existing.get("ObjectLockRetainUntilDate"):
                    uploader.lock_if_unlocked(key, version_id)
                    existing = self._head(key, required=True) or existing
                detail += _locked_words(existing.get("ObjectLockMode"), existing.get("ObjectLockRetainUntilDate"))
            else:
                detail, warnings = self._verify(key, stored.expected, delete_if_bad=True)
                etag, version_id = stored.etag, stored.version_id
                if lock:
                    detail += _locked_words(lock["ObjectLockMode"], lock["ObjectLockRetainUntilDate"])
            warnings = [*caps.warnings, *warnings]
            if payload.manifest:
                warnings += self._put_manifest(key, payload.manifest, caps, uploader)
            return Receipt(
                location=f"s3://{self.settings.bucket}/{key}",
                detail=detail,
                warnings=tuple(dict.fromkeys(warnings)),
                object_key=key,
                version_id=version_id,
                etag=etag,
            )

    def _head(self, key: str, *, required: bool) -> dict[str, Any] | None:
        """HEAD with checksums. Absent -> None; when not `required`, a bare 403 also -> None.

        Why 403 counts as "unknown" before uploading: S3 answers HEAD on a missing
        key with 403 when the credentials may not list the bucket, and the
        conditional write will catch a real conflict anyway.
        """
        try:
            return self.client.head_object(Bucket=self.settings.bucket, Key=key, ChecksumMode="ENABLED")
        except ClientError as exc:
            status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
            code = str((exc.response.get("Error", {}) or {}).get("Code", ""))
            if code in {"404", "NoSuchKey", "NotFound"} or status == 404:
                if required:
                    raise DeliveryError(
                        f"s3://{self.settings.bucket}/{key} vanished right after upload",
                        permanent=False,
                        user_message=("The archive was not found right after uploading."),
                    ) from exc
                return None
            if not required and status == 403 and code in {"403", "Forbidden"}:
                return None
            raise self._fail(exc, "s3:GetObject") from exc
        except Exception as exc:
            raise self._fail(exc, "s3:GetObject") from exc

    def _expected_for(self, payload: Payload, parts: int) -> Expected:
        """What our upload of this payload would look like, for judging an object already there."""
        if parts == 0:
            return expected_single(payload.path, payload.size)
        plan = plan_parts(payload.size, self.transfer.part_size_for(payload.size))
        with payload.path.open("rb") as handle:
            hashed = [_Part(n, o, ln, *hash_range(handle, o, ln)) for n, o, ln in plan]
        return Expected(size=payload.size, sha256_hex=payload.sha256.lower(), parts=tuple(hashed))

    def _accept_existing(self, payload: Payload, key: str, head: dict[str, Any]) -> tuple[str, list[str]]:
        """An object is already at the key: fine if it is this very archive (an earlier attempt)."""
        parts = 0
        for reported in (head.get("ETag"), head.get("ChecksumSHA256")):  # "…-N" counts the parts
            _, dash, count = str(reported or "").strip('"').rpartition("-")
            if dash and count.isdigit():
                parts = int(count)
                break
        expected = self._expected_for(payload, parts)
        try:
            detail, warnings = self._verify(key, expected, delete_if_bad=False, head=head)
        except _DamagedError:
            raise DeliveryError(
                f"s3://{self.settings.bucket}/{key} exists and differs from this archive",
                permanent=True,
                user_message=(
                    f"A different file already exists at s3://{self.settings.bucket}/{key}; "
                    "Lifeboat never overwrites. Move or delete it, or choose another prefix."
                ),
            ) from None
        return f"already delivered by an earlier attempt; {detail}", warnings

    def _verify(
        self,
        key: str,
        expected: Expected,
        *,
        delete_if_bad: bool,
        head: dict[str, Any] | None = None,
    ) -> tuple[str, list[str]]:
        """HEAD (and re-download if needed); on damage remove the object and raise."""
        head = head if head is not None else self._head(key, required=True)
        assert head is not None
        verdict = judge_head(head, expected)
        if verdict.state == "verified":
            return verdict.detail, [verdict.warning] if verdict.warning else []
        reason = verdict.detail
        if verdict.state == "redownload":
            body = self._call("s3:GetObject", "get_object", Key=key)["Body"]
            try:
                digest, length = stream_sha256(body.iter_chunks(BLOCK))
            except Exception as exc:
                raise self._fail(exc, "s3:GetObject") from exc
            finally:
                body.close()
            if digest == expected.sha256_hex.lower() and length == expected.size:
                return (
                    "verified by downloading it again: size and SHA-256 match",
                    [f"{reason}; verified by downloading the archive again"],
                )
            reason = "the downloaded copy does not match the archive's SHA-256"
        removed = ""
        if delete_if_bad:
            try:
                self._call("s3:DeleteObject", "delete_object", Key=key)
                removed = " The damaged copy was removed."
            except DeliveryError as exc:
                removed = f" Removing the damaged copy failed ({exc.user_message}); delete it by hand."
        raise _DamagedError(
            f"verification failed for s3://{self.settings.bucket}/{key}: {reason}",
            permanent=False,
            user_message=f"The archive arrived damaged ({reason}).{removed}",
        )

    def _put_manifest(self, archive_key: str, manifest: bytes, caps: Capabilities, uploader: Uploader) -> list[str]:
        """Store manifest.json beside the archive (locked as it is); failing here only warns, the archive is there."""
        key = manifest_key(archive_key)
        try:
            with contextlib.suppress(ObjectExistsError):
                uploader.put_bytes(key, manifest, caps, "application/json", locked=True)
            stored = self._call("s3:GetObject", "get_object", Key=key)["Body"].read()
            if stored != manifest:
                return [f"a different manifest already exists at {key}; left it alone"]
        except DeliveryError as exc:
            return [f"the manifest could not be stored beside the archive: {exc.user_message}"]
        return []

    # -- later checks -------------------------------------------------------------

    def inspect(self, delivered: Delivered, *, deep: bool = False, writes: bool = False) -> Health:
        """Whether an archive delivered here is still there as it arrived (`delivery.s3.inspection`).

        With `writes`, a healthy copy is followed by the connection test's probe
        (write, read back, delete a small object): a bucket that now refuses new
        objects (a key lost s3:PutObject, a quota, a policy) is `UNWRITABLE`, said
        while the copy is still there rather than when the next archive fails.
        A refusal that may pass (network, throttling) raises like any failed check.
        """
        with self._operation():
            health = inspect_object(self.client, self.settings.bucket, delivered, deep=deep, fail=self._fail)
            if not writes or health.state != HEALTHY:
                return health
            try:
                self._probe()
            except DeliveryError as exc:
                if not exc.permanent or isinstance(exc, EndpointNotAllowedError):  # not the bucket's answer
                    raise
                return Health(
                    UNWRITABLE, f"s3://{self.settings.bucket} no longer accepts new archives: {exc.user_message}"
                )
            return health

    # -- retention ----------------------------------------------------------------

    def prune(
        self,
        policy: RetentionPolicy,
        zone: dt.tzinfo,
        *,
        name_prefix: str,
        verified: Iterable[str],
        pinned: Mapping[str, str] | None = None,
        dry_run: bool = False,
        batch_size: int = MAX_BATCH,
    ) -> PruneReport:
        """Apply `policy` to this account's archives under the prefix (see `delivery.s3.pruning`).

        Raises `DeliveryError` only when the prefix cannot be listed (then nothing
        was decided or deleted); refused or locked deletes are in the report.
        """
        with self._operation():
            pruner = Pruner(self.client, self.settings.bucket, self.settings.prefix, self._fail, batch_size=batch_size)
            return pruner.prune(
                policy, zone, name_prefix=name_prefix, verified=verified, pinned=pinned, dry_run=dry_run
            )

    def _list(self, prefix: str) -> dict[str, Any]:
        """Every key under the prefix with its LastModified."""
        return Pruner(self.client, self.settings.bucket, prefix.rstrip("/"), self._fail).listing()

    # -- connection test ----------------------------------------------------------

    def test_connection(self) -> str:
        """Write, read back and delete a probe object; list too if retention needs it."""
        with self._operation():
            prefix = f"{self.settings.prefix}/" if self.settings.prefix else ""
            head, caps = self._probe()
            notes = [f"Wrote, read back and deleted a test object in s3://{self.settings.bucket}/{prefix}"]
            if self.settings.retention.active:
                self._list(prefix)
                notes.append("listing works (needed by the retention policy)")
            if not head.get("ChecksumSHA256"):
                notes.append(
                    "this store does not report SHA-256 checksums, so archives will be verified "
                    "by their MD5 ETag or by downloading them again"
                )
            notes.append(self._lock_note())
            notes += caps.warnings
            return "; ".join(notes) + "."

    def _probe(self) -> tuple[dict[str, Any], Capabilities]:
        """Write, read back and delete a small probe object under the prefix; its HEAD and what the store allowed."""
        prefix = f"{self.settings.prefix}/" if self.settings.prefix else ""
        key = f"{prefix}.lifeboat-connection-test-{uuid.uuid4().hex}.txt"
        caps = Capabilities()
        self._uploader().put_bytes(key, PROBE_BODY, caps, "text/plain")
        try:
            stored = self._call("s3:GetObject", "get_object", Key=key)["Body"].read()
            head = self._head(key, required=True) or {}
        except BaseException:
            with contextlib.suppress(DeliveryError):
                self._call("s3:DeleteObject", "delete_object", Key=key)
            raise
        self._call("s3:DeleteObject", "delete_object", Key=key)
        if stored != PROBE_BODY:
            raise DeliveryError(
                "probe object came back different",
                permanent=True,
                user_message=f"{self._endpoint_shown} returned other bytes than were written.",
            )
        return head, caps

    def _lock_note(self) -> str:
        """What Object Lock means for this bucket; refuses a destination that asks for a lock the bucket lacks."""
        rule = self.settings.lock
        try:
            config = bucket_lock(self.client, self.settings.bucket)
        except Exception as exc:
            if rule is not None:
                raise self._fail(exc, "s3:GetBucketObjectLockConfiguration") from exc
            return "could not read whether S3 Object Lock is on (not needed unless archives are to be locked)"
        if rule is not None and config is None:
            raise DeliveryError("Object Lock is not enabled on the bucket", permanent=True, user_message=NOT_ENABLED)
        return describe_bucket_lock(config, rule)


def _locked_words(mode: object, until: object) -> str:
    """ "; locked until … UTC (… mode)" for a receipt, or "" when the object carries no lock."""
    if not isinstance(until, dt.datetime) or not mode:
        return ""
    return f"; locked until {until.astimezone(dt.UTC):%Y-%m-%d %H:%M} UTC ({str(mode).lower()} mode)"


class _DamagedError(DeliveryError):
    """The stored object is not the archive (transient: the next attempt uploads it again)."""


def _check_file(payload: Payload) -> None:
    try:
        size = payload.path.stat().st_size
    except OSError:
        size = -1
    if size != payload.size:
        raise DeliveryError(
            f"archive {payload.path.name} is missing or not {payload.size} bytes",
            permanent=True,
            user_message="The archive file is missing or changed on the server; export again.",
        )
