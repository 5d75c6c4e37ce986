"""API fixtures: two users (alice with data, bob without), each with a bearer token."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient

from account.records import Account
from jobs import api_tokens
from store import Database, User
from store.accounts import replace_account
from store.base import utcnow
from store.passwords import hash_password
from tests.web.conftest import PASSWORD

Call = Callable[..., Any]


def make_token(db: Database, user_id: int, name: str = "script", days: int = 30) -> str:
    with db.session(write=True) as session:
        return api_tokens.create_token(session, user_id, name, days=days, now=utcnow()).secret


@pytest.fixture
def alice_id(db: Database, alice: Account) -> int:
    with db.session(write=True) as session:
        user = replace_account(session, alice)
        user.password_hash = hash_password(PASSWORD)
        return user.id


@pytest.fixture
def bob_id(db: Database) -> int:
    with db.session(write=True) as session:
        user = User(email="bob@example.com", display_name="Bob", timezone="Europe/Berlin")
        session.add(user)
        session.flush()
        return user.id


@pytest.fixture
def alice_token(db: Database, alice_id: int) -> str:
    return make_token(db, alice_id)


@pytest.fixture
def bob_token(db: Database, bob_id: int) -> str:
    return make_token(db, bob_id)


@pytest.fixture
def client(app: Flask) -> FlaskClient:
    return app.test_client()


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


@pytest.fixture
def as_alice(client: FlaskClient, alice_token: str) -> Call:
    """`as_alice("get", "/api/v1/me", json=...)`: a request with alice's token."""

    def call(method: str, path: str, **kwargs: Any) -> Any:
        return client.open(path, method=method.upper(), headers=bearer(alice_token), **kwargs)

    return call


@pytest.fixture
def as_bob(client: FlaskClient, bob_token: str) -> Call:
    def call(method: str, path: str, **kwargs: Any) -> Any:
        return client.open(path, method=method.upper(), headers=bearer(bob_token), **kwargs)

    return call
