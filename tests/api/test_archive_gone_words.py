"""A deleted archive says who deleted it when the rows tell: its owner, or retention (user trial 7, item 9).

The API answered "This archive has expired and was deleted" to the very user
who had just deleted it. Now "expired" is kept for what retention removed.
"""

from __future__ import annotations

import datetime as dt
import html
from typing import Any

from flask import Flask
from flask.testing import FlaskClient

from jobs import get_context
from jobs.housekeeping import expire_archives
from store import Archive, Database
from store.base import utcnow
from tests.api.conftest import Call
from tests.api.test_archive_links import _archive
from tests.web.conftest import sign_in


def _gone(as_user: Call, archive: dict[str, Any]) -> str:
    response = as_user("get", f"/api/v1/archives/{archive['id']}")
    body = response.get_json()
    assert response.status_code == 410 and body["code"] == "archive_gone", body
    return str(body["message"])


def test_an_archive_its_owner_deleted_says_so_and_not_expired(
    app: Flask, db: Database, as_alice: Call, alice_id: int
) -> None:
    archive = _archive(app, as_alice)
    assert as_alice("delete", f"/api/v1/archives/{archive['id']}").status_code == 204
    today = utcnow().strftime("%Y-%m-%d")
    message = _gone(as_alice, archive)
    assert message == f"You deleted this archive on {today}. Export again to get a fresh one."
    link = as_alice("post", f"/api/v1/archives/{archive['id']}/links").get_json()
    assert link["code"] == "archive_gone" and "expired" not in link["message"]
    # The web archive page says the same.
    client = app.test_client()
    assert sign_in(client).status_code == 302
    page = client.get(f"/archives/{archive['id']}")
    assert page.status_code == 410
    assert f"You deleted this archive on {today}." in html.unescape(page.get_data(as_text=True))


def test_an_archive_retention_removed_says_it_expired(app: Flask, db: Database, as_alice: Call, alice_id: int) -> None:
    old = _archive(app, as_alice)
    now = utcnow()
    with db.session(write=True) as session:
        row = session.get(Archive, old["id"])
        assert row is not None
        row.created_at = now - dt.timedelta(days=40)
        # A newer verified archive: retention never deletes a user's newest.
        session.add(Archive(user_id=alice_id, filename="n.zip", relpath="n.zip", sha256="0" * 64, size=1,
                            created_at=now, verified_at=now))  # fmt: skip
    assert expire_archives(db, get_context(app).files, now=now, keep_days=30) == 1
    message = _gone(as_alice, old)
    assert message == (
        f"This archive expired and was deleted on {now:%Y-%m-%d}: archives are kept 30 days (the newest verified "
        "one always). Export again to get a fresh one."
    )


def test_an_old_deletion_nobody_marked_says_only_deleted(app: Flask, db: Database, as_alice: Call) -> None:
    """Deleted before retention marked its own, and too old to be sure the owner did it."""
    archive = _archive(app, as_alice)
    now = utcnow()
    with db.session(write=True) as session:
        row = session.get(Archive, archive["id"])
        assert row is not None
        row.created_at, row.deleted_at = now - dt.timedelta(days=40), now
    assert _gone(as_alice, archive) == f"This archive was deleted on {now:%Y-%m-%d}. Export again to get a fresh one."


def test_a_link_to_an_archive_its_owner_deleted_does_not_say_expired(app: Flask, as_alice: Call, alice_id: int) -> None:
    from tests.api.test_archive_links import _path

    archive = _archive(app, as_alice)
    link = as_alice("post", f"/api/v1/archives/{archive['id']}/links").get_json()
    assert as_alice("delete", f"/api/v1/archives/{archive['id']}").status_code == 204
    client: FlaskClient = app.test_client()
    page = client.get(_path(app, link["url"]))
    text = html.unescape(page.get_data(as_text=True))
    assert page.status_code == 410 and "This archive was deleted on" in text
    assert "expired" not in text.split("<main")[-1]
