"""Choosing the archive store from settings: folder by default, the bucket when asked, nothing half-set."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

import config as settings
from store.archive_bucket import BucketArchiveFiles
from store.archive_store_settings import archive_files_from_config

BUCKET = {
    "ARCHIVE_STORE": "s3",
    "ARCHIVE_BUCKET": "lifeboat-archives",
    "ARCHIVE_BUCKET_ENDPOINT_URL": "https://s3.example.net",
    "ARCHIVE_BUCKET_REGION": "eu-central-1",
    "ARCHIVE_BUCKET_ACCESS_KEY_ID": "AKIAEXAMPLE",
    "ARCHIVE_BUCKET_SECRET_ACCESS_KEY": "secret-value",
}


def config(tmp_path: Path, **values: Any) -> dict[str, Any]:
    """The settings as the app has them (every default from the schema), with `values` on top."""
    return {**settings.load(str(tmp_path), env={}), "ARCHIVE_DIR": str(tmp_path / "archives"), **values}


def test_it_keeps_archives_in_the_folder_by_default(tmp_path: Path) -> None:
    module = pytest.importorskip("store.archive_files", reason="needs a1's store/archive_files.py")
    files = archive_files_from_config(config(tmp_path))
    assert isinstance(files, module.LocalArchiveFiles)


def test_it_builds_the_bucket_store_with_archive_dir_as_scratch(tmp_path: Path) -> None:
    files = archive_files_from_config(
        config(tmp_path, **BUCKET, ARCHIVE_BUCKET_PREFIX="/lb/", ARCHIVE_BUCKET_PATH_STYLE="true")
    )
    assert isinstance(files, BucketArchiveFiles)
    s = files.settings
    assert (s.bucket, s.endpoint_url, s.region, s.path_style) == (
        "lifeboat-archives",
        "https://s3.example.net",
        "eu-central-1",
        True,
    )
    assert files.key("3/x.zip") == "lb/3/x.zip"
    assert files.scratch() == tmp_path / "archives"
    assert "secret-value" not in repr(s)


def test_without_keys_it_uses_the_default_credential_chain(tmp_path: Path) -> None:
    values = {k: v for k, v in BUCKET.items() if "ACCESS" not in k}
    files = archive_files_from_config(config(tmp_path, **values))
    assert isinstance(files, BucketArchiveFiles)
    assert files.settings.access_key_id is None


def test_streaming_downloads_switch_presigned_urls_off(tmp_path: Path) -> None:
    files = archive_files_from_config(config(tmp_path, **BUCKET, ARCHIVE_BUCKET_DOWNLOADS="stream"))
    assert files.download_url("1/x.zip", filename="x.zip", expires_in=60) is None


@pytest.mark.parametrize(
    ("values", "complaint"),
    [
        ({"ARCHIVE_STORE": "nfs"}, "ARCHIVE_STORE"),
        ({**BUCKET, "ARCHIVE_BUCKET": " "}, "ARCHIVE_BUCKET"),
        ({**BUCKET, "ARCHIVE_BUCKET_SECRET_ACCESS_KEY": None}, "both"),
        ({**BUCKET, "ARCHIVE_BUCKET_ENDPOINT_URL": "s3.example.net"}, "https://"),
        ({**BUCKET, "ARCHIVE_BUCKET_PATH_STYLE": "maybe"}, "PATH_STYLE"),
        ({**BUCKET, "ARCHIVE_BUCKET_DOWNLOADS": "email"}, "DOWNLOADS"),
    ],
    ids=["unknown-store", "no-bucket", "half-a-key-pair", "endpoint-without-scheme", "bad-flag", "bad-download-mode"],
)
def test_it_refuses_settings_that_cannot_work(tmp_path: Path, values: dict[str, Any], complaint: str) -> None:
    with pytest.raises(ValueError, match=complaint):
        archive_files_from_config(config(tmp_path, **values))
