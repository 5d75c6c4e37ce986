"""The Archives pages: the list with its facts, one archive's manifest and links, delete, and who may see what."""

from __future__ import annotations

import datetime as dt
import hashlib
import html
import re
from pathlib import Path

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import func, select

from jobs import get_context
from jobs.archive_catalog import expires_at
from jobs.archive_removal import remove_archive
from jobs.download_links import archive_manifest, create_link
from store import Archive, Database, DeliveryAttempt, Destination, DownloadLink, ExportRun, User
from store.base import utcnow
from store.passwords import hash_password
from tests.browser.rows import add_archives
from tests.web.conftest import PASSWORD, csrf_token, sign_in
from tests.web.test_downloads import _export


@pytest.fixture
def archive(app: Flask, db: Database, alice_user: int) -> Archive:
    return _export(app, db, alice_user)


def _post(client: FlaskClient, path: str, page: str, **data: str) -> object:
    return client.post(path, data={"csrf_token": csrf_token(client, page), **data})


def _text(client: FlaskClient, path: str) -> str:
    response = client.get(path)
    assert response.status_code == 200, response.status_code
    return html.unescape(response.get_data(as_text=True))


def test_the_list_shows_each_archive_newest_first_with_size_counts_full_sha_and_expiry(
    app: Flask, db: Database, signed_in: FlaskClient, alice_user: int
) -> None:
    older = _export(app, db, alice_user)
    newer = _export(app, db, alice_user)
    with db.session(write=True) as session:  # a day apart, as scheduled exports are
        row = session.get(Archive, older.id)
        assert row is not None
        row.created_at = older.created_at = newer.created_at - dt.timedelta(days=1)
    page = _text(signed_in, "/archives")
    assert page.index(f'href="/archives/{newer.id}"') < page.index(f'href="/archives/{older.id}"')  # newest first
    assert f'<code class="digest" id="a-{older.id}-sha">{older.sha256}</code>' in page  # the SHA-256 in full
    assert "3 contacts, 4 events in 2 calendars, 3 notes, 1 attachment" in page
    assert re.search(r"Size</dt><dd>\d+(\.\d)? KB</dd>", page)
    assert "Kept here only" in page
    assert page.count("Kept while it is your newest archive") == 1
    retention = older.created_at + dt.timedelta(days=app.config["ARCHIVE_RETENTION_DAYS"])
    assert f'datetime="{retention.isoformat()}"' in page
    assert f'href="/archives/{newer.id}"' in page and f'href="/archives/{older.id}/delete"' in page
    assert 'aria-current="page">Archives</a>' in page


def test_with_no_archive_the_page_says_how_to_get_one(signed_in: FlaskClient) -> None:
    page = _text(signed_in, "/archives")
    assert "No archives yet" in page and "Export now" in page and "Set a schedule" in page


def test_the_list_is_paginated(db: Database, signed_in: FlaskClient, alice_user: int) -> None:
    add_archives(db, alice_user, 25)
    first = _text(signed_in, "/archives")
    assert first.count('class="card archive"') == 20 and "Page 1 of 2" in first and "?page=2" in first
    second = _text(signed_in, "/archives?page=2")
    oldest = "00" + "ab" * 31  # tests.browser.rows: archive i has a SHA-256 starting with i
    assert second.count('class="card archive"') == 5 and oldest in second and oldest not in first
    assert _text(signed_in, "/archives?page=99").count('class="card archive"') == 5  # past the end: the last
    assert _text(signed_in, "/archives?page=x").count('class="card archive"') == 20


def test_the_list_names_where_each_archive_went_and_how_it_ended(
    db: Database, signed_in: FlaskClient, archive: Archive, alice_user: int
) -> None:
    with db.session(write=True) as session:
        run_id = session.scalar(select(ExportRun.id).where(ExportRun.archive_id == archive.id))
        bucket = Destination(user_id=alice_user, kind="s3", label="My bucket", settings_json="{}")
        mail = Destination(user_id=alice_user, kind="email", label="Me by email", settings_json="{}")
        session.add_all([bucket, mail])
        session.flush()
        at = utcnow()
        session.add_all(
            [
                DeliveryAttempt(run_id=run_id, destination_id=bucket.id, at=at, outcome="transient", message="x"),
                DeliveryAttempt(
                    run_id=run_id,
                    destination_id=bucket.id,
                    at=at + dt.timedelta(1),
                    outcome="delivered",
                    location="s3://b/k",
                    message="ok",
                ),
                DeliveryAttempt(run_id=run_id, destination_id=mail.id, at=at, outcome="permanent", message="no"),
            ]
        )
    page = _text(signed_in, "/archives")
    assert re.search(r"My bucket: <span[^>]*>Delivered</span>", page)
    assert re.search(r"Me by email: <span[^>]*>Failed</span>", page)
    assert "Kept here only" not in page


def test_the_detail_page_shows_the_manifest_files_counts_and_format_options(
    app: Flask, signed_in: FlaskClient, archive: Archive
) -> None:
    page = _text(signed_in, f"/archives/{archive.id}")
    manifest = archive_manifest(get_context(app).files, archive)
    for entry in manifest.files:
        if entry.path != "SHA256SUMS":
            assert entry.path in page and entry.sha256 in page
    assert "Contacts</dt><dd>3</dd>" in page and "Events</dt><dd>4</dd>" in page
    assert "vCard version</dt><dd>3.0</dd>" in page and "Europe/Berlin" in page
    assert "Verified</dt>" in page and archive.sha256 in page
    assert "Create a download link to see the" in page  # no link yet: no recipe with a made-up URL


def test_creating_a_link_shows_its_url_and_commands_which_work_without_signing_in(
    app: Flask, db: Database, signed_in: FlaskClient, archive: Archive
) -> None:
    detail = f"/archives/{archive.id}"
    made = _post(signed_in, f"{detail}/links", detail)
    assert made.status_code == 302 and made.headers["Location"].endswith(f"{detail}#links")  # type: ignore[attr-defined]
    page = _text(signed_in, detail)
    assert "Download link created" in page
    base = app.config["BASE_URL"].rstrip("/")
    url = re.search(rf"{re.escape(base)}(/d/[\w.-]+)", page)
    assert url is not None
    path = url.group(1)
    assert f"curl -fL -C - -o '{archive.filename}' '{base}{path}'" in page
    assert f"curl -fsS -o SHA256SUMS '{base}{path}/SHA256SUMS'" in page and "sha256sum -c" in page
    assert f"{base}{path}/parts" in page
    anyone = app.test_client()
    body = anyone.get(path)
    assert body.status_code == 200 and hashlib.sha256(body.data).hexdigest() == archive.sha256
    assert anyone.get(f"{path}/SHA256SUMS").get_data(as_text=True).startswith(archive.sha256)
    listing = _text(signed_in, "/archives")
    assert re.search(r'Downloads">1</td>', listing)  # the download was counted


def test_revoking_a_link_on_the_page_makes_it_410(
    app: Flask, db: Database, signed_in: FlaskClient, archive: Archive
) -> None:
    with db.session(write=True) as session:
        link_id = create_link(session, archive.id, archive.user_id, max_age=dt.timedelta(days=1), now=utcnow()).id
    page = _text(signed_in, f"/archives/{archive.id}")
    path = re.search(r"/d/[\w.-]+", page).group(0)  # type: ignore[union-attr]
    answer = _post(signed_in, f"/archives/{archive.id}/links/{link_id}/revoke", "/archives", back="list")
    assert answer.headers["Location"].endswith("/archives")  # type: ignore[attr-defined]
    assert app.test_client().get(path).status_code == 410
    assert "No active download links." in _text(signed_in, "/archives")


def test_delete_asks_first_then_removes_the_file_the_row_and_every_link(
    app: Flask, db: Database, signed_in: FlaskClient, archive: Archive
) -> None:
    with db.session(write=True) as session:
        link_id = create_link(session, archive.id, archive.user_id, max_age=dt.timedelta(days=1), now=utcnow()).id
    path = re.search(r"/d/[\w.-]+", _text(signed_in, f"/archives/{archive.id}")).group(0)  # type: ignore[union-attr]
    stored = Path(app.config["ARCHIVE_DIR"]) / archive.relpath
    confirm = _text(signed_in, f"/archives/{archive.id}/delete")
    assert "Delete this archive?" in confirm and "1 download link stop" in confirm and stored.exists()
    done = _post(signed_in, f"/archives/{archive.id}/delete", f"/archives/{archive.id}/delete")
    assert done.headers["Location"].endswith("/archives")  # type: ignore[attr-defined]
    assert not stored.exists()
    listing = _text(signed_in, "/archives")
    assert f"Archive {archive.filename} deleted" in listing and archive.sha256 not in listing
    gone = app.test_client().get(path)
    assert gone.status_code == 410 and "was deleted" in gone.get_data(as_text=True)
    assert signed_in.get(f"/archives/{archive.id}").status_code == 410
    with db.session() as session:
        row = session.get(Archive, archive.id)
        assert row is not None and row.deleted_at is not None
        assert session.get(DownloadLink, link_id).revoked_at is not None  # type: ignore[union-attr]


def test_deleting_twice_changes_nothing_more(app: Flask, db: Database, archive: Archive) -> None:
    files = get_context(app).files
    first = remove_archive(db, files, archive.id, archive.user_id, now=utcnow())
    second = remove_archive(db, files, archive.id, archive.user_id, now=utcnow())
    assert first is not None and not first.already
    assert second is not None and second.already and second.links_revoked == 0
    assert remove_archive(db, files, archive.id, archive.user_id + 1, now=utcnow()) is None


def test_a_form_without_its_csrf_token_deletes_nothing(app: Flask, signed_in: FlaskClient, archive: Archive) -> None:
    answer = signed_in.post(f"/archives/{archive.id}/delete")
    assert answer.status_code == 400 and "This form expired" in answer.get_data(as_text=True)
    assert (Path(app.config["ARCHIVE_DIR"]) / archive.relpath).exists()


def test_another_users_archive_is_a_friendly_404_for_every_page_and_button(
    app: Flask, db: Database, archive: Archive
) -> None:
    with db.session(write=True) as session:
        session.add(User(email="bob@example.com", timezone="UTC", password_hash=hash_password(PASSWORD)))
        link_id = create_link(session, archive.id, archive.user_id, max_age=dt.timedelta(days=1), now=utcnow()).id
    bob = app.test_client()
    sign_in(bob, "bob@example.com")
    token = csrf_token(bob, "/archives")
    for method, path in [
        ("get", f"/archives/{archive.id}"),
        ("get", f"/archives/{archive.id}/delete"),
        ("post", f"/archives/{archive.id}/delete"),
        ("post", f"/archives/{archive.id}/links"),
        ("post", f"/archives/{archive.id}/links/{link_id}/revoke"),
        ("get", f"/archives/{'f' * 32}"),
        ("get", f"/archives/{'f' * 300}"),
    ]:
        answer = bob.open(path, method=method.upper(), data={"csrf_token": token} if method == "post" else None)
        text = answer.get_data(as_text=True)
        assert answer.status_code == 404, (method, path)
        assert "Back to your dashboard" in text and archive.sha256 not in text and archive.filename not in text
    assert "No archives yet" in _text(bob, "/archives")
    assert (Path(app.config["ARCHIVE_DIR"]) / archive.relpath).exists()
    with db.session() as session:
        assert session.get(DownloadLink, link_id).revoked_at is None  # type: ignore[union-attr]
        assert session.scalar(select(func.count()).select_from(DownloadLink)) == 1  # bob made none


def test_the_dashboard_links_each_archive_to_its_page(signed_in: FlaskClient, archive: Archive) -> None:
    assert f'href="/archives/{archive.id}"' in signed_in.get("/").get_data(as_text=True)


def test_expiry_follows_the_retention_rule(archive: Archive) -> None:
    later = archive.created_at + dt.timedelta(days=1)
    assert expires_at(archive, later, 30) == archive.created_at + dt.timedelta(days=30)
    assert expires_at(archive, archive.created_at, 30) is None  # the newest verified one is kept
    assert expires_at(archive, None, 30) is None  # without a verified archive nothing is deleted


def test_the_file_list_of_a_large_archive_comes_a_page_at_a_time(
    signed_in: FlaskClient, archive: Archive, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("web.archive_pages.FILES_PER_PAGE", 4)
    first = _text(signed_in, f"/archives/{archive.id}")
    last = _text(signed_in, f"/archives/{archive.id}?page=3")
    assert "Files (11)" in first and "Page 1 of 3" in first and "More files" in first
    assert first.count('<td data-label="Path">') == 4 and last.count('<td data-label="Path">') == 3
    assert "README.txt" in last and "README.txt" not in first and "Previous files" in last
