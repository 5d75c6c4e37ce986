"""A delivered archive checked again later, from its receipt, against moto's real server (issue 16's scrub).

Each kind of damage is made with moto's admin client after a real delivery:
deleted, overwritten (same size, other bytes), truncated, hidden behind a delete
marker or shadowed by a newer version in a versioned bucket, and made unreadable
(the delivering key loses s3:GetObject). A healthy copy must say healthy at both depths.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest

from delivery.contract import Receipt
from delivery.s3.inspection import CHANGED, HEALTHY, MISSING, UNREADABLE, Delivered
from tests.delivery.test_s3 import delivery, make_payload
from tests.servers.s3 import MotoS3

pytestmark = pytest.mark.server
SIZE = 4096


def delivered_once(tmp_path: Path, moto_server: MotoS3, bucket: str, **options: Any) -> tuple[Delivered, bytes]:
    data = os.urandom(SIZE)
    payload = make_payload(tmp_path, SIZE, data=data)
    with delivery(moto_server.url, bucket, **options) as target:
        receipt: Receipt = target.deliver(payload)
    assert receipt.object_key is not None
    found = Delivered(receipt.object_key, payload.size, payload.sha256, receipt.etag, receipt.version_id)
    return found, data


def inspect(moto_server: MotoS3, bucket: str, found: Delivered, *, deep: bool, **options: Any) -> Any:
    with delivery(moto_server.url, bucket, **options) as target:
        return target.inspect(found, deep=deep)


@pytest.mark.parametrize("deep", [False, True])
def test_a_healthy_copy_is_healthy_at_both_depths(
    tmp_path: Path, moto_server: MotoS3, s3_bucket: str, deep: bool
) -> None:
    found, _ = delivered_once(tmp_path, moto_server, s3_bucket)
    health = inspect(moto_server, s3_bucket, found, deep=deep)
    assert (health.state, health.deep) == (HEALTHY, deep)


def test_a_deleted_archive_is_missing(tmp_path: Path, moto_server: MotoS3, s3_bucket: str) -> None:
    found, _ = delivered_once(tmp_path, moto_server, s3_bucket)
    moto_server.client().delete_object(Bucket=s3_bucket, Key=found.key)
    health = inspect(moto_server, s3_bucket, found, deep=False)
    assert health.state == MISSING and "is gone" in health.detail


def test_an_overwrite_of_the_same_size_is_found_by_head_and_a_truncation_by_its_size(
    tmp_path: Path, moto_server: MotoS3, s3_bucket: str
) -> None:
    found, data = delivered_once(tmp_path, moto_server, s3_bucket)
    client = moto_server.client()
    client.put_object(Bucket=s3_bucket, Key=found.key, Body=bytes(reversed(data)))
    overwritten = inspect(moto_server, s3_bucket, found, deep=False)
    assert overwritten.state == CHANGED and "rewritten" in overwritten.detail
    client.put_object(Bucket=s3_bucket, Key=found.key, Body=data[: SIZE // 2])
    truncated = inspect(moto_server, s3_bucket, found, deep=False)
    assert truncated.state == CHANGED and f"is {SIZE // 2} bytes now" in truncated.detail


def test_a_rewrite_the_etag_cannot_show_is_caught_when_the_data_is_read(
    tmp_path: Path, moto_server: MotoS3, s3_bucket: str
) -> None:
    # A receipt without an ETag (some stores answer none): only reading the data can tell.
    found, data = delivered_once(tmp_path, moto_server, s3_bucket)
    moto_server.client().put_object(Bucket=s3_bucket, Key=found.key, Body=bytes(reversed(data)))
    blind = Delivered(found.key, found.size, found.sha256)
    assert inspect(moto_server, s3_bucket, blind, deep=False).state == HEALTHY  # what HEAD alone can know
    deep = inspect(moto_server, s3_bucket, blind, deep=True)
    assert (deep.state, deep.deep) == (CHANGED, True) and "SHA-256" in deep.detail


def test_in_a_versioned_bucket_a_delete_marker_and_a_newer_version_are_both_reported(
    tmp_path: Path, moto_server: MotoS3, s3_locked_bucket: str
) -> None:
    found, data = delivered_once(tmp_path, moto_server, s3_locked_bucket)
    assert found.version_id is not None
    client = moto_server.client()
    client.put_object(Bucket=s3_locked_bucket, Key=found.key, Body=bytes(reversed(data)))
    shadowed = inspect(moto_server, s3_locked_bucket, found, deep=False)
    assert shadowed.state == CHANGED and "a newer object replaced the delivered one" in shadowed.detail
    client.delete_object(Bucket=s3_locked_bucket, Key=found.key)
    hidden = inspect(moto_server, s3_locked_bucket, found, deep=False)
    assert hidden.state == MISSING and "remove the delete marker" in hidden.detail


def test_a_key_that_lost_read_access_makes_the_archive_unreadable_not_healthy(
    tmp_path: Path,
    moto_server: MotoS3,
    s3_bucket: str,
    moto_iam_user: Any,
) -> None:
    found, _ = delivered_once(tmp_path, moto_server, s3_bucket)
    write_only = {
        "Version": "2012-10-17",
        "Statement": [{"Effect": "Allow", "Action": ["s3:PutObject"], "Resource": f"arn:aws:s3:::{s3_bucket}/*"}],
    }
    keys = moto_iam_user(write_only)  # moto checks keys from here on
    health = inspect(moto_server, s3_bucket, found, deep=False, **keys)
    assert health.state == UNREADABLE and "s3:GetObject" in health.detail
