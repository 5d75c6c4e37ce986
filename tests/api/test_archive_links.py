"""The API's archive deletion and download links: make, list, use without any credential, revoke, delete."""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import urllib.request
from pathlib import Path
from typing import Any

from flask import Flask
from flask.testing import FlaskClient

from jobs import get_context
from jobs.execute import execute_run
from store import Archive, Database
from store.base import utcnow
from tests.api.conftest import Call
from tests.browser import conftest as browser_fixtures

live_server = browser_fixtures.live_server  # the app on a loopback socket, for a client with no cookie jar


def _archive(app: Flask, as_user: Call) -> dict[str, Any]:
    run = as_user("post", "/api/v1/exports").get_json()
    assert execute_run(get_context(app), run["id"], "test-worker") == "delivered"
    archive_id = as_user("get", f"/api/v1/runs/{run['id']}").get_json()["archive_id"]
    return as_user("get", f"/api/v1/archives/{archive_id}").get_json()


def _stored(app: Flask, db: Database, archive_id: str) -> bytes:
    with db.session() as session:
        relpath = session.get(Archive, archive_id).relpath  # type: ignore[union-attr]
    return (Path(app.config["ARCHIVE_DIR"]) / relpath).read_bytes()


def _path(app: Flask, url: str) -> str:
    base = app.config["BASE_URL"].rstrip("/")
    assert url.startswith(base + "/d/"), url
    return url[len(base) :]


def test_a_new_link_downloads_checks_and_lists_with_no_credential_at_all(
    app: Flask, db: Database, as_alice: Call
) -> None:
    archive = _archive(app, as_alice)
    made = as_alice("post", f"/api/v1/archives/{archive['id']}/links")
    assert made.status_code == 201
    link = made.get_json()
    assert link["archive_id"] == archive["id"] and link["downloads"] == 0
    assert link["sha256sums_url"] == link["url"] + "/SHA256SUMS" and link["parts_url"] == link["url"] + "/parts"
    lifetime = dt.datetime.fromisoformat(link["expires_at"]) - dt.datetime.fromisoformat(link["created_at"])
    assert lifetime == dt.timedelta(seconds=app.config["DOWNLOAD_LINK_MAX_AGE"])
    anyone = app.test_client()  # no session cookie, no token
    body = anyone.get(_path(app, link["url"]))
    assert body.status_code == 200 and hashlib.sha256(body.data).hexdigest() == archive["sha256"]
    sums = anyone.get(_path(app, link["sha256sums_url"])).get_data(as_text=True)
    assert sums.splitlines()[0] == f"{archive['sha256']}  {archive['filename']}"
    parts = anyone.get(_path(app, link["parts_url"])).get_json()
    assert parts["sha256"] == archive["sha256"] and any(p["name"].startswith("contacts/") for p in parts["parts"])
    listed = as_alice("get", f"/api/v1/archives/{archive['id']}/links").get_json()
    assert [(x["id"], x["downloads"]) for x in listed] == [(link["id"], 1)]


def test_the_link_resumes_with_range_for_a_plain_http_client_on_a_socket(
    app: Flask, db: Database, as_alice: Call, live_server: str
) -> None:
    app.config["BASE_URL"] = live_server
    archive = _archive(app, as_alice)
    link = as_alice("post", f"/api/v1/archives/{archive['id']}/links", json={"expires_in_days": 1}).get_json()
    assert link["url"].startswith(live_server + "/d/")
    stored = _stored(app, db, archive["id"])
    request = urllib.request.Request(link["url"], headers={"Range": "bytes=100-"})
    with urllib.request.urlopen(request, timeout=10) as answer:  # urllib keeps no cookies
        assert answer.status == 206
        assert answer.headers["Content-Range"] == f"bytes 100-{len(stored) - 1}/{len(stored)}"
        assert answer.headers["Accept-Ranges"] == "bytes" and answer.headers["ETag"] == f'"{archive["sha256"]}"'
        rest = answer.read()
    with urllib.request.urlopen(urllib.request.Request(link["url"], headers={"Range": "bytes=0-99"})) as answer:
        head = answer.read()
    assert hashlib.sha256(head + rest).hexdigest() == archive["sha256"]
    with urllib.request.urlopen(link["parts_url"], timeout=10) as answer:
        assert json.load(answer)["size"] == len(stored)


def test_a_lifetime_is_chosen_in_days_up_to_the_servers_limit(app: Flask, as_alice: Call) -> None:
    archive = _archive(app, as_alice)
    two = as_alice("post", f"/api/v1/archives/{archive['id']}/links", json={"expires_in_days": 2}).get_json()
    expires = dt.datetime.fromisoformat(two["expires_at"])
    assert abs(expires - (utcnow() + dt.timedelta(days=2))) < dt.timedelta(minutes=1)
    too_long = as_alice("post", f"/api/v1/archives/{archive['id']}/links", json={"expires_in_days": 8})
    assert too_long.status_code == 422
    error = too_long.get_json()
    assert error["code"] == "invalid_input" and "between 1 and 7" in error["message"]
    assert error["problems"][0]["field"] == "expires_in_days"
    wrong_type = as_alice("post", f"/api/v1/archives/{archive['id']}/links", json={"expires_in_days": "2"})
    assert wrong_type.status_code == 422
    huge = as_alice("post", f"/api/v1/archives/{archive['id']}/links", json={"expires_in_days": 2**40})
    assert huge.status_code == 422 and "between 1 and 7" in huge.get_json()["message"]  # once a 500 (OverflowError)


def test_a_revoked_link_is_410_at_once_and_leaves_the_list(app: Flask, as_alice: Call) -> None:
    archive = _archive(app, as_alice)
    keep = as_alice("post", f"/api/v1/archives/{archive['id']}/links").get_json()
    drop = as_alice("post", f"/api/v1/archives/{archive['id']}/links").get_json()
    assert as_alice("delete", f"/api/v1/links/{drop['id']}").status_code == 204
    assert as_alice("delete", f"/api/v1/links/{drop['id']}").status_code == 204  # twice is fine
    anyone = app.test_client()
    assert anyone.get(_path(app, drop["url"])).status_code == 410
    assert anyone.get(_path(app, drop["sha256sums_url"])).status_code == 410
    kept = anyone.get(_path(app, keep["url"]))
    assert kept.status_code == 200 and hashlib.sha256(kept.data).hexdigest() == archive["sha256"]
    listed = as_alice("get", f"/api/v1/archives/{archive['id']}/links").get_json()
    assert [x["id"] for x in listed] == [keep["id"]]


def test_deleting_an_archive_removes_its_file_and_stops_its_links(app: Flask, db: Database, as_alice: Call) -> None:
    archive = _archive(app, as_alice)
    link = as_alice("post", f"/api/v1/archives/{archive['id']}/links").get_json()
    with db.session() as session:
        path = Path(app.config["ARCHIVE_DIR"]) / session.get(Archive, archive["id"]).relpath  # type: ignore[union-attr]
    assert path.exists()
    assert as_alice("delete", f"/api/v1/archives/{archive['id']}").status_code == 204
    assert not path.exists()
    gone = app.test_client().get(_path(app, link["url"]))
    assert gone.status_code == 410 and "deleted" in gone.get_data(as_text=True)
    assert as_alice("get", f"/api/v1/archives/{archive['id']}").get_json()["code"] == "archive_gone"
    assert as_alice("get", "/api/v1/archives").get_json()["items"] == []
    assert as_alice("get", f"/api/v1/archives/{archive['id']}/links").get_json() == []
    again = as_alice("post", f"/api/v1/archives/{archive['id']}/links")
    assert again.status_code == 410 and again.get_json()["code"] == "archive_gone"
    assert as_alice("delete", f"/api/v1/archives/{archive['id']}").status_code == 204  # idempotent


def test_another_users_archive_and_links_are_404_and_stay_untouched(
    app: Flask, as_alice: Call, as_bob: Call, client: FlaskClient
) -> None:
    archive = _archive(app, as_alice)
    link = as_alice("post", f"/api/v1/archives/{archive['id']}/links").get_json()
    for method, path in [
        ("delete", f"/api/v1/archives/{archive['id']}"),
        ("post", f"/api/v1/archives/{archive['id']}/links"),
        ("get", f"/api/v1/archives/{archive['id']}/links"),
        ("delete", f"/api/v1/links/{link['id']}"),
        ("delete", f"/api/v1/archives/{'0' * 32}"),
        ("delete", f"/api/v1/links/{'0' * 40}"),
    ]:
        response = as_bob(method, path)
        assert response.status_code == 404, (method, path)
        assert response.get_json()["code"] == "not_found"
        assert link["url"] not in response.get_data(as_text=True)
    still = client.get(_path(app, link["url"]))
    assert still.status_code == 200 and hashlib.sha256(still.data).hexdigest() == archive["sha256"]
    assert as_alice("get", f"/api/v1/archives/{archive['id']}").status_code == 200


def test_the_openapi_document_describes_the_link_endpoints(client: FlaskClient) -> None:
    document = client.get("/api/v1/openapi.json").get_json()
    paths = document["paths"]
    assert {"get", "post"} <= set(paths["/api/v1/archives/{archive_id}/links"])
    assert {"get", "delete"} <= set(paths["/api/v1/archives/{archive_id}"])
    assert "delete" in paths["/api/v1/links/{link_id}"]
    link = document["components"]["schemas"]["Link"]
    lifetime = document["components"]["schemas"]["LinkIn"]["properties"]["expires_in_days"]
    assert (lifetime["minimum"], lifetime["maximum"]) == (1, 7)  # the setting's 7 days, as the server enforces
    assert {"url", "sha256sums_url", "parts_url", "expires_at", "id"} <= set(link["required"])
