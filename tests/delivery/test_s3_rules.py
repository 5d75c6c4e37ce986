"""S3 rules needing no server: settings, policy text, retention, error classes, masking."""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

import pytest
from botocore.exceptions import ClientError, ConnectionClosedError, ReadTimeoutError

from delivery.s3 import S3Delivery, S3Settings, iam_policy
from delivery.s3.errors import Where, to_delivery_error
from delivery.s3.redaction import redact
from delivery.s3.retention import archive_created_at, archive_key_pattern, manifest_key
from errors import InvalidInput

KEYS: dict[str, Any] = {  # S3Settings fields
    "access_key_id": "AKIATESTKEY000000001",
    "secret_access_key": "test-secret-never-logged-123",
}
ROLE = "arn:aws:iam::123456789012:role/lifeboat-delivery"
WHERE = Where("bkt", "us-east-1", "https://s3.example.com", "arn:aws:s3:::bkt/lifeboat/*")
T0 = dt.datetime(2026, 11, 1, tzinfo=dt.UTC)


def test_it_rejects_settings_that_would_leave_the_bucket_or_policy() -> None:
    with pytest.raises(InvalidInput) as caught:
        S3Settings(bucket="ok-bucket", region="x@evil.example:443/#", prefix="a/../b", **KEYS)
    fields = {where for where, _ in caught.value.problems}
    assert fields == {"region", "prefix"}
    with pytest.raises(InvalidInput):
        S3Settings(
            bucket="ok-bucket",
            role_arn="arn:aws:iam::123456789012:role/x",
            external_id="e-1",
            **KEYS,
        )
    assert S3Settings(bucket="ok-bucket", prefix="/a//b/", **KEYS).prefix == "a/b"


def test_it_suggests_a_least_privilege_policy_for_the_prefix() -> None:
    policy = json.loads(iam_policy("my-bucket", "lifeboat/alice"))
    write, listing = policy["Statement"]
    assert sorted(write["Action"]) == ["s3:AbortMultipartUpload", "s3:DeleteObject", "s3:GetObject", "s3:PutObject"]
    assert write["Resource"] == "arn:aws:s3:::my-bucket/lifeboat/alice/*"
    assert listing["Action"] == "s3:ListBucket" and listing["Resource"] == "arn:aws:s3:::my-bucket"
    assert listing["Condition"]["StringLike"]["s3:prefix"] == ["lifeboat/alice/*", "lifeboat/alice"]


@pytest.mark.parametrize(
    ("key", "when"),
    [
        ("lb/2026/08/lifeboat-alice-20260801T040000Z.zip", dt.datetime(2026, 8, 1, 4, tzinfo=dt.UTC)),
        ("lb/2026/12/lifeboat-alice-20261231T235959Z.zip", dt.datetime(2026, 12, 31, 23, 59, 59, tzinfo=dt.UTC)),
        ("lb/2026/08/lifeboat-alice-bob-20260801T040000Z.zip", None),  # another account's name
        ("lb/2026/08/lifeboat-bob-20260801T040000Z.zip", None),
        ("lb/2026/09/lifeboat-alice-20260801T040000Z.zip", None),  # folder and stamp disagree
        ("lb/2026/02/lifeboat-alice-20260230T040000Z.zip", None),  # no such day
        ("lb/2026/08/lifeboat-alice-20260801T040000Z.manifest.json", None),
        ("lb/notes/lifeboat-alice-20260801T040000Z.zip", None),
        ("lb/x/2026/08/lifeboat-alice-20260801T040000Z.zip", None),
        ("other/2026/08/lifeboat-alice-20260801T040000Z.zip", None),
        ("lb/2026/08/lifeboat-alice-20260801T040000Z.zip.part", None),
        # Sealed to the user's key: the same archive, so it counts (and is kept or pruned) like one.
        ("lb/2026/08/lifeboat-alice-20260801T040000Z.zip.age", dt.datetime(2026, 8, 1, 4, tzinfo=dt.UTC)),
        ("lb/2026/08/lifeboat-alice-20260801T040000Z.zip.gpg", dt.datetime(2026, 8, 1, 4, tzinfo=dt.UTC)),
        ("lb/2026/08/lifeboat-alice-20260801T040000Z.zip.age.part", None),
    ],
)
def test_only_this_accounts_archives_in_lifeboats_layout_are_retention_candidates(
    key: str, when: dt.datetime | None
) -> None:
    match = archive_key_pattern("lb", "lifeboat-alice-").fullmatch(key)
    assert (archive_created_at(match) if match else None) == when


def test_without_an_account_name_any_lifeboat_archive_in_the_layout_matches() -> None:
    pattern = archive_key_pattern("", None)
    assert pattern.fullmatch("2026/08/lifeboat-alice-bob-20260801T040000Z.zip")
    assert pattern.fullmatch("2026/08/lifeboat-user7-20260801T040000Z.zip")
    assert not pattern.fullmatch("2026/08/lifeboat--20260801T040000Z.zip")
    assert not pattern.fullmatch("lb/2026/08/lifeboat-alice-20260801T040000Z.zip")
    assert manifest_key("lb/2026/08/a.zip") == "lb/2026/08/a.manifest.json"


def test_it_masks_credential_shapes_in_botocore_debug_text() -> None:
    text = (
        "<SecretAccessKey>abc/def+ghi</SecretAccessKey><SessionToken>tok==</SessionToken> "
        "'ExternalId': 'ext-1234' Action=AssumeRole&ExternalId=ext-5678&Version=1 "
        "x-amz-security-token:FQoGZXIvYXdzE Credential=AKIAABCDEFGH/20261125/us-east-1/s3"
    )
    cleaned = redact(text, ["unrelated-secret"])
    for secret in ("abc/def+ghi", "tok==", "ext-1234", "ext-5678", "FQoGZXIvYXdzE", "AKIAABCDEFGH"):
        assert secret not in cleaned
    assert "Action=AssumeRole" in cleaned and "/20261125/us-east-1/s3" in cleaned


def client_error(code: str, status: int, operation: str = "PutObject") -> ClientError:
    return ClientError(
        {"Error": {"Code": code, "Message": "m"}, "ResponseMetadata": {"HTTPStatusCode": status}},
        operation,
    )


@pytest.mark.parametrize(
    ("code", "status", "permanent"),
    [
        ("InvalidAccessKeyId", 403, True),
        ("SignatureDoesNotMatch", 403, True),
        ("AccessDenied", 403, True),
        ("NoSuchBucket", 404, True),
        ("PermanentRedirect", 301, True),
        ("InternalError", 500, False),
        ("BadGateway", 502, False),
        ("ServiceUnavailable", 503, False),
        ("SlowDown", 503, False),
        ("RequestTimeout", 400, False),
        ("BadDigest", 400, False),
    ],
)
def test_it_marks_store_errors_permanent_only_when_retrying_cannot_help(
    code: str, status: int, permanent: bool
) -> None:
    error = to_delivery_error(client_error(code, status), action="s3:PutObject", where=WHERE)
    assert error.permanent is permanent


@pytest.mark.parametrize(
    "exc",
    [
        ReadTimeoutError(endpoint_url="https://s3.example.com"),
        ConnectionClosedError(endpoint_url="https://s3.example.com"),
        ConnectionResetError(104, "Connection reset by peer"),
    ],
)
def test_it_marks_timeouts_and_resets_transient(exc: Exception) -> None:
    assert to_delivery_error(exc, action="s3:PutObject", where=WHERE).permanent is False


def test_it_names_the_denied_action_and_resource() -> None:
    error = to_delivery_error(client_error("AccessDenied", 403), action="s3:PutObject", where=WHERE)
    assert "Access denied for s3:PutObject on arn:aws:s3:::bkt/lifeboat/*" in error.user_message


def test_it_masks_secrets_in_reprs() -> None:
    settings = S3Settings(bucket="bkt", role_arn=ROLE, external_id="ext-alice-7f3c9a")
    keyed = S3Settings(bucket="bkt", **KEYS)
    shown = f"{settings!r} {keyed!r} {keyed} {S3Delivery(keyed)!r}"
    for secret in ("ext-alice-7f3c9a", KEYS["secret_access_key"], KEYS["access_key_id"]):
        assert secret not in shown
    assert "secret_access_key='***'" in shown and "access_key_id='…0001'" in shown


@pytest.mark.parametrize(
    ("key_id", "said"),
    [
        ("", "Enter the access key ID (or use a role instead)."),
        ("a", "An access key ID is 3 to 128 letters, digits or symbols, without spaces: check it."),
        ("AKIA WITH SPACE", "An access key ID is 3 to 128 letters, digits or symbols, without spaces: check it."),
    ],
)
def test_a_missing_key_id_is_asked_for_and_a_malformed_one_is_named_as_such(key_id: str, said: str) -> None:
    with pytest.raises(InvalidInput) as caught:
        S3Settings(bucket="my-bucket", access_key_id=key_id, secret_access_key="s3cret")
    assert caught.value.problems == [("access_key_id", said)]
