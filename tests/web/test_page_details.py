"""Details a user trial found missing: figures with thousands separated, an icon, a next step, unique landmarks."""

from __future__ import annotations

import html
import re
from collections import Counter

from flask import Flask
from flask.testing import FlaskClient

from account.sample import SampleSize, generate_account
from store import Database
from store.accounts import replace_account
from tests.web.test_downloads import _export


def test_the_archive_page_writes_its_counts_with_thousands_separated(
    app: Flask, db: Database, signed_in: FlaskClient, alice_user: int
) -> None:
    with db.session(write=True) as session:
        replace_account(session, generate_account("alice@example.com", SampleSize(contacts=3, events=1_004, notes=2)))
    archive = _export(app, db, alice_user)
    page = signed_in.get(f"/archives/{archive.id}").get_data(as_text=True)
    assert "<dt>Events</dt><dd>1,004</dd>" in page


def test_every_page_names_an_icon_and_favicon_ico_is_served(app: Flask) -> None:
    client = app.test_client()
    page = client.get("/login").get_data(as_text=True)
    icon = re.search(r'<link rel="icon" href="([^"]+)" type="image/svg\+xml">', page)
    assert icon is not None
    with client.get(icon.group(1)) as svg:
        assert svg.status_code == 200 and svg.get_data().startswith(b"<svg")
    with client.get("/favicon.ico") as ico:
        assert ico.status_code == 200 and ico.mimetype == "image/vnd.microsoft.icon"
        assert ico.get_data()[:4] == b"\x00\x00\x01\x00"  # an ICO file's header


def test_a_download_link_that_is_not_valid_says_how_to_get_the_archive(app: Flask) -> None:
    response = app.test_client().get("/d/not-a-link")
    page = html.unescape(response.get_data(as_text=True))
    assert response.status_code == 403
    assert "This download link is not valid" in page
    assert "To get the archive, sign in and choose Archives, then Download (or make a new link there)." in page


def _landmarks(page: str) -> list[tuple[str, str]]:
    """(role, accessible name) of each labelled landmark: sections by their heading, the rest by aria-label."""
    found = []
    for target in re.findall(r'<section[^>]*aria-labelledby="([^"]+)"', page):
        heading = re.search(rf'id="{re.escape(target)}"[^>]*>(.*?)</h\d>', page, re.S)
        assert heading is not None, target
        found.append(("region", " ".join(re.sub(r"<[^>]+>", "", heading.group(1)).split())))
    found += [("region", name) for name in re.findall(r'<div[^>]*role="region"[^>]*aria-label="([^"]+)"', page)]
    found += [("navigation", name) for name in re.findall(r'<nav[^>]*aria-label="([^"]+)"', page)]
    return found


def test_a_support_users_page_gives_every_landmark_its_own_name(
    app: Flask, db: Database, alice_user: int, support_client: FlaskClient
) -> None:
    _export(app, db, alice_user)  # an archive, so the archives table is there
    page = support_client.get(f"/support/users/{alice_user}").get_data(as_text=True)
    landmarks = _landmarks(page)
    assert ("region", "Archives") in landmarks and ("region", "Archives table") in landmarks
    assert [landmark for landmark, n in Counter(landmarks).items() if n > 1] == []  # axe-core landmark-unique
