"""The archive bucket's own promises: damage on the wire is caught, odd stores still get safe writes.

Faults are injected by the loopback proxy of tests/servers/s3.py, because
moto itself accepts a wrong SHA-256 checksum or Content-MD5.
"""

from __future__ import annotations

import hashlib
import logging
import os
import re
from pathlib import Path

import pytest

from store.archive_bucket import ArchiveExistsError, ArchiveFilesError, BucketArchiveFiles, content_disposition
from tests.servers.s3 import Fault, FaultProxy, MotoS3, Seen, s3_error
from tests.store.archive_servers import MiB, bucket_files

pytestmark = pytest.mark.server


def stage(files: BucketArchiveFiles, data: bytes, name: str = "staged.zip") -> tuple[Path, str, int]:
    path = files.scratch() / name
    path.write_bytes(data)
    return path, hashlib.sha256(data).hexdigest(), len(data)


def keys(moto: MotoS3, bucket: str) -> list[str]:
    return [item["Key"] for item in moto.client().list_objects_v2(Bucket=bucket).get("Contents", [])]


def uploads(seen: Seen) -> bool:
    return seen.method == "PUT" and ".zip" in seen.path and len(seen.body) > 1000


def header(seen: Seen, name: str) -> str | None:
    return next((v for k, v in seen.headers.items() if k.lower() == name.lower()), None)


@pytest.fixture
def via_proxy(fault_proxy: FaultProxy, s3_bucket: str, tmp_path: Path) -> BucketArchiveFiles:
    return bucket_files(fault_proxy.url, s3_bucket, tmp_path / "scratch", max_attempts=1)


@pytest.mark.parametrize("size", [50_000, 9 * MiB], ids=["single-part", "multipart"])
def test_it_detects_a_byte_flipped_on_the_wire_and_removes_the_object(
    moto_server: MotoS3, fault_proxy: FaultProxy, via_proxy: BucketArchiveFiles, s3_bucket: str, size: int
) -> None:
    fault_proxy.add(Fault(flip_byte_at=4242), when=uploads)
    path, sha, _ = stage(via_proxy, os.urandom(size))
    with pytest.raises(ArchiveFilesError, match="damaged"):
        via_proxy.put("3/flipped.zip", path, sha256=sha, size=size)
    assert keys(moto_server, s3_bucket) == []


def test_it_reads_the_object_back_when_the_store_reports_no_sha256(
    moto_server: MotoS3, fault_proxy: FaultProxy, via_proxy: BucketArchiveFiles, s3_bucket: str
) -> None:
    no_checksum = Fault(response_headers={"x-amz-checksum-sha256": "", "ETag": '"not-an-md5"'})
    fault_proxy.add(no_checksum, when=lambda s: s.method == "HEAD", times=None)
    fault_proxy.add(Fault(flip_byte_at=10), when=uploads)
    path, sha, size = stage(via_proxy, os.urandom(20_000))
    with pytest.raises(ArchiveFilesError, match="reading it back"):
        via_proxy.put("3/reread.zip", path, sha256=sha, size=size)
    assert keys(moto_server, s3_bucket) == []
    path, sha, size = stage(via_proxy, os.urandom(20_000), "good.zip")
    via_proxy.put("3/good.zip", path, sha256=sha, size=size)
    assert [s.method for s in fault_proxy.seen][-2:] == ["HEAD", "GET"]


def test_it_falls_back_to_head_before_put_when_the_store_refuses_if_none_match(
    fault_proxy: FaultProxy, via_proxy: BucketArchiveFiles, caplog: pytest.LogCaptureFixture
) -> None:
    refuse = s3_error(501, "NotImplemented", "A header you provided implies functionality that is not implemented")
    fault_proxy.add(refuse, when=lambda s: header(s, "If-None-Match") is not None, times=None)
    path, sha, size = stage(via_proxy, b"first" * 300)
    with caplog.at_level(logging.WARNING, logger="lifeboat.archive_bucket"):
        via_proxy.put("4/a.zip", path, sha256=sha, size=size)
    assert via_proxy.uploader.conditional_writes is False
    assert "If-None-Match" in caplog.text
    other, sha2, size2 = stage(via_proxy, b"second" * 300, "other.zip")
    with pytest.raises(ArchiveExistsError):
        via_proxy.put("4/a.zip", other, sha256=sha2, size=size2)
    with via_proxy.open("4/a.zip") as handle:
        assert handle.read() == b"first" * 300


def test_it_uploads_without_checksum_headers_when_the_store_refuses_them(
    fault_proxy: FaultProxy, via_proxy: BucketArchiveFiles
) -> None:
    refuse = s3_error(400, "InvalidArgument", "x-amz-checksum-sha256 is not supported")
    fault_proxy.add(refuse, when=lambda s: header(s, "x-amz-checksum-sha256") is not None, times=None)
    path, sha, size = stage(via_proxy, os.urandom(9 * MiB))
    via_proxy.put("4/plain.zip", path, sha256=sha, size=size)
    assert via_proxy.uploader.checksum_headers is False
    with via_proxy.open("4/plain.zip") as handle:
        assert hashlib.sha256(handle.read()).hexdigest() == sha


def test_a_second_node_with_its_own_scratch_folder_reads_what_the_first_wrote(
    moto_server: MotoS3, s3_bucket: str, tmp_path: Path
) -> None:
    worker = bucket_files(moto_server.url, s3_bucket, tmp_path / "worker", prefix="lb")
    web = bucket_files(moto_server.url, s3_bucket, tmp_path / "web", prefix="/lb/")
    data = os.urandom(4096)
    path, sha, size = stage(worker, data)
    worker.put("9/shared.zip", path, sha256=sha, size=size)
    assert keys(moto_server, s3_bucket) == ["lb/9/shared.zip"]
    assert web.exists("9/shared.zip")
    with web.open("9/shared.zip") as handle:
        assert handle.read() == data


def test_the_presigned_url_is_short_lived_and_names_the_file(
    moto_server: MotoS3, s3_bucket: str, tmp_path: Path
) -> None:
    files = bucket_files(moto_server.url, s3_bucket, tmp_path / "scratch")
    url = files.download_url("9/x.zip", filename="lifeboat-x.zip", expires_in=300)
    assert url is not None and "X-Amz-Expires=300" in url
    assert "response-content-disposition=attachment" in url
    with pytest.raises(ValueError):
        files.download_url("9/x.zip", filename="x.zip", expires_in=8 * 24 * 3600)


def test_streaming_mode_hands_out_no_url(moto_server: MotoS3, s3_bucket: str, tmp_path: Path) -> None:
    files = bucket_files(moto_server.url, s3_bucket, tmp_path / "scratch", redirect_downloads=False)
    assert files.download_url("9/x.zip", filename="x.zip", expires_in=60) is None


@pytest.mark.parametrize("relpath", ["../x.zip", "/etc/x.zip", "a//b.zip", "a/./b.zip", "a\\b.zip", "a/b\n.zip", ""])
def test_it_refuses_paths_that_could_leave_the_prefix(tmp_path: Path, relpath: str) -> None:
    files = bucket_files("http://127.0.0.1:9", "some-bucket", tmp_path)
    with pytest.raises(ValueError):
        files.key(relpath)


def test_content_disposition_keeps_header_syntax_whatever_the_name() -> None:
    assert content_disposition("a.zip") == 'attachment; filename="a.zip"'
    hostile = content_disposition('x"; filename=evil.exe\r\nSet-Cookie: a=b;ü.zip')
    assert "\r" not in hostile and "\n" not in hostile
    assert hostile.startswith('attachment; filename="x__ filename=evil.exe__Set-Cookie: a=b__.zip"; ')
    assert hostile.count('"') == 2
    assert "filename*=UTF-8''x%22%3B%20filename%3Devil.exe%0D%0ASet-Cookie%3A%20a%3Db%3B%C3%BC.zip" in hostile


def test_it_says_which_object_it_could_not_read(moto_server: MotoS3, s3_bucket: str, tmp_path: Path) -> None:
    files = bucket_files(moto_server.url, "no-such-bucket-here", tmp_path)
    with pytest.raises(ArchiveFilesError, match=re.escape("s3://no-such-bucket-here/1/x.zip")):
        files.open("1/x.zip")
