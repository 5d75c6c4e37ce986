"""Receipts carry what the destination's server returned: S3 key, version id and ETag; the email's Message-ID.

Why against real servers: the point of a receipt is that a user can find the
very object or message with it, so each field is compared with what moto's
S3 reports for the stored object and what aiosmtpd received over the socket.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from delivery.email import EmailDelivery
from delivery.s3.settings import MIB
from tests.delivery.test_email import ALICE, only_message, smtp_settings
from tests.delivery.test_email import make_payload as email_payload
from tests.delivery.test_s3 import SMALL_PARTS, delivery
from tests.delivery.test_s3 import make_payload as s3_payload
from tests.servers.s3 import MotoS3
from tests.servers.smtp import SmtpServer

pytestmark = pytest.mark.server


def _versioned(moto: MotoS3, bucket: str) -> None:
    moto.client().put_bucket_versioning(Bucket=bucket, VersioningConfiguration={"Status": "Enabled"})


@pytest.mark.parametrize("size", [100_000, 12 * MIB], ids=["single-part", "multipart"])
def test_an_s3_receipt_names_the_key_version_and_etag_the_bucket_holds(
    moto_server: MotoS3, s3_bucket: str, tmp_path: Path, size: int
) -> None:
    _versioned(moto_server, s3_bucket)
    with delivery(moto_server.url, s3_bucket, transfer=SMALL_PARTS) as target:
        receipt = target.deliver(s3_payload(tmp_path, size))
    key = "lifeboat/2026/11/lifeboat-alice-20261125T040000Z.zip"
    head = moto_server.client().head_object(Bucket=s3_bucket, Key=key)
    assert receipt.object_key == key and receipt.location == f"s3://{s3_bucket}/{key}"
    assert receipt.version_id is not None and receipt.version_id == head["VersionId"]
    assert receipt.etag is not None and receipt.etag == head["ETag"].strip('"') and '"' not in receipt.etag
    assert receipt.message_id is None


def test_an_earlier_attempts_object_gets_the_receipt_the_store_reports_for_it(
    moto_server: MotoS3, s3_bucket: str, tmp_path: Path
) -> None:
    _versioned(moto_server, s3_bucket)
    payload = s3_payload(tmp_path, 50_000)
    with delivery(moto_server.url, s3_bucket) as target:
        first = target.deliver(payload)
        again = target.deliver(payload)
    assert "earlier attempt" in again.detail
    assert (again.object_key, again.version_id, again.etag) == (first.object_key, first.version_id, first.etag)


def test_an_unversioned_bucket_gives_no_version_id(moto_server: MotoS3, s3_bucket: str, tmp_path: Path) -> None:
    with delivery(moto_server.url, s3_bucket) as target:
        receipt = target.deliver(s3_payload(tmp_path, 10_000))
    assert receipt.version_id is None and receipt.etag and receipt.object_key


@pytest.mark.parametrize("attach", [True, False], ids=["attached", "download-link"])
def test_an_email_receipt_is_the_message_id_the_server_received(
    smtp_server: SmtpServer, tmp_path: Path, attach: bool
) -> None:
    payload = email_payload(tmp_path, size=5000, download_url="https://lifeboat.example.net/a/t")
    limit = 1_000_000 if attach else 1000
    receipt = EmailDelivery(smtp_settings(smtp_server), ALICE, attach_limit_bytes=limit).deliver(payload)
    received = only_message(smtp_server)["Message-ID"]
    assert receipt.message_id and receipt.message_id == received
    assert receipt.message_id.startswith("<") and receipt.message_id.endswith("@example.net>")
    assert (receipt.object_key, receipt.version_id, receipt.etag) == (None, None, None)
