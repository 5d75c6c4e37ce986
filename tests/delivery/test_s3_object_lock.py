"""S3 Object Lock against moto's real server: archives delivered locked cannot be deleted before their date.

moto enforces retention on versioned deletes (AccessDenied) and refuses lock
parameters on a bucket made without Object Lock, as AWS does; pruning's side
(locked archives are skipped) is in tests/delivery/test_s3_retention.py's style
here too, against a bucket whose archives really are locked.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from botocore.exceptions import ClientError
from flask import Flask
from flask.testing import FlaskCliRunner
from sqlalchemy import select

import jobs
from delivery.retention_policy import RetentionPolicy
from delivery.s3 import S3Settings, manifest_key
from delivery.s3.object_lock import NOT_ENABLED, LockRule
from delivery.s3.policy import iam_policy
from errors import DeliveryError, InvalidInput
from jobs import get_context, run_lifecycle
from jobs.execute import execute_run
from store import DeliveryAttempt, get_db
from store.accounts import find_user
from store.base import utcnow
from store.runs import RunState
from tests.delivery.test_s3 import KEYS, SMALL_PARTS, delivery, make_payload
from tests.servers.s3 import MotoS3

pytestmark = pytest.mark.server


def locked_delivery(moto_server: MotoS3, bucket: str, mode: str = "governance", days: int = 30) -> Any:
    target = delivery(moto_server.url, bucket)
    target.settings = S3Settings(**{**_settings_of(target.settings), "lock_mode": mode, "lock_days": days})
    return target


def _settings_of(settings: S3Settings) -> dict[str, Any]:
    return {name: getattr(settings, name) for name in settings.__dataclass_fields__}


def test_an_archive_delivered_with_a_lock_carries_its_mode_and_date_and_cannot_be_deleted_early(
    tmp_path: Path, moto_server: MotoS3, s3_locked_bucket: str
) -> None:
    before = dt.datetime.now(dt.UTC)
    with locked_delivery(moto_server, s3_locked_bucket, "compliance", 30) as target:
        receipt = target.deliver(make_payload(tmp_path, 2048))
    client = moto_server.client()
    key = receipt.object_key
    assert key is not None
    head = client.head_object(Bucket=s3_locked_bucket, Key=key)
    assert head["ObjectLockMode"] == "COMPLIANCE"
    until = head["ObjectLockRetainUntilDate"]
    assert (
        before + dt.timedelta(days=30) - dt.timedelta(seconds=2)
        <= until
        <= dt.datetime.now(dt.UTC) + dt.timedelta(days=30)
    )
    assert f"locked until {until:%Y-%m-%d %H:%M} UTC (compliance mode)" in receipt.detail
    # The manifest beside it is locked the same way: a consistent rewrite of both is refused too.
    manifest = client.head_object(Bucket=s3_locked_bucket, Key=manifest_key(key))
    assert manifest["ObjectLockMode"] == "COMPLIANCE"
    with pytest.raises(ClientError) as refused:
        client.delete_object(Bucket=s3_locked_bucket, Key=key, VersionId=head["VersionId"])
    assert refused.value.response["Error"]["Code"] == "AccessDenied"


def test_a_large_archive_is_locked_through_its_multipart_upload(
    tmp_path: Path, moto_server: MotoS3, s3_locked_bucket: str
) -> None:
    target = delivery(moto_server.url, s3_locked_bucket, transfer=SMALL_PARTS)
    target.settings = S3Settings(**{**_settings_of(target.settings), "lock_mode": "governance", "lock_days": 2})
    with target:
        receipt = target.deliver(make_payload(tmp_path, 11 * 1024 * 1024))
    head = moto_server.client().head_object(Bucket=s3_locked_bucket, Key=receipt.object_key)
    assert head["ObjectLockMode"] == "GOVERNANCE"
    assert "(governance mode)" in receipt.detail


def test_a_lock_on_a_bucket_without_object_lock_fails_permanently_with_what_to_do(
    tmp_path: Path, moto_server: MotoS3, s3_bucket: str
) -> None:
    with locked_delivery(moto_server, s3_bucket) as target, pytest.raises(DeliveryError) as failed:
        target.deliver(make_payload(tmp_path, 1024))
    assert failed.value.permanent
    assert failed.value.user_message == NOT_ENABLED
    assert moto_server.client().list_objects_v2(Bucket=s3_bucket).get("KeyCount", 0) == 0


def test_the_connection_test_says_whether_object_lock_is_on_and_refuses_a_lock_the_bucket_lacks(
    moto_server: MotoS3, s3_bucket: str, s3_locked_bucket: str
) -> None:
    with delivery(moto_server.url, s3_bucket) as plain:
        assert "S3 Object Lock is off for this bucket: anyone holding its keys can delete" in plain.test_connection()
    with locked_delivery(moto_server, s3_locked_bucket, "governance", 7) as locked:
        said = locked.test_connection()
    assert "S3 Object Lock is on for this bucket; each archive is locked for 7 days after delivery" in said
    with locked_delivery(moto_server, s3_bucket) as wrong, pytest.raises(DeliveryError) as refused:
        wrong.test_connection()
    assert refused.value.user_message == NOT_ENABLED


def test_pruning_leaves_locked_archives_and_says_until_when(
    tmp_path: Path, moto_server: MotoS3, s3_locked_bucket: str
) -> None:
    days = [dt.datetime(2026, 11, d, 4, 0, tzinfo=dt.UTC) for d in (20, 21, 22)]
    keys = []
    with locked_delivery(moto_server, s3_locked_bucket, "governance", 3) as target:
        for when in days:
            payload = make_payload(tmp_path, 512, name=f"lifeboat-alice-{when:%Y%m%dT%H%M%SZ}.zip", when=when)
            keys.append(target.deliver(payload).object_key)
        report = target.prune(
            RetentionPolicy(last=1), dt.UTC, name_prefix="lifeboat-alice-", verified=[k for k in keys if k]
        )
    assert report.deleted == ()
    assert sorted(s.key for s in report.skipped) == sorted(keys[:2])
    assert all("under S3 Object Lock until" in s.why for s in report.skipped)
    listed = moto_server.client().list_objects_v2(Bucket=s3_locked_bucket)["Contents"]
    assert {k for k in keys if k} <= {o["Key"] for o in listed}


@pytest.mark.parametrize(
    ("mode", "days", "field"),
    [
        ("forever", 3, "lock_mode"),
        ("governance", 0, "lock_days"),
        ("compliance", None, "lock_days"),
        ("governance", 36_501, "lock_days"),
        ("governance", True, "lock_days"),
    ],
)
def test_a_wrong_lock_setting_is_refused_in_words_for_its_field(mode: object, days: object, field: str) -> None:
    with pytest.raises(InvalidInput) as refused:
        S3Settings(bucket="my-bucket", lock_mode=mode, lock_days=days, **KEYS)  # type: ignore[arg-type]
    assert [name for name, _ in refused.value.problems] == [field]


def test_off_means_no_lock_and_a_rule_locks_from_delivery_to_the_second() -> None:
    assert S3Settings(bucket="my-bucket", lock_mode="off", lock_days=30, **KEYS).lock is None
    assert S3Settings(bucket="my-bucket", **KEYS).lock is None
    rule = S3Settings(bucket="my-bucket", lock_mode=" Governance ", lock_days=10, **KEYS).lock
    assert rule == LockRule("governance", 10)
    now = dt.datetime(2026, 12, 7, 4, 30, 15, 999_000, tzinfo=dt.UTC)
    assert rule.put_args(now) == {
        "ObjectLockMode": "GOVERNANCE",
        "ObjectLockRetainUntilDate": dt.datetime(2026, 12, 17, 4, 30, 15, tzinfo=dt.UTC),
    }


def test_the_least_privilege_policy_allows_setting_retention_only_when_archives_are_locked() -> None:
    plain = json.loads(iam_policy("my-bucket", "lifeboat"))
    locked = json.loads(iam_policy("my-bucket", "lifeboat", lock=True))
    actions = [a for s in locked["Statement"] for a in ([s["Action"]] if isinstance(s["Action"], str) else s["Action"])]
    assert "s3:PutObjectRetention" in actions and "s3:GetBucketObjectLockConfiguration" in actions
    assert "s3:PutObjectRetention" not in str(plain)
    assert "Bypass" not in str(locked)  # Lifeboat never needs to shorten a lock


def test_a_run_to_a_destination_added_from_the_cli_with_a_lock_delivers_a_locked_archive(
    app: Flask,
    runner: FlaskCliRunner,
    add_s3_from_cli: Callable[..., dict[str, Any]],
    moto_server: MotoS3,
    s3_locked_bucket: str,
) -> None:
    lock = ["--lock-mode", "governance", "--lock-days", "5"]
    row = add_s3_from_cli("AKIATESTKEY000000001", "any-secret", "--bucket", s3_locked_bucket, *lock)
    assert row["lock_summary"].startswith("Each archive is locked for 5 days after delivery (governance mode")
    tested = runner.invoke(args=["destination", "test", "alice@example.com", str(row["id"])])
    assert tested.exit_code == 0 and "S3 Object Lock is on for this bucket" in tested.output, tested.output
    policy = runner.invoke(args=["destination", "policy", "alice@example.com", str(row["id"])]).output
    assert "s3:PutObjectRetention" in policy
    with get_db(app).session(write=True) as session:
        user = find_user(session, "alice@example.com")
        assert user is not None
        run, _ = run_lifecycle.request_run(session, user.id, "manual", now=utcnow())
    jobs.init_app(app)  # the job context again, with the encryption keys the CLI stored the secret under
    state = execute_run(get_context(app), run.id, "w")
    with get_db(app).session() as session:
        attempt = session.scalars(select(DeliveryAttempt).where(DeliveryAttempt.run_id == run.id)).one()
        key, said = attempt.object_key, attempt.message
    assert state == RunState.DELIVERED, said
    head = moto_server.client().head_object(Bucket=s3_locked_bucket, Key=key)
    assert head["ObjectLockMode"] == "GOVERNANCE"
    assert f"locked until {head['ObjectLockRetainUntilDate']:%Y-%m-%d %H:%M} UTC (governance mode)" in said


def test_switching_the_lock_off_from_the_cli_needs_one_option_and_stops_locking(
    runner: FlaskCliRunner, add_s3_from_cli: Callable[..., dict[str, Any]], s3_locked_bucket: str
) -> None:
    row = add_s3_from_cli("AKIATESTKEY000000001", "any-secret", "--lock-mode", "compliance", "--lock-days", "3")
    refused = runner.invoke(args=["destination", "edit", "alice@example.com", str(row["id"]), "--lock-days", "0"])
    assert refused.exit_code != 0 and "Traceback" not in refused.output
    assert "1 to 36500" in refused.output
    off = runner.invoke(args=["destination", "edit", "alice@example.com", str(row["id"]), "--lock-mode", "off"])
    listed = json.loads(runner.invoke(args=["destination", "list", "alice@example.com", "--json"]).output)
    assert listed[0]["lock_summary"].startswith("Archives are not locked"), off.output
