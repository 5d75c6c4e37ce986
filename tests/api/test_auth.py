"""Who may call the API: a live bearer token, or the session with its CSRF token; errors are JSON."""

from __future__ import annotations

import datetime as dt
import hashlib

from flask import Flask
from flask.testing import FlaskClient

from store import ApiToken, Database
from store.base import utcnow
from tests.api.conftest import Call, bearer, make_token
from tests.web.conftest import csrf_token, sign_in


def test_a_token_opens_the_api_for_its_owner(as_alice: Call) -> None:
    response = as_alice("get", "/api/v1/me")
    assert response.status_code == 200
    assert response.get_json()["email"] == "alice@example.com"


def test_no_token_gets_401_with_a_json_error_and_a_bearer_challenge(client: FlaskClient) -> None:
    response = client.get("/api/v1/me")
    assert response.status_code == 401
    assert response.get_json()["code"] == "missing_token"
    assert response.headers["WWW-Authenticate"].startswith("Bearer")


def test_garbage_and_wrong_schemes_get_401(client: FlaskClient, alice_token: str) -> None:
    for header in ("Bearer nonsense", "Bearer lb_" + "x" * 43, "Basic YWxpY2U6cHc=", "Bearer", f"Token {alice_token}"):
        response = client.get("/api/v1/me", headers={"Authorization": header})
        assert response.status_code == 401, header
        assert response.get_json()["code"] == "invalid_token"


def test_only_the_hash_of_a_token_is_stored(db: Database, alice_id: int) -> None:
    secret = make_token(db, alice_id)
    assert secret.startswith("lb_") and len(secret) > 40
    with db.session() as session:
        stored = session.query(ApiToken).one()
    assert stored.token_sha256 == hashlib.sha256(secret.encode()).hexdigest()
    assert secret not in repr(stored.__dict__)


def test_a_revoked_token_stops_working_at_once(
    client: FlaskClient, as_alice: Call, db: Database, alice_id: int
) -> None:
    spare = make_token(db, alice_id, "spare")
    assert client.get("/api/v1/me", headers=bearer(spare)).status_code == 200
    token_id = next(t["id"] for t in as_alice("get", "/api/v1/tokens").get_json() if t["name"] == "spare")
    assert as_alice("delete", f"/api/v1/tokens/{token_id}").status_code == 204
    response = client.get("/api/v1/me", headers=bearer(spare))
    assert response.status_code == 401 and response.get_json()["code"] == "invalid_token"
    listed = {t["name"]: t for t in as_alice("get", "/api/v1/tokens").get_json()}
    assert listed["spare"]["active"] is False and listed["spare"]["revoked_at"]


def test_a_token_revoking_itself_is_refused_on_its_next_request(as_alice: Call) -> None:
    mine = as_alice("get", "/api/v1/tokens").get_json()[0]["id"]
    assert as_alice("delete", f"/api/v1/tokens/{mine}").status_code == 204
    assert as_alice("get", "/api/v1/me").status_code == 401


def test_an_expired_token_gets_401(client: FlaskClient, db: Database, alice_id: int) -> None:
    secret = make_token(db, alice_id, days=1)
    with db.session(write=True) as session:
        session.query(ApiToken).update({"expires_at": utcnow() - dt.timedelta(seconds=1)})
    response = client.get("/api/v1/me", headers=bearer(secret))
    assert response.status_code == 401 and response.get_json()["code"] == "invalid_token"


def test_a_token_of_a_closed_account_gets_401(client: FlaskClient, db: Database, alice_id: int) -> None:
    secret = make_token(db, alice_id)
    from store import User

    with db.session(write=True) as session:
        session.get(User, alice_id).is_active = False  # type: ignore[union-attr]
    assert client.get("/api/v1/me", headers=bearer(secret)).status_code == 401


def test_the_session_cookie_alone_is_not_accepted(app: Flask, alice_id: int) -> None:
    client = app.test_client()
    assert sign_in(client).status_code == 302
    for method in ("GET", "POST"):
        response = client.open("/api/v1/exports" if method == "POST" else "/api/v1/me", method=method)
        assert response.status_code == 401, method
        assert response.get_json()["code"] == "csrf_token_required"
    response = client.post("/api/v1/exports", headers={"X-CSRFToken": "forged"})
    assert response.status_code == 401


def test_the_session_with_its_csrf_token_is_accepted(app: Flask, alice_id: int) -> None:
    client = app.test_client()
    sign_in(client)
    token = csrf_token(client, "/")
    assert client.get("/api/v1/me", headers={"X-CSRFToken": token}).status_code == 200
    assert (
        client.post("/api/v1/tokens", json={"name": "from the page"}, headers={"X-CSRFToken": token}).status_code == 201
    )


def test_a_bearer_post_needs_no_csrf_token(as_alice: Call) -> None:
    assert as_alice("post", "/api/v1/exports").status_code == 202


def test_unknown_api_paths_and_methods_answer_in_json(client: FlaskClient, as_alice: Call) -> None:
    for path in ("/api/v1/nothing-here", "/api/v2/me", "/api/"):
        response = client.get(path)
        assert response.status_code == 404 and response.get_json()["code"] == "not_found", path
    response = client.post("/api/v1/nothing-here")
    assert response.status_code == 404 and response.is_json
    response = as_alice("delete", "/api/v1/me")
    assert response.status_code == 405 and response.get_json()["code"] == "method_not_allowed"
    assert "GET" in response.headers["Allow"]


def test_pages_outside_the_api_keep_html_errors(client: FlaskClient) -> None:
    response = client.get("/no-such-page")
    assert response.status_code == 404 and not response.is_json


def test_a_crash_is_a_json_500_that_says_nothing_inside(app: Flask, as_alice: Call, monkeypatch: object) -> None:
    import web.api.account_views as views

    def boom(*_: object) -> None:
        raise RuntimeError("secret internals")

    monkeypatch.setattr(views, "counts_line", boom)  # type: ignore[attr-defined]
    response = as_alice("get", "/api/v1/counts")
    assert response.status_code == 500
    assert response.get_json()["code"] == "internal_error" and "secret" not in response.get_data(as_text=True)
