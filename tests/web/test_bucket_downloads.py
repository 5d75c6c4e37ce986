"""Archives in the operator's bucket: written by one process, downloaded through another.

Why: with ARCHIVE_STORE=s3 the web, scheduler and worker hosts share nothing
but the database and the bucket. Here one app (a worker's view: its own
instance folder and scratch space) exports into a bucket on moto's server, and
a second app with a different, empty archive folder serves the download — by a
short-lived presigned redirect, or by relaying the bytes when browsers cannot
reach the bucket.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import shutil
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from flask import Flask

from app import create_app
from jobs.download_links import create_link
from store import Archive, get_db
from store.base import utcnow
from tests.conftest import UserKey
from tests.servers.s3 import ADMIN_KEYS, MotoS3
from web.links import make_token

pytestmark = pytest.mark.server

SECRET = "shared-secret-key"


def _app(tmp_path: Path, db_file: Path, role: str, moto: MotoS3, bucket: str, **extra: Any) -> Flask:
    return create_app(
        {
            "TESTING": True,
            "INSTANCE_PATH": str(tmp_path / role / "instance"),
            "DATABASE_URL": f"sqlite:///{db_file}",
            "ARCHIVE_DIR": str(tmp_path / role / "scratch"),
            "SECRET_KEY": SECRET,
            "ARCHIVE_STORE": "s3",
            "ARCHIVE_BUCKET": bucket,
            "ARCHIVE_BUCKET_PREFIX": "archives",
            "ARCHIVE_BUCKET_ENDPOINT_URL": moto.url,
            "ARCHIVE_BUCKET_REGION": "us-east-1",
            "ARCHIVE_BUCKET_ACCESS_KEY_ID": ADMIN_KEYS["aws_access_key_id"],
            "ARCHIVE_BUCKET_SECRET_ACCESS_KEY": ADMIN_KEYS["aws_secret_access_key"],
            "ARCHIVE_BUCKET_PATH_STYLE": True,
            **extra,
        }
    )


@pytest.fixture
def shared_db(tmp_path: Path, migrated_sqlite: Path) -> Path:
    path = tmp_path / "shared.sqlite3"
    shutil.copyfile(migrated_sqlite, path)
    return path


@pytest.fixture
def exported(tmp_path: Path, shared_db: Path, moto_server: MotoS3, s3_bucket: str) -> Iterator[Archive]:
    """Alice's archive, exported by a 'worker' app into the bucket; its scratch space is left empty."""
    worker = _app(tmp_path, shared_db, "worker", moto_server, s3_bucket)
    runner = worker.test_cli_runner()
    assert runner.invoke(args=["import-account", "tests/data/alice.json"]).exit_code == 0
    result = runner.invoke(args=["export", "alice@example.com"])
    assert result.exit_code == 0, result.output
    with get_db(worker).session() as session:
        archive = session.query(Archive).one()
    keys = [o["Key"] for o in moto_server.client().list_objects_v2(Bucket=s3_bucket)["Contents"]]
    assert keys == [f"archives/{archive.relpath}"]
    assert not list((tmp_path / "worker" / "scratch").rglob("*.zip")), "nothing may stay behind in scratch"
    get_db(worker).dispose()
    yield archive


def test_a_web_process_that_did_not_write_the_archive_redirects_to_a_presigned_url(
    tmp_path: Path, shared_db: Path, moto_server: MotoS3, s3_bucket: str, exported: Archive
) -> None:
    web = _app(tmp_path, shared_db, "web", moto_server, s3_bucket)
    answer = web.test_client().get(_link_path(web, exported))
    assert answer.status_code == 303
    assert answer.headers["Cache-Control"] == "private, no-store"
    with urllib.request.urlopen(answer.headers["Location"], timeout=10) as fetched:
        body = fetched.read()
        disposition = fetched.headers["Content-Disposition"]
    assert hashlib.sha256(body).hexdigest() == exported.sha256
    assert exported.filename in disposition
    assert not (tmp_path / "web" / "scratch").exists() or not list((tmp_path / "web" / "scratch").rglob("*.zip"))
    get_db(web).dispose()


def test_a_web_process_relays_the_bytes_when_browsers_cannot_reach_the_bucket(
    tmp_path: Path, shared_db: Path, moto_server: MotoS3, s3_bucket: str, exported: Archive
) -> None:
    web = _app(tmp_path, shared_db, "web", moto_server, s3_bucket, ARCHIVE_BUCKET_DOWNLOADS="stream")
    answer = web.test_client().get(_link_path(web, exported))
    assert answer.status_code == 200
    assert hashlib.sha256(answer.data).hexdigest() == exported.sha256
    assert answer.headers["X-Content-SHA256"] == exported.sha256
    get_db(web).dispose()


def test_a_worker_delivers_a_bucket_held_archive_it_did_not_write(
    tmp_path: Path, shared_db: Path, moto_server: MotoS3, s3_bucket: str, exported: Archive
) -> None:
    """`lifeboat verify` needs a real file: the archive is fetched into scratch, checked and removed."""
    other = _app(tmp_path, shared_db, "other-worker", moto_server, s3_bucket)
    from jobs import get_context
    from store.archive_files import local_copy

    with other.app_context():
        files = get_context(other).files
        assert files.local_path(exported.relpath) is None
        with local_copy(files, exported.relpath) as path:
            assert hashlib.sha256(path.read_bytes()).hexdigest() == exported.sha256
        assert not path.exists()
    get_db(other).dispose()


def test_a_link_to_a_bucket_held_archive_whose_owner_gave_a_key_serves_ciphertext_not_a_presigned_redirect(
    tmp_path: Path, shared_db: Path, moto_server: MotoS3, s3_bucket: str, exported: Archive, age_key: UserKey
) -> None:
    """A presigned URL would hand whoever holds the link the plain zip straight from the bucket."""
    web = _app(tmp_path, shared_db, "web", moto_server, s3_bucket)
    given = web.test_cli_runner().invoke(args=["archive-options", "alice@example.com", "--encrypt-to", age_key.public])
    assert given.exit_code == 0, given.output
    answer = web.test_client().get(_link_path(web, exported))
    assert answer.status_code == 200 and "Location" not in answer.headers
    assert answer.headers["Content-Disposition"].endswith(exported.filename + ".age")
    assert answer.data[:21] == b"age-encryption.org/v1"
    assert hashlib.sha256(age_key.open(answer.data)).hexdigest() == exported.sha256
    left = [p.name for p in (tmp_path / "web" / "scratch").rglob("*") if p.is_file()]
    assert left == [], "neither the fetched plain copy nor the sealed file is left behind"
    get_db(web).dispose()


def _link_path(web: Flask, archive: Archive) -> str:
    """The path of a new signed link (a `download_links` row) to `archive`."""
    with get_db(web).session(write=True) as session:
        link = create_link(session, archive.id, archive.user_id, max_age=dt.timedelta(days=1), now=utcnow())
        return f"/d/{make_token(SECRET, link.id)}"
