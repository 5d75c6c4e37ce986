"""Friendly error pages with a way back; JSON {"code", "message"} for /api/ and JSON clients."""

from __future__ import annotations

import pytest
from flask import Flask, abort
from flask.testing import FlaskClient

from tests.web.conftest import PASSWORD, csrf_token, sign_in


@pytest.fixture
def failing_app(app: Flask) -> Flask:
    """The app with a route that fails with each status (added before its first request)."""

    @app.route("/test-fail/<int:code>")
    def fail(code: int) -> str:
        if code == 500:
            raise RuntimeError("boom")
        abort(code)

    app.config["PROPAGATE_EXCEPTIONS"] = False
    return app


@pytest.mark.parametrize(
    ("code", "title"),
    [
        (400, "That request could not be read"),
        (403, "Not allowed"),
        (404, "Page not found"),
        (410, "This link has expired"),
        (429, "Too many requests"),
        (500, "Something went wrong on our side"),
    ],
)
def test_each_error_status_gets_a_page_in_words_with_a_way_back(failing_app: Flask, code: int, title: str) -> None:
    response = failing_app.test_client().get(f"/test-fail/{code}")
    page = response.get_data(as_text=True)
    assert response.status_code == code
    assert response.mimetype == "text/html"
    assert f"<title>{title} · Lifeboat</title>" in page
    assert 'href="/login"' in page  # not signed in: the way back is signing in


@pytest.mark.parametrize("code", [400, 403, 404, 410, 500])
def test_api_paths_and_json_clients_get_json_errors_not_html(failing_app: Flask, code: int) -> None:
    client = failing_app.test_client()
    response = client.get(f"/test-fail/{code}", headers={"Accept": "application/json"})
    assert response.status_code == code
    body = response.get_json()
    assert set(body) == {"code", "message"} and body["message"]
    api = client.get("/api/v1/no-such-thing")
    assert api.status_code == 404
    assert api.get_json()["code"] == "not_found"


def test_opening_the_export_button_address_explains_and_links_back(signed_in: FlaskClient) -> None:
    response = signed_in.get("/export", headers={"Referer": "http://localhost/"})
    page = response.get_data(as_text=True)
    assert response.status_code == 405
    assert "This address is for a button" in page
    assert "Back to your dashboard" in page
    assert "Method Not Allowed" not in page
    assert response.headers["Allow"]


def test_a_post_without_its_form_token_is_an_expired_form_not_csrf_jargon(signed_in: FlaskClient) -> None:
    response = signed_in.post("/export", data={})
    page = response.get_data(as_text=True)
    assert response.status_code == 400
    assert "This form expired" in page and "Nothing was changed" in page
    assert "CSRF" not in page


def test_signing_in_with_next_naming_a_post_only_address_lands_on_the_dashboard(app: Flask, alice_user: int) -> None:
    client = app.test_client()
    response = sign_in(client, query="?next=/export")
    assert response.status_code == 302
    assert response.headers["Location"] == "/"
    assert "Nothing was started" in client.get("/").get_data(as_text=True)


def test_signing_in_still_follows_next_to_a_page(app: Flask, alice_user: int) -> None:
    response = sign_in(app.test_client(), query="?next=/no-such-page%3Fa%3D1")
    assert response.headers["Location"] == "/no-such-page?a=1"


def test_an_empty_sign_in_form_names_each_missing_field(app: Flask, alice_user: int) -> None:
    client = app.test_client()
    token = csrf_token(client, "/login")
    page = client.post("/login", data={"csrf_token": token}).get_data(as_text=True)
    assert "Enter your email address." in page and "Enter your password." in page
    assert 'aria-invalid="true"' in page
    assert PASSWORD not in page
