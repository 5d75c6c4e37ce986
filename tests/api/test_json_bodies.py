"""One rule for request bodies, on every endpoint of the user and staff API: JSON or none.

A user trial: `curl -d 'expires_in_days=1' …/links` (a form) and the same JSON sent as
text/plain both answered 201 with a 7-day link, the longest, while PUT /schedule and
POST /tokens refused text/plain with 415. webargs reads only a JSON body and took the
rest as no body at all.
"""

from __future__ import annotations

import datetime as dt
import re
from typing import Any

from flask import Flask
from flask.testing import FlaskClient

from jobs import get_context
from jobs.execute import execute_run
from store import Database, User
from tests.api.conftest import Call, bearer, make_token

NOT_JSON = {"code": "unsupported_media_type", "message": "Send a JSON object with Content-Type: application/json."}


def _archive_id(app: Flask, as_user: Call) -> str:
    run = as_user("post", "/api/v1/exports").get_json()
    assert execute_run(get_context(app), run["id"], "test-worker") == "delivered"
    return str(as_user("get", f"/api/v1/runs/{run['id']}").get_json()["archive_id"])


def _lifetime(link: dict[str, Any]) -> dt.timedelta:
    return dt.datetime.fromisoformat(link["expires_at"]) - dt.datetime.fromisoformat(link["created_at"])


def test_a_link_asked_for_in_a_form_or_as_text_is_refused_not_made_for_the_longest_lifetime(
    app: Flask, as_alice: Call
) -> None:
    links = f"/api/v1/archives/{_archive_id(app, as_alice)}/links"
    form = as_alice("post", links, data={"expires_in_days": "1"})  # curl -d: application/x-www-form-urlencoded
    text = as_alice("post", links, data='{"expires_in_days": 1}', content_type="text/plain")
    for refused in (form, text):
        assert (refused.status_code, refused.get_json()) == (415, NOT_JSON)
    assert as_alice("get", links).get_json() == []  # nothing was made
    asked = as_alice("post", links, json={"expires_in_days": 1})
    assert asked.status_code == 201 and _lifetime(asked.get_json()) == dt.timedelta(days=1)
    bare = as_alice("post", links)  # no body at all is still "the longest lifetime"
    assert bare.status_code == 201
    assert _lifetime(bare.get_json()) == dt.timedelta(seconds=app.config["DOWNLOAD_LINK_MAX_AGE"])


def test_an_endpoint_that_takes_no_body_refuses_one_that_is_not_json(as_alice: Call) -> None:
    refused = as_alice("post", "/api/v1/exports", data={"when": "now"})
    assert (refused.status_code, refused.get_json()) == (415, NOT_JSON)
    assert as_alice("get", "/api/v1/runs").get_json()["items"] == []  # no export was started
    assert as_alice("post", "/api/v1/exports").status_code == 202


def test_every_documented_body_refuses_text_with_415_as_the_document_says(
    client: FlaskClient, db: Database, alice_token: str
) -> None:
    with db.session(write=True) as session:
        staff = User(email="helper@example.com", role="support")
        session.add(staff)
        session.flush()
        staff_id = staff.id
    staff_token = make_token(db, staff_id, "console")
    document = client.get("/api/v1/openapi.json").get_json()
    taken = [
        (method, path, operation)
        for path, operations in document["paths"].items()
        for method, operation in operations.items()
        if isinstance(operation, dict) and "requestBody" in operation
    ]
    assert len(taken) >= 15
    for method, path, operation in taken:
        assert "415" in operation["responses"], (method, path)
        url = re.sub(r"\{[a-z_]*id\}", "1", path)
        token = staff_token if path.startswith("/api/v1/support/") else alice_token
        answer = client.open(url, method=method.upper(), data="{}", content_type="text/plain", headers=bearer(token))
        assert (answer.status_code, answer.get_json()) == (415, NOT_JSON), (method, path)
        if operation["requestBody"].get("required"):
            empty = client.open(url, method=method.upper(), content_type="application/json", headers=bearer(token))
            assert empty.status_code == 422 and empty.get_json()["problems"] == [
                {"field": "body", "message": "Missing."}
            ]
