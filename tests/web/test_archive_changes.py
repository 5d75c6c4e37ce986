"""Every change an export made, not only the first few: the archive's changes page and its API (issue 16).

The account here is alice's with 400 more notes of one title: each after the
first is numbered, so the archive lists 402 changes, more than a parsed manifest
keeps (`KEPT_CHANGES`, 256) and more than one window past them.
"""

from __future__ import annotations

import dataclasses
import html
import json
import re
import zipfile
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select

from account.jsonio import account_from_dict
from account.records import Account, Contact, Note
from exporters.archive.manifest import KEPT_CHANGES, MANIFEST_NAME
from jobs import get_context
from jobs.archive_changes import PER_PAGE
from store import Archive, Database, ExportRun, User
from store.accounts import replace_account
from store.passwords import hash_password
from tests.api.conftest import bearer, make_token
from tests.web.conftest import PASSWORD, sign_in
from tests.web.test_downloads import _export

SAME = 400  # notes titled alike: 399 numbered, beside alice's own 3 changes
COUNT = SAME - 1 + 3


@pytest.fixture
def alice(alice_json: dict[str, Any]) -> Account:
    """alice with `SAME` more notes of one title (the conftest fixture's account, for `alice_user` here)."""
    base = account_from_dict(alice_json)
    same = tuple(Note(id=f"same-{i:03}", title="Minutes", body="x\n", notebook="Board") for i in range(SAME))
    return dataclasses.replace(base, notes=base.notes + same)


@pytest.fixture
def archive(app: Flask, db: Database, alice_user: int) -> Archive:
    return _export(app, db, alice_user)


def _listed(app: Flask, archive: Archive) -> list[dict[str, str]]:
    """manifest.json's `changes` items, read as anyone unzipping the archive would."""
    with zipfile.ZipFile(Path(app.config["ARCHIVE_DIR"]) / archive.relpath) as z:
        section = json.loads(z.read(MANIFEST_NAME))["changes"]
    assert section["count"] == len(section["items"])
    return list(section["items"])


def _page(client: FlaskClient, path: str) -> str:
    response = client.get(path)
    assert response.status_code == 200, response.status_code
    return html.unescape(response.get_data(as_text=True))


def _rows(page: str) -> list[tuple[str, str]]:
    """(name as typed, path) of each row of the changes table."""
    return re.findall(
        r'<td data-label="Name as typed">(.*?)</td>\s*<td data-label="Now as"><code class="path">(.*?)</code>', page
    )


def test_a_page_past_the_changes_a_manifest_keeps_shows_the_right_entries(
    app: Flask, signed_in: FlaskClient, archive: Archive
) -> None:
    listed = _listed(app, archive)
    assert len(listed) == COUNT > KEPT_CHANGES + PER_PAGE
    for page in (1, 3, 4, 5):
        text = _page(signed_in, f"/archives/{archive.id}/changes?page={page}")
        shown = listed[(page - 1) * PER_PAGE : page * PER_PAGE]
        assert _rows(text) == [(c["original"], c["path"]) for c in shown], page
        assert f"{COUNT} changes" in text and f"Page {page} of 5" in text
        first, last = (page - 1) * PER_PAGE + 1, (page - 1) * PER_PAGE + len(shown)
        assert f"Changes {first} to {last} of {COUNT}" in text
    fourth = _page(signed_in, f"/archives/{archive.id}/changes?page=4")
    assert "notes/Board/Minutes (300).md" in fourth and "numbered: same name as another note" in fourth
    assert 'rel="prev"' in fourth and 'rel="next"' in fourth


def test_page_numbers_past_the_last_show_the_last_and_others_the_first(
    app: Flask, signed_in: FlaskClient, archive: Archive
) -> None:
    listed = _listed(app, archive)
    last = [(c["original"], c["path"]) for c in listed[4 * PER_PAGE :]]
    for page in ("5", "6", "999999", "9" * 30):
        text = _page(signed_in, f"/archives/{archive.id}/changes?page={page}")
        assert _rows(text) == last and "Page 5 of 5" in text and 'rel="next"' not in text
    first = [(c["original"], c["path"]) for c in listed[:PER_PAGE]]
    for page in ("0", "x", "-2", "²", "1.5"):
        assert _rows(_page(signed_in, f"/archives/{archive.id}/changes?page={page}")) == first


def test_a_page_number_in_digits_int_refuses_shows_the_first_page_of_every_archive_page(
    signed_in: FlaskClient, archive: Archive
) -> None:
    for page in ("²", "٣x", "1e3"):  # "²".isdigit() is true, and int("²") raised: a 500
        assert archive.sha256 in _page(signed_in, f"/archives?page={page}")
        for path in (f"/archives/{archive.id}", f"/archives/{archive.id}/changes"):
            assert "Page 1 of" in _page(signed_in, f"{path}?page={page}"), (path, page)


def test_the_api_returns_the_same_entries_as_the_page(
    app: Flask, db: Database, signed_in: FlaskClient, alice_user: int, archive: Archive
) -> None:
    headers = bearer(make_token(db, alice_user))
    listed = _listed(app, archive)
    for page in (3, 9):
        answer = app.test_client().get(f"/api/v1/archives/{archive.id}/changes?page={page}", headers=headers)
        assert answer.status_code == 200
        body = answer.get_json()
        shown = min(page, 5)
        assert (body["count"], body["summary"], body["page"], body["pages"]) == (COUNT, f"{COUNT} changes", shown, 5)
        assert body["items"] == listed[(shown - 1) * PER_PAGE : shown * PER_PAGE]  # every field, as manifest.json
        text = _page(signed_in, f"/archives/{archive.id}/changes?page={page}")
        assert _rows(text) == [(c["original"], c["path"]) for c in body["items"]]
    typo = app.test_client().get(f"/api/v1/archives/{archive.id}/changes?pgae=2", headers=headers)
    assert typo.status_code == 422


def test_another_users_archive_is_404_on_the_page_and_in_the_api(app: Flask, db: Database, archive: Archive) -> None:
    with db.session(write=True) as session:
        bob = User(email="bob@example.com", timezone="UTC", password_hash=hash_password(PASSWORD))
        session.add(bob)
        session.flush()
        bob_id = bob.id
    client = app.test_client()
    sign_in(client, "bob@example.com")
    page = client.get(f"/archives/{archive.id}/changes")
    assert page.status_code == 404 and "Minutes" not in page.get_data(as_text=True)
    api = app.test_client().get(f"/api/v1/archives/{archive.id}/changes", headers=bearer(make_token(db, bob_id)))
    assert api.status_code == 404 and api.get_json()["code"] == "not_found"


def test_an_archive_whose_file_is_gone_is_410_on_the_page_and_in_the_api(
    app: Flask, db: Database, signed_in: FlaskClient, alice_user: int, archive: Archive
) -> None:
    get_context(app).files.delete(archive.relpath)
    page = signed_in.get(f"/archives/{archive.id}/changes")
    assert page.status_code == 410 and "Export again" in page.get_data(as_text=True)
    headers = bearer(make_token(db, alice_user))
    api = app.test_client().get(f"/api/v1/archives/{archive.id}/changes", headers=headers)
    assert api.status_code == 410 and api.get_json()["code"] == "archive_gone"


def test_the_run_page_and_the_archive_page_link_to_every_change(
    db: Database, signed_in: FlaskClient, archive: Archive
) -> None:
    with db.session() as session:
        run_id = session.scalar(select(ExportRun.id).where(ExportRun.archive_id == archive.id))
    link = f'href="/archives/{archive.id}/changes"'
    run = _page(signed_in, f"/runs/{run_id}")
    assert re.search(rf"The first \d+ of {COUNT} are shown.\s*<a {link}>See all {COUNT}, with their reasons</a>", run)
    detail = _page(signed_in, f"/archives/{archive.id}")
    assert re.search(rf"Changes</dt><dd>{COUNT} changes.\s*<a {link}>Each change, with its reason</a>", detail)
    with db.session(write=True) as session:  # once the archive is gone, the run page points nowhere
        row = session.get(Archive, archive.id)
        assert row is not None
        row.deleted_at = row.created_at
    assert link not in _page(signed_in, f"/runs/{run_id}")


def test_an_archive_with_nothing_changed_says_every_item_is_carried_exactly(
    app: Flask, db: Database, signed_in: FlaskClient, alice_user: int
) -> None:
    plain = Account(email="alice@example.com", contacts=(Contact(uid="u1", formatted_name="Ada Lovelace"),))
    with db.session(write=True) as session:
        replace_account(session, plain)
    archive = _export(app, db, alice_user)
    text = _page(signed_in, f"/archives/{archive.id}/changes")
    words = "0 changes: every item is carried exactly"
    assert words in text and "<table" not in text
    assert f"Changes</dt><dd>{words}.</dd>" in _page(signed_in, f"/archives/{archive.id}")  # and no link
    headers = bearer(make_token(db, alice_user))
    body = app.test_client().get(f"/api/v1/archives/{archive.id}/changes", headers=headers).get_json()
    assert body == {"count": 0, "summary": words, "page": 1, "pages": 1, "items": []}


def test_a_page_past_the_last_says_it_does_not_exist_above_the_last_page(
    signed_in: FlaskClient, archive: Archive
) -> None:
    for page, shown in (("6", "6"), ("99999999999999999999999", "99,999,999,999,999,999,999,999")):
        text = _page(signed_in, f"/archives/{archive.id}/changes?page={page}")
        assert f"There is no page {shown} of changes: there are 5 pages, and this is the last." in text
        assert "Page 5 of 5" in text
    for page in ("5", "1", "x"):
        assert 'id="past-the-end"' not in _page(signed_in, f"/archives/{archive.id}/changes?page={page}")
