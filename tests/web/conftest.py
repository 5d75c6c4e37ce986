"""Web fixtures: a user with a password, a signed-in client, and the CSRF token of a page."""

from __future__ import annotations

import re

import pytest
from flask import Flask
from flask.testing import FlaskClient
from werkzeug.test import TestResponse

from account.records import Account
from store import Database
from store.accounts import replace_account
from store.passwords import hash_password

PASSWORD = "correct horse"


def csrf_token(client: FlaskClient, path: str) -> str:
    page = client.get(path).get_data(as_text=True)
    match = re.search(r'name="csrf_token" type="hidden" value="([^"]+)"', page) or re.search(
        r'name="csrf_token" value="([^"]+)"', page
    )
    assert match, page
    return match.group(1)


def sign_in(
    client: FlaskClient, email: str = "alice@example.com", password: str = PASSWORD, query: str = ""
) -> TestResponse:
    token = csrf_token(client, "/login")
    return client.post(f"/login{query}", data={"email": email, "password": password, "csrf_token": token})


@pytest.fixture
def alice_user(db: Database, alice: Account) -> int:
    with db.session(write=True) as session:
        user = replace_account(session, alice)
        user.password_hash = hash_password(PASSWORD)
        return user.id


@pytest.fixture
def signed_in(app: Flask, alice_user: int) -> FlaskClient:
    client = app.test_client()
    response = sign_in(client)
    assert response.status_code == 302
    return client
