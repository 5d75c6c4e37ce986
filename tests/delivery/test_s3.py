"""S3 delivery against moto's real server over sockets: uploads, verification, retention.

moto trusts whatever checksum it is sent, so damage is injected on the wire by
the fault proxy (`tests/servers/s3.py`) and the tests check that Lifeboat's own
verification catches it. What botocore actually sent is read from its
`before-send` event, not assumed from the settings.
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import json
import os
import socket
from pathlib import Path
from typing import Any

import pytest

from delivery.contract import Payload
from delivery.s3 import S3Delivery, S3Settings, TransferSettings, manifest_key
from delivery.s3.settings import MIB, Timeouts
from errors import DeliveryError
from tests.servers.s3 import Fault, FaultProxy, MotoS3, s3_error

pytestmark = pytest.mark.server

LOOPBACK = ["127.0.0.0/8", "::1"]
KEYS: dict[str, Any] = {  # S3Settings fields
    "access_key_id": "AKIATESTKEY000000001",
    "secret_access_key": "test-secret-never-logged-123",
}
WHEN = dt.datetime(2026, 11, 25, 4, 0, tzinfo=dt.UTC)
QUICK = Timeouts(connect=2, read=10, max_attempts=2)  # one botocore retry keeps backoff short
SMALL_PARTS = TransferSettings(multipart_threshold=8 * MIB, part_size=5 * MIB, concurrency=3)


def make_payload(
    tmp_path: Path,
    size: int,
    name: str = "lifeboat-alice-20261125T040000Z.zip",
    when: dt.datetime = WHEN,
    data: bytes | None = None,
) -> Payload:
    data = os.urandom(size) if data is None else data
    path = tmp_path / name
    path.write_bytes(data)
    manifest = json.dumps({"format": 1, "name": name}).encode()
    return Payload(
        path=path,
        sha256=hashlib.sha256(data).hexdigest(),
        size=len(data),
        filename=name,
        user_email="alice@example.com",
        user_display_name="Alice",
        created_at=when,
        manifest=manifest,
    )


def delivery(endpoint: str, bucket: str, **options: Any) -> S3Delivery:
    settings: dict[str, Any] = {"bucket": bucket, "endpoint_url": endpoint, "path_style": True, **KEYS}
    for name in ("path_style", "retention_keep", "prefix", "access_key_id", "secret_access_key"):
        if name in options:
            settings[name] = options.pop(name)
    options.setdefault("allow_list", LOOPBACK)
    return S3Delivery(S3Settings(**settings), **options)


def record_requests(target: S3Delivery) -> list[Any]:
    sent: list[Any] = []
    target.client.meta.events.register("before-send.s3", lambda request, **_: sent.append(request))
    return sent


def text(value: str | bytes) -> str:
    return value.decode() if isinstance(value, bytes) else value


def stored(moto: MotoS3, bucket: str, key: str) -> bytes:
    return moto.client().get_object(Bucket=bucket, Key=key)["Body"].read()


def keys(moto: MotoS3, bucket: str) -> list[str]:
    return sorted(o["Key"] for o in moto.client().list_objects_v2(Bucket=bucket).get("Contents", []))


def test_it_delivers_an_archive_under_prefix_year_month_and_verifies_it(
    moto_server: MotoS3, s3_bucket: str, tmp_path: Path
) -> None:
    payload = make_payload(tmp_path, 100_000)
    with delivery(moto_server.url, s3_bucket) as target:
        receipt = target.deliver(payload)
    key = "lifeboat/2026/11/lifeboat-alice-20261125T040000Z.zip"
    assert receipt.location == f"s3://{s3_bucket}/{key}"
    assert "SHA-256" in receipt.detail and receipt.warnings == ()
    assert stored(moto_server, s3_bucket, key) == payload.path.read_bytes()
    assert stored(moto_server, s3_bucket, manifest_key(key)) == payload.manifest
    assert manifest_key(key).endswith("lifeboat-alice-20261125T040000Z.manifest.json")


def test_it_sends_sha256_and_md5_headers_and_never_chunked_trailers(
    moto_server: MotoS3, s3_bucket: str, tmp_path: Path
) -> None:
    payload = make_payload(tmp_path, 2 * MIB)
    with delivery(moto_server.url, s3_bucket) as target:
        sent = record_requests(target)
        target.deliver(payload)
    put = next(r for r in sent if r.method == "PUT" and r.url.endswith(".zip"))
    expected = base64.b64encode(hashlib.sha256(payload.path.read_bytes()).digest()).decode()
    assert text(put.headers["x-amz-checksum-sha256"]) == expected
    assert "Content-MD5" in put.headers
    assert text(put.headers["If-None-Match"]) == "*"
    for request in sent:
        assert "x-amz-trailer" not in {k.lower() for k in request.headers}
        assert "aws-chunked" not in text(request.headers.get("Content-Encoding", ""))


def test_it_uses_path_style_urls_when_asked(moto_server: MotoS3, s3_bucket: str, tmp_path: Path) -> None:
    with delivery(moto_server.url, s3_bucket, path_style=True) as target:
        sent = record_requests(target)
        target.deliver(make_payload(tmp_path, 1000))
    assert all(r.url.startswith(f"{moto_server.url}/{s3_bucket}/") for r in sent)


def test_it_uses_virtual_host_urls_when_asked(
    moto_server: MotoS3, s3_bucket: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    real = socket.getaddrinfo

    def resolve(host: Any, *args: Any, **kwargs: Any) -> Any:
        if isinstance(host, str) and host.endswith(".localhost"):
            host = "127.0.0.1"
        return real(host, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", resolve)
    endpoint = f"http://localhost:{moto_server.port}"
    with delivery(endpoint, s3_bucket, path_style=False) as target:
        sent = record_requests(target)
        receipt = target.deliver(make_payload(tmp_path, 1000))
    assert receipt.location.startswith(f"s3://{s3_bucket}/")
    virtual = f"http://{s3_bucket}.localhost:{moto_server.port}/"
    assert sent and all(r.url.startswith(virtual) for r in sent)


def test_it_uploads_large_archives_in_parts_with_a_composite_checksum(
    moto_server: MotoS3, s3_bucket: str, tmp_path: Path
) -> None:
    payload = make_payload(tmp_path, 20 * MIB + 123)
    with delivery(moto_server.url, s3_bucket, transfer=SMALL_PARTS) as target:
        sent = record_requests(target)
        receipt = target.deliver(payload)
    parts = [r for r in sent if "partNumber=" in r.url]
    assert len(parts) == 5 and all("x-amz-checksum-sha256" in r.headers for r in parts)
    data = payload.path.read_bytes()
    digests = [hashlib.sha256(data[i : i + 5 * MIB]).digest() for i in range(0, len(data), 5 * MIB)]
    composite = base64.b64encode(hashlib.sha256(b"".join(digests)).digest()).decode()
    key = receipt.location.split("/", 3)[3]
    head = moto_server.client().head_object(Bucket=s3_bucket, Key=key, ChecksumMode="ENABLED")
    assert head["ChecksumSHA256"].split("-")[0] == composite
    assert stored(moto_server, s3_bucket, key) == data
    assert "SHA-256" in receipt.detail and receipt.warnings == ()


@pytest.mark.parametrize("size", [300_000, 12 * MIB], ids=["single-part", "multipart"])
def test_it_removes_an_archive_damaged_in_transit_and_reports_failure(
    moto_server: MotoS3, fault_proxy: FaultProxy, s3_bucket: str, tmp_path: Path, size: int
) -> None:
    def archive_body(seen: Any) -> bool:
        return seen.method == "PUT" and ".zip" in seen.path and len(seen.body) > 1000

    fault_proxy.add(Fault(flip_byte_at=4242), when=archive_body)
    target = delivery(fault_proxy.url, s3_bucket, transfer=SMALL_PARTS)
    with target, pytest.raises(DeliveryError) as caught:
        target.deliver(make_payload(tmp_path, size))
    assert caught.value.permanent is False
    assert "damaged" in caught.value.user_message and "removed" in caught.value.user_message
    assert not [k for k in keys(moto_server, s3_bucket) if k.endswith(".zip")]


def test_it_retries_server_errors_inside_one_attempt_and_succeeds(
    moto_server: MotoS3, fault_proxy: FaultProxy, s3_bucket: str, tmp_path: Path
) -> None:
    fault_proxy.add(
        s3_error(500, "InternalError", "We encountered an internal error."),
        when=lambda s: s.method == "PUT",
    )
    with delivery(fault_proxy.url, s3_bucket, timeouts=QUICK) as target:
        receipt = target.deliver(make_payload(tmp_path, 5000))
    assert receipt.location.endswith(".zip")
    assert sum(1 for s in fault_proxy.seen if s.method == "PUT" and s.path.endswith(".zip")) == 2


def test_it_reports_persistent_throttling_as_transient(
    moto_server: MotoS3, fault_proxy: FaultProxy, s3_bucket: str, tmp_path: Path
) -> None:
    fault_proxy.add(
        s3_error(503, "SlowDown", "Reduce your request rate."),
        when=lambda s: s.method == "PUT",
        times=None,
    )
    target = delivery(fault_proxy.url, s3_bucket, timeouts=QUICK)
    with target, pytest.raises(DeliveryError) as caught:
        target.deliver(make_payload(tmp_path, 5000))
    assert caught.value.permanent is False
    assert "SlowDown" in caught.value.user_message and "temporary" in caught.value.user_message


def test_it_classifies_a_stalled_store_as_a_transient_timeout(
    moto_server: MotoS3, fault_proxy: FaultProxy, s3_bucket: str, tmp_path: Path
) -> None:
    fault_proxy.add(Fault(delay=3.0), times=None)
    target = delivery(fault_proxy.url, s3_bucket, timeouts=Timeouts(connect=1, read=0.3, max_attempts=2))
    with target, pytest.raises(DeliveryError) as caught:
        target.deliver(make_payload(tmp_path, 5000))
    assert caught.value.permanent is False
    assert "Timed out" in caught.value.user_message


def test_it_never_overwrites_a_different_object_at_the_same_key(
    moto_server: MotoS3, s3_bucket: str, tmp_path: Path
) -> None:
    payload = make_payload(tmp_path, 5000)
    key = "lifeboat/2026/11/" + payload.filename
    moto_server.client().put_object(Bucket=s3_bucket, Key=key, Body=b"someone else's file")
    with delivery(moto_server.url, s3_bucket) as target, pytest.raises(DeliveryError) as caught:
        target.deliver(payload)
    assert caught.value.permanent is True
    assert "never overwrites" in caught.value.user_message
    assert stored(moto_server, s3_bucket, key) == b"someone else's file"


def test_it_treats_its_own_earlier_upload_as_delivered(moto_server: MotoS3, s3_bucket: str, tmp_path: Path) -> None:
    payload = make_payload(tmp_path, 12 * MIB)
    with delivery(moto_server.url, s3_bucket, transfer=SMALL_PARTS) as target:
        first = target.deliver(payload)
        second = target.deliver(payload)
    assert first.location == second.location
    assert second.detail.startswith("already delivered by an earlier attempt")
    assert keys(moto_server, s3_bucket) == sorted(
        [first.location.split("/", 3)[3], manifest_key(first.location.split("/", 3)[3])]
    )


def test_it_refuses_an_archive_that_changed_on_disk(moto_server: MotoS3, s3_bucket: str, tmp_path: Path) -> None:
    payload = make_payload(tmp_path, 5000)
    payload.path.write_bytes(b"x" * 5000)  # same size, different bytes
    with delivery(moto_server.url, s3_bucket) as target, pytest.raises(DeliveryError) as caught:
        target.deliver(payload)
    assert caught.value.permanent is True and "export again" in caught.value.user_message
    assert keys(moto_server, s3_bucket) == []


def test_it_falls_back_to_the_md5_etag_when_the_store_ignores_sha256(
    moto_server: MotoS3, fault_proxy: FaultProxy, s3_bucket: str, tmp_path: Path
) -> None:
    ignore = Fault(drop_request_headers=("x-amz-checksum-sha256", "x-amz-sdk-checksum-algorithm"))
    fault_proxy.add(ignore, times=None)
    with delivery(fault_proxy.url, s3_bucket) as target:
        receipt = target.deliver(make_payload(tmp_path, 5000))
    assert receipt.detail == "verified by HEAD: size and MD5 ETag match"
    assert receipt.warnings[0].startswith("this store does not support SHA-256 checksums; verified by")


def test_it_uploads_without_checksum_headers_when_the_store_rejects_them(
    moto_server: MotoS3, fault_proxy: FaultProxy, s3_bucket: str, tmp_path: Path
) -> None:
    fault_proxy.add(
        s3_error(400, "InvalidArgument", "x-amz-checksum-sha256 is not supported"),
        when=lambda s: "x-amz-checksum-sha256" in {k.lower() for k in s.headers},
        times=None,
    )
    with delivery(fault_proxy.url, s3_bucket, transfer=SMALL_PARTS) as target:
        receipt = target.deliver(make_payload(tmp_path, 12 * MIB))
    assert any("rejected SHA-256 checksum headers" in w for w in receipt.warnings)
    assert "ETag" in receipt.detail


def test_it_downloads_again_when_the_store_reports_no_usable_hash(
    moto_server: MotoS3, fault_proxy: FaultProxy, s3_bucket: str, tmp_path: Path
) -> None:
    fault_proxy.add(
        Fault(
            drop_request_headers=("x-amz-checksum-sha256", "x-amz-sdk-checksum-algorithm"),
            response_headers={"ETag": '"not-an-md5"'},
        ),
        times=None,
    )
    with delivery(fault_proxy.url, s3_bucket) as target:
        receipt = target.deliver(make_payload(tmp_path, 5000))
    assert receipt.detail == "verified by downloading it again: size and SHA-256 match"
    assert "verified by downloading the archive again" in receipt.warnings[0]


def test_delivering_deletes_nothing_and_pruning_after_it_keeps_the_newest_with_their_manifests(
    moto_server: MotoS3, s3_bucket: str, tmp_path: Path
) -> None:
    foreign = "lifeboat/notes-i-keep-here.txt"
    moto_server.client().put_object(Bucket=s3_bucket, Key=foreign, Body=b"mine")
    names = [f"lifeboat-alice-2026{m:02d}01T040000Z.zip" for m in (8, 9, 10, 11)]
    with delivery(moto_server.url, s3_bucket, retention_keep=2) as target:
        receipts = [
            target.deliver(make_payload(tmp_path, 1000, name, when=WHEN.replace(month=m)))
            for name, m in zip(names, (8, 9, 10, 11), strict=True)
        ]
        delivered = [r.location.split("/", 3)[3] for r in receipts]
        assert keys(moto_server, s3_bucket) == sorted([foreign, *delivered, *map(manifest_key, delivered)])
        report = target.prune(target.settings.retention, dt.UTC, name_prefix="lifeboat-alice-", verified=delivered)
    kept = delivered[-2:]
    assert keys(moto_server, s3_bucket) == sorted([foreign, *kept, *map(manifest_key, kept)])
    assert report.summary() == "Retention: deleted 2 old archive(s), kept 2."


def test_pruning_never_removes_the_archive_just_delivered(moto_server: MotoS3, s3_bucket: str, tmp_path: Path) -> None:
    with delivery(moto_server.url, s3_bucket, retention_keep=1) as target:
        first = target.deliver(make_payload(tmp_path, 1000, "lifeboat-alice-20261101T040000Z.zip"))
        # An archive dated earlier than the one already there (a re-send) is still the one just delivered.
        latest = target.deliver(
            make_payload(tmp_path, 1000, "lifeboat-alice-20261001T040000Z.zip", when=WHEN.replace(month=10))
        )
        delivered = [first.object_key or "", latest.object_key or ""]
        report = target.prune(
            target.settings.retention,
            dt.UTC,
            name_prefix="lifeboat-alice-",
            verified=delivered,
            pinned={delivered[1]: "just delivered"},
        )
    assert report.deleted == ()
    assert keys(moto_server, s3_bucket) == sorted([*delivered, *map(manifest_key, delivered)])


def test_it_proves_the_connection_with_a_probe_it_cleans_up(moto_server: MotoS3, s3_bucket: str) -> None:
    with delivery(moto_server.url, s3_bucket, retention_keep=3) as target:
        summary = target.test_connection()
    assert summary.startswith(f"Wrote, read back and deleted a test object in s3://{s3_bucket}/lifeboat/")
    assert "listing works" in summary
    assert keys(moto_server, s3_bucket) == []
