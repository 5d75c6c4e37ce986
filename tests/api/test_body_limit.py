"""Request bodies over LIFEBOAT_MAX_REQUEST_BYTES get 413 before they are read (user trial 7, item 1).

The trial sent a 300 MB JSON body with a valid token and the one worker (which
also runs the scheduler and the exports) grew by 850 MB. Here the declared
length alone must be enough for a 413, over a real socket to `lifeboat serve`
as well as in process.
"""

from __future__ import annotations

import io
import json
import socket
from collections.abc import Iterator
from pathlib import Path

import pytest
from flask import Flask
from flask.testing import FlaskClient

import config
from store import get_db
from tests.api.conftest import bearer, make_token
from tests.conftest import build_app
from tests.web.live_server import Served, serve

HUGE = 300_000_000


class Unreadable(io.BytesIO):
    """A request body that fails the test if anything reads it."""

    def read(self, size: int | None = -1) -> bytes:
        raise AssertionError("the body was read")

    def readinto(self, buffer: object) -> int:
        raise AssertionError("the body was read")

    def readline(self, size: int | None = -1) -> bytes:
        raise AssertionError("the body was read")


def test_the_default_limit_is_a_few_megabytes_and_flask_enforces_it(app: Flask) -> None:
    assert config.BY_NAME["MAX_REQUEST_BYTES"].default == 2_000_000
    assert app.config["MAX_CONTENT_LENGTH"] == app.config["MAX_REQUEST_BYTES"] == 2_000_000


def test_it_refuses_a_declared_oversize_api_body_with_json_without_reading_it(
    client: FlaskClient, alice_token: str
) -> None:
    response = client.post(
        "/api/v1/tokens",
        headers={**bearer(alice_token), "Content-Type": "application/json"},
        input_stream=Unreadable(),
        environ_overrides={"CONTENT_LENGTH": str(HUGE)},
    )
    assert response.status_code == 413
    body = response.get_json()
    assert body["code"] == "too_large"
    assert body["message"].startswith("The request was larger than the 2.0 MB Lifeboat accepts")
    assert "nothing was changed" in body["message"]


def test_a_body_within_the_limit_is_still_read(client: FlaskClient, alice_token: str) -> None:
    response = client.post("/api/v1/tokens", headers=bearer(alice_token), json={"name": "x" * 101})
    assert response.status_code == 422  # read and judged, as before


def test_an_undeclared_chunked_body_is_cut_off_at_the_limit(client: FlaskClient, alice_token: str) -> None:
    big = b'{"name": "' + b"x" * 3_000_000 + b'"}'
    response = client.post(
        "/api/v1/tokens",
        headers={**bearer(alice_token), "Content-Type": "application/json", "Transfer-Encoding": "chunked"},
        input_stream=io.BytesIO(big),
        environ_overrides={"wsgi.input_terminated": True, "CONTENT_LENGTH": ""},
    )
    assert response.status_code == 413
    assert response.get_json()["code"] == "too_large"
    small = client.post(
        "/api/v1/tokens",
        headers={**bearer(alice_token), "Content-Type": "application/json", "Transfer-Encoding": "chunked"},
        input_stream=io.BytesIO(b'{"name": "chunked"}'),
        environ_overrides={"wsgi.input_terminated": True, "CONTENT_LENGTH": ""},
    )
    assert small.status_code == 201, small.get_json()
    assert small.get_json()["name"] == "chunked"


def test_pages_get_an_error_page_in_words(client: FlaskClient) -> None:
    response = client.post(
        "/login",
        headers={"Content-Type": "application/x-www-form-urlencoded", "Accept": "text/html"},
        input_stream=Unreadable(),
        environ_overrides={"CONTENT_LENGTH": str(HUGE)},
    )
    page = response.get_data(as_text=True)
    assert response.status_code == 413 and response.mimetype == "text/html"
    assert "<title>That was too much to send · Lifeboat</title>" in page
    assert "larger than the 2.0 MB Lifeboat accepts" in page


def test_the_limit_is_a_setting(tmp_path: Path, migrated_sqlite: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LIFEBOAT_MAX_REQUEST_BYTES", "50000")
    app = build_app(tmp_path, migrated_sqlite)
    try:
        response = app.test_client().post("/login", data={"email": "x" * 60_000})
        assert response.status_code == 413
        assert "larger than the 50 KB" in response.get_data(as_text=True)
    finally:
        get_db(app).dispose()


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory, migrated_sqlite: Path) -> Iterator[tuple[Served, str]]:
    from store import User

    app = build_app(tmp_path_factory.mktemp("live"), migrated_sqlite)
    db = get_db(app)
    with db.session(write=True) as session:
        user = User(email="carol@example.com", display_name="Carol", timezone="UTC")
        session.add(user)
        session.flush()
        user_id = user.id
    token = make_token(db, user_id)
    db.dispose()
    settings = {
        "INSTANCE_DIR": str(tmp_path_factory.mktemp("instance")),
        "DATABASE_URL": app.config["DATABASE_URL"],
        "ARCHIVE_DIR": app.config["ARCHIVE_DIR"],
        "SECRET_KEY": app.config["SECRET_KEY"],
        "EMBEDDED_WORKERS": "0",
    }
    with serve(settings, threads=2) as served:
        yield served, token


@pytest.mark.server
def test_the_live_server_answers_413_to_a_declared_300_mb_body_before_it_arrives(live: tuple[Served, str]) -> None:
    served, token = live
    host, port = served.url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=20) as connection:
        head = (
            "POST /api/v1/tokens HTTP/1.1\r\n"
            f"Host: {host}:{port}\r\n"
            f"Authorization: Bearer {token}\r\n"
            "Content-Type: application/json\r\n"
            f"Content-Length: {HUGE}\r\n"
            "Connection: close\r\n\r\n"
        )
        connection.sendall(head.encode() + b'{"name": "xxxx')  # a few bytes of the 300 MB promised
        received = b""
        while b"\r\n\r\n" not in received or not received.rstrip().endswith(b"}"):
            chunk = connection.recv(65536)  # times out (the test fails) if the server waits for the body
            if not chunk:
                break
            received += chunk
    status_line, _, rest = received.partition(b"\r\n")
    assert status_line.startswith(b"HTTP/1.1 413"), received[:300]
    body = json.loads(rest.partition(b"\r\n\r\n")[2])
    assert body["code"] == "too_large" and "2.0 MB" in body["message"]
