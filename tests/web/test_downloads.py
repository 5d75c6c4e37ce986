"""Signed download links without a browser session: ranges, validators, revocation, checksums, parts.

These run through Flask's test client (no sockets); `test_downloads_live.py`
repeats the parts a real tool depends on (curl's resume, `sha256sum -c`)
against `lifeboat serve` on loopback.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import subprocess
import tracemalloc
from dataclasses import replace
from pathlib import Path

import pytest
from flask import Flask
from flask.testing import FlaskClient

from account.records import Account
from jobs import get_context, run_lifecycle
from jobs.download_links import active_links, create_link, revoke_archive_links, revoke_link
from jobs.execute import execute_run
from store import Archive, Database, DownloadLink, ExportRun
from store.accounts import replace_account
from store.base import utcnow
from web.links import make_token


def _export(app: Flask, db: Database, user_id: int) -> Archive:
    with db.session(write=True) as session:
        run, _ = run_lifecycle.request_run(session, user_id, "manual", now=utcnow())
    assert execute_run(get_context(app), run.id, "test-worker") == "delivered"
    with db.session() as session:
        archive_id = session.get(ExportRun, run.id).archive_id  # type: ignore[union-attr]
        archive = session.get(Archive, archive_id)
        assert archive is not None
        session.expunge(archive)
        return archive


def _link(app: Flask, db: Database, archive: Archive, **changes: object) -> tuple[str, str]:
    """A new link row to `archive` (its fields changed by `changes`) and its path."""
    with db.session(write=True) as session:
        link = create_link(session, archive.id, archive.user_id, max_age=dt.timedelta(days=7), now=utcnow())
        for key, value in changes.items():
            setattr(link, key, value)
        link_id = link.id
    return link_id, f"/d/{make_token(app.config['SECRET_KEY'], link_id)}"


@pytest.fixture
def archive(app: Flask, db: Database, alice_user: int) -> Archive:
    return _export(app, db, alice_user)


@pytest.fixture
def stored(app: Flask, archive: Archive) -> bytes:
    return (Path(app.config["ARCHIVE_DIR"]) / archive.relpath).read_bytes()


@pytest.fixture
def link(app: Flask, db: Database, archive: Archive) -> str:
    return _link(app, db, archive)[1]


@pytest.fixture
def client(app: Flask) -> FlaskClient:
    return app.test_client()  # no session: the link alone must do


def test_a_link_serves_the_whole_archive_with_its_validators(
    client: FlaskClient, link: str, archive: Archive, stored: bytes
) -> None:
    answer = client.get(link)
    assert answer.status_code == 200 and answer.data == stored
    assert answer.headers["Accept-Ranges"] == "bytes"
    assert answer.headers["ETag"] == f'"{archive.sha256}"'
    assert answer.headers["Content-Length"] == str(len(stored)) == str(archive.size)
    assert answer.headers["Content-Disposition"] == f"attachment; filename={archive.filename}"
    head = client.head(link)
    assert head.status_code == 200 and head.data == b"" and head.headers["Content-Length"] == str(len(stored))


@pytest.mark.parametrize(
    ("header", "first", "last"),
    [("bytes=0-99", 0, 99), ("bytes=100-199", 100, 199), ("bytes=-50", -50, -1), ("bytes=1000-", 1000, -1)],
    ids=["first-bytes", "middle", "suffix", "open-ended"],
)
def test_one_range_is_answered_206_with_exactly_those_bytes(
    client: FlaskClient, link: str, stored: bytes, header: str, first: int, last: int
) -> None:
    size = len(stored)
    start, end = first % size, last % size
    answer = client.get(link, headers={"Range": header})
    assert answer.status_code == 206
    assert answer.data == stored[start : end + 1]
    assert answer.headers["Content-Range"] == f"bytes {start}-{end}/{size}"
    assert answer.headers["Content-Length"] == str(end - start + 1)


def test_a_suffix_longer_than_the_archive_means_all_of_it(client: FlaskClient, link: str, stored: bytes) -> None:
    answer = client.get(link, headers={"Range": f"bytes=-{len(stored) * 2}"})
    assert answer.status_code == 206 and answer.data == stored
    assert answer.headers["Content-Range"] == f"bytes 0-{len(stored) - 1}/{len(stored)}"


def test_several_ranges_are_answered_200_with_the_whole_archive(client: FlaskClient, link: str, stored: bytes) -> None:
    """A documented choice (web/ranges.py): no multipart/byteranges; RFC 9110 lets a server ignore Range."""
    answer = client.get(link, headers={"Range": "bytes=0-9,20-29"})
    assert answer.status_code == 200 and answer.data == stored


@pytest.mark.parametrize("header", ["bytes={size}-", "bytes={size}-{beyond}"])
def test_a_range_past_the_end_is_416_naming_the_size(
    client: FlaskClient, link: str, stored: bytes, header: str
) -> None:
    size = len(stored)
    answer = client.get(link, headers={"Range": header.format(size=size, beyond=size + 10)})
    assert answer.status_code == 416 and answer.data == b""
    assert answer.headers["Content-Range"] == f"bytes */{size}"


def test_if_range_resumes_only_the_same_archive(
    client: FlaskClient, link: str, archive: Archive, stored: bytes
) -> None:
    same = client.get(link, headers={"Range": "bytes=10-19", "If-Range": f'"{archive.sha256}"'})
    assert same.status_code == 206 and same.data == stored[10:20]
    changed = client.get(link, headers={"Range": "bytes=10-19", "If-Range": '"something-else"'})
    assert changed.status_code == 200 and changed.data == stored
    weak = client.get(link, headers={"Range": "bytes=10-19", "If-Range": f'W/"{archive.sha256}"'})
    assert weak.status_code == 200 and weak.data == stored
    unchanged = client.get(link, headers={"If-None-Match": f'"{archive.sha256}"'})
    assert unchanged.status_code == 304 and unchanged.data == b""


def test_a_link_opens_as_often_as_asked_and_counts_each_download(
    client: FlaskClient, app: Flask, db: Database, archive: Archive
) -> None:
    link_id, path = _link(app, db, archive)
    for _ in range(5):
        assert client.get(path).data[:2] == b"PK"
    with db.session() as session:
        assert session.get(DownloadLink, link_id).downloads == 5  # type: ignore[union-attr]


def test_a_revoked_link_stops_at_once(client: FlaskClient, app: Flask, db: Database, archive: Archive) -> None:
    link_id, path = _link(app, db, archive)
    assert client.get(path, headers={"Range": "bytes=0-0"}).data == b"P"
    with db.session(write=True) as session:
        assert revoke_link(session, link_id, archive.user_id, now=utcnow())
    for suffix in ("", "/SHA256SUMS", "/parts", "/parts/README.txt"):
        answer = client.get(path + suffix)
        assert answer.status_code == 410 and b"revoked" in answer.data, suffix


def test_revoking_is_only_for_the_owner_and_can_cover_every_link_of_an_archive(
    app: Flask, db: Database, archive: Archive
) -> None:
    with db.session() as session:
        before = len(active_links(session, archive.id, archive.user_id, now=utcnow()))  # the run's own, for email
    first, _ = _link(app, db, archive)
    _link(app, db, archive)
    with db.session(write=True) as session:
        assert not revoke_link(session, first, archive.user_id + 1, now=utcnow())
        assert len(active_links(session, archive.id, archive.user_id, now=utcnow())) == before + 2
        assert revoke_archive_links(session, archive.id, archive.user_id, now=utcnow()) == before + 2
        assert active_links(session, archive.id, archive.user_id, now=utcnow()) == []


def test_an_expired_link_is_410(client: FlaskClient, app: Flask, db: Database, archive: Archive) -> None:
    _, path = _link(app, db, archive, expires_at=utcnow() - dt.timedelta(seconds=1))
    answer = client.get(path)
    assert answer.status_code == 410 and b"expired" in answer.data


def test_a_tampered_or_foreign_token_is_403(client: FlaskClient, app: Flask, db: Database, archive: Archive) -> None:
    link_id, path = _link(app, db, archive)
    assert client.get(path[:-2] + ("A" if path[-2] != "A" else "B") + path[-1]).status_code == 403
    assert client.get(f"/d/{make_token('another-key', link_id)}").status_code == 403
    assert client.get(f"/d/{make_token('another-key', link_id)}/parts").status_code == 403


def test_a_link_row_naming_someone_elses_archive_is_404_and_no_byte_of_it(
    client: FlaskClient, app: Flask, db: Database, archive: Archive, alice: Account
) -> None:
    with db.session(write=True) as session:
        mallory = replace_account(session, replace(alice, email="mallory@example.com")).id
    _, path = _link(app, db, archive, user_id=mallory)
    for suffix in ("", "/SHA256SUMS", "/parts", "/parts/README.txt"):
        answer = client.get(path + suffix)
        assert answer.status_code == 404 and b"PK" not in answer.data and archive.sha256.encode() not in answer.data
    with db.session(write=True) as session, pytest.raises(Exception, match="No such archive"):
        create_link(session, archive.id, mallory, max_age=dt.timedelta(days=1), now=utcnow())


def test_a_link_to_a_deleted_archive_is_410(client: FlaskClient, app: Flask, db: Database, archive: Archive) -> None:
    _, path = _link(app, db, archive)
    with db.session(write=True) as session:
        session.get(Archive, archive.id).deleted_at = utcnow()  # type: ignore[union-attr]
    assert client.get(path).status_code == 410


def test_sha256sums_and_the_part_list_check_with_sha256sum(
    client: FlaskClient, link: str, archive: Archive, stored: bytes, tmp_path: Path
) -> None:
    sums = client.get(f"{link}/SHA256SUMS")
    assert sums.status_code == 200 and sums.mimetype == "text/plain"
    listing = client.get(f"{link}/parts").get_json()
    assert listing["sha256"] == archive.sha256 and listing["url"].endswith(link)
    names = [part["name"] for part in listing["parts"]]
    assert "README.txt" in names and "manifest.json" not in names and "SHA256SUMS" not in names
    (tmp_path / "SHA256SUMS").write_bytes(sums.data)
    (tmp_path / archive.filename).write_bytes(stored)
    for part in listing["parts"]:
        path = "/d/" + part["url"].split("/d/", 1)[1]
        answer = client.get(path)
        assert answer.status_code == 200 and answer.headers["ETag"] == f'"{part["sha256"]}"'
        assert len(answer.data) == part["size"]
        target = tmp_path / part["name"]
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(answer.data)
    checked = subprocess.run(
        ["sha256sum", "--strict", "-c", "SHA256SUMS"], cwd=tmp_path, capture_output=True, text=True, check=False
    )
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert checked.stdout.count(": OK") == len(listing["parts"]) + 1


def test_a_part_answers_ranges_from_inside_the_zip(client: FlaskClient, link: str) -> None:
    part = next(p for p in client.get(f"{link}/parts").get_json()["parts"] if p["size"] > 40)
    path = "/d/" + part["url"].split("/d/", 1)[1]
    whole = client.get(path).data
    middle = client.get(path, headers={"Range": "bytes=10-29"})
    assert middle.status_code == 206 and middle.data == whole[10:30]
    assert client.get(f"{link}/parts/no/such/file.txt").status_code == 404
    assert client.get(f"{link}/parts/manifest.json").status_code == 404


def test_the_owners_signed_in_download_keeps_working_and_resumes(
    signed_in: FlaskClient, archive: Archive, stored: bytes
) -> None:
    answer = signed_in.get(f"/archives/{archive.id}/download", headers={"Range": "bytes=5-"})
    assert answer.status_code == 206 and answer.data == stored[5:]


def test_a_big_archive_streams_in_constant_memory(
    client: FlaskClient, app: Flask, db: Database, archive: Archive
) -> None:
    """64 MiB through the link (no sendfile in the test client: the bounded slice is read) with < 4 MiB traced."""
    big = Path(app.config["ARCHIVE_DIR"]) / f"{archive.user_id}" / "big.zip"
    block = hashlib.sha256(b"lifeboat").digest() * (1 << 15)  # 1 MiB
    with big.open("wb") as f:
        for _ in range(64):
            f.write(block)
    with db.session(write=True) as session:
        row = session.get(Archive, archive.id)
        assert row is not None
        row.relpath, row.size = f"{archive.user_id}/big.zip", big.stat().st_size
    _, path = _link(app, db, archive)
    tracemalloc.start()
    try:
        answer = client.get(path, buffered=False)
        received = 0
        for chunk in answer.response:
            received += len(chunk)
        answer.close()
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert received == 64 << 20
    assert peak < 4 << 20, f"peak {peak / 2**20:.1f} MiB while streaming 64 MiB"


def test_the_link_a_run_puts_in_email_is_a_revocable_row(
    client: FlaskClient, app: Flask, db: Database, archive: Archive, stored: bytes
) -> None:
    url = get_context(app).download_link(archive.id, archive.user_id)
    assert url is not None and url.startswith(app.config["BASE_URL"].rstrip("/") + "/d/")
    path = url[len(app.config["BASE_URL"].rstrip("/")) :]
    assert client.get(path).data == stored
    with db.session(write=True) as session:
        assert revoke_archive_links(session, archive.id, archive.user_id, now=utcnow()) >= 1
    assert client.get(path).status_code == 410
