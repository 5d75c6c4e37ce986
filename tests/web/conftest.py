"""Web fixtures: a user with a password, a signed-in client, the CSRF token of a page, and two users
with everything a user can own in one app per module (`two_users`)."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from flask import Flask
from flask.testing import FlaskClient
from werkzeug.test import TestResponse

from account.jsonio import account_from_dict
from account.records import Account
from account.sample import SampleSize, generate_account
from store import Database, Destination, User, get_db
from store.accounts import replace_account
from store.base import utcnow
from store.passwords import hash_password
from tests.conftest import DATA, build_app
from tests.web.two_users import Holder, make_holder
from web.staff_access import STAFF_VERIFIED_KEY

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


@dataclass(frozen=True)
class TwoUsers:
    """One app shared by a module's tests: a victim (alice's sample data) and an attacker (other data)."""

    app: Flask
    victim: Holder
    attacker: Holder


@pytest.fixture(scope="module")
def two_users(tmp_path_factory: pytest.TempPathFactory, migrated_sqlite: Path) -> Iterator[TwoUsers]:
    app = build_app(tmp_path_factory.mktemp("two-users"), migrated_sqlite)
    victim = account_from_dict(json.loads((DATA / "alice.json").read_text("utf-8")))
    attacker = generate_account("mallory@example.net", SampleSize(contacts=3, events=4, notes=2, calendars=1))
    yield TwoUsers(app, make_holder(app, victim, PASSWORD), make_holder(app, attacker, "mallory's password"))
    get_db(app).dispose()


# ---- support staff (issue 14) ---------------------------------------------------------------------------

STAFF_PASSWORD = "staff horse battery"


def make_staff(db: Database, email: str, role: str) -> int:
    """A confirmed staff account with STAFF_PASSWORD (its second factor is marked passed by `staff_client`)."""
    with db.session(write=True) as session:
        user = User(
            email=email,
            role=role,
            is_support=True,
            password_hash=hash_password(STAFF_PASSWORD),
            email_confirmed_at=utcnow(),
        )
        session.add(user)
        session.flush()
        return user.id


def staff_client(app: Flask, email: str, role: str) -> FlaskClient:
    """A client signed in as a new staff member whose session passed the second factor (as web.staff_auth marks it)."""
    make_staff(get_db(app), email, role)
    client = app.test_client()
    assert sign_in(client, email, STAFF_PASSWORD).status_code == 302
    with client.session_transaction() as session:
        session[STAFF_VERIFIED_KEY] = True
    return client


@pytest.fixture
def support_client(app: Flask) -> FlaskClient:
    return staff_client(app, "sam@support.example.com", "support")


@pytest.fixture
def admin_client(app: Flask) -> FlaskClient:
    return staff_client(app, "ada@admin.example.com", "admin")


ADMIN = "admin@lifeboat.example"


@pytest.fixture
def admin(app: Flask) -> int:
    """An admin account (password `tests.web.staff_helpers.STAFF_PASSWORD`), not yet enrolled."""
    from tests.web.staff_helpers import make_staff  # it imports this module: not at the top

    return make_staff(app, ADMIN, "admin")


@pytest.fixture
def enrolled_admin(app: Flask, admin: int) -> tuple[FlaskClient, str, list[str]]:
    """An admin through enrolment, signed in and verified in `client`: the secret and recovery codes."""
    from tests.web.staff_helpers import enrol

    client = app.test_client()
    secret, codes = enrol(client, ADMIN)
    return client, secret, codes


@pytest.fixture
def bobs_destination(app: Flask) -> int:
    """The id of an email destination of another user (bob): never alice's to see or change."""
    with get_db(app).session(write=True) as session:
        bob = User(email="bob@example.com")
        session.add(bob)
        session.flush()
        theirs = Destination(user_id=bob.id, kind="email", label="bob's", enabled=True)
        theirs.settings = {"to": "bob@example.com"}
        session.add(theirs)
        session.flush()
        return theirs.id
