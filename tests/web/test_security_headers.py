"""Every response says: never in a frame, no content sniffing, no Referer to other sites (user trial 7, item 13)."""

from __future__ import annotations

import pytest
from flask import Flask, Response
from flask.testing import FlaskClient
from werkzeug.test import TestResponse

from web.response_headers import add_security_headers


@pytest.fixture
def client(app: Flask) -> FlaskClient:
    return app.test_client()


def assert_guarded(response: TestResponse) -> None:
    headers = response.headers
    assert headers["X-Content-Type-Options"] == "nosniff"
    assert headers["X-Frame-Options"] == "DENY"
    assert headers.getlist("Content-Security-Policy") == ["frame-ancestors 'none'"]
    assert headers["Referrer-Policy"] == "same-origin"


@pytest.mark.parametrize(
    ("method", "path", "status"),
    [
        ("GET", "/login", 200),
        ("GET", "/static/style.css", 200),
        ("GET", "/no-such-page", 404),
        ("GET", "/api/v1/me", 401),
        ("GET", "/api/v1/no-such-thing", 404),
        ("POST", "/login", 400),  # no CSRF token: the "form expired" page
        ("GET", "/healthz", None),
    ],
)
def test_pages_errors_files_and_the_api_all_carry_the_headers(
    client: FlaskClient, method: str, path: str, status: int | None
) -> None:
    response = client.open(path, method=method)
    response.close()  # a static file's handle
    if status is not None:
        assert response.status_code == status
    assert_guarded(response)


def test_signed_in_pages_carry_them_beside_their_own_cache_control(signed_in: FlaskClient) -> None:
    for path in ("/", "/settings", "/archives", "/history"):
        response = signed_in.get(path)
        assert response.status_code == 200, path
        assert_guarded(response)
    assert signed_in.get("/settings").headers["Cache-Control"] == "no-store"


def test_a_413_carries_them_too(client: FlaskClient) -> None:
    response = client.post("/login", environ_overrides={"CONTENT_LENGTH": "300000000"})
    assert response.status_code == 413
    assert_guarded(response)


def test_a_view_s_own_policy_is_extended_not_doubled_and_its_own_referrer_policy_kept(app: Flask) -> None:
    with app.test_request_context():
        own = Response("x", headers={"Content-Security-Policy": "default-src 'self';"})
        own.headers["Referrer-Policy"] = "no-referrer"
        add_security_headers(own)
        assert own.headers.getlist("Content-Security-Policy") == ["default-src 'self'; frame-ancestors 'none'"]
        assert own.headers["Referrer-Policy"] == "no-referrer"
        strict = Response("x", headers={"Content-Security-Policy": "frame-ancestors 'self'"})
        add_security_headers(strict)
        assert strict.headers.getlist("Content-Security-Policy") == ["frame-ancestors 'self'"]
