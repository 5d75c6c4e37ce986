"""`/api/v1/options`: the vCard version and the kinds of data archives include, as the settings page sets them."""

from __future__ import annotations

import datetime as dt

import pytest

from store import Database, User
from tests.api.conftest import Call
from tests.conftest import OpenPGPKeyMaker, UserKey


def test_options_round_trip_and_reach_the_user_row(as_alice: Call, db: Database, alice_id: int) -> None:
    view = as_alice("get", "/api/v1/options").get_json()
    assert view == {
        "vcard_version": "default",
        "effective_vcard_version": "3.0",
        "kinds": ["contacts", "calendars", "notes"],
        "seal_key": None,
        "sealed_to": None,
        "seal_problem": None,
        "seal_key_expires_at": None,
        "seal_key_warning": None,
    }
    saved = as_alice("put", "/api/v1/options", json={"kinds": ["notes", "contacts"], "vcard_version": "4.0"})
    assert saved.status_code == 200
    assert saved.get_json() == {
        "vcard_version": "4.0",
        "effective_vcard_version": "4.0",
        "kinds": ["contacts", "notes"],
        "seal_key": None,
        "sealed_to": None,
        "seal_problem": None,
        "seal_key_expires_at": None,
        "seal_key_warning": None,
    }
    assert as_alice("get", "/api/v1/options").get_json() == saved.get_json()
    with db.session() as session:
        user = session.get(User, alice_id)
        assert user is not None and user.export_kinds == "contacts,notes" and user.vcard_version == "4.0"
    # Every kind again is stored as "all" (None), so kinds added later are included too.
    as_alice("put", "/api/v1/options", json={"kinds": ["contacts", "calendars", "notes"]})
    with db.session() as session:
        user = session.get(User, alice_id)
        assert user is not None and user.export_kinds is None and user.vcard_version == "4.0"


def test_no_kind_at_all_is_422_invalid_options_and_changes_nothing(as_alice: Call) -> None:
    as_alice("put", "/api/v1/options", json={"kinds": ["notes"]})
    response = as_alice("put", "/api/v1/options", json={"kinds": [], "vcard_version": "4.0"})
    assert response.status_code == 422
    body = response.get_json()
    assert body["code"] == "invalid_options"
    assert body["problems"] == [
        {"field": "kinds", "message": "Choose at least one kind of data to include: contacts, calendars or notes."}
    ]
    assert as_alice("get", "/api/v1/options").get_json()["kinds"] == ["notes"]
    assert as_alice("get", "/api/v1/options").get_json()["vcard_version"] == "default"


def test_an_unknown_kind_or_version_is_422_naming_the_field(as_alice: Call) -> None:
    response = as_alice("put", "/api/v1/options", json={"kinds": ["photos"], "vcard_version": "2.1"})
    assert response.status_code == 422
    body = response.get_json()
    assert body["code"] == "invalid_options" and {p["field"] for p in body["problems"]} == {"kinds", "vcard_version"}


def test_each_user_sees_only_their_own_options(as_alice: Call, as_bob: Call) -> None:
    as_alice("put", "/api/v1/options", json={"kinds": ["calendars"]})
    assert as_bob("get", "/api/v1/options").get_json()["kinds"] == ["contacts", "calendars", "notes"]


def test_the_api_sets_shows_refuses_and_clears_the_key(as_alice: Call, openpgp_key: UserKey) -> None:
    saved = as_alice("put", "/api/v1/options", json={"seal_key": openpgp_key.public})
    assert saved.status_code == 200
    body = saved.get_json()
    assert body["sealed_to"].startswith("OpenPGP key ") and "BEGIN PGP PUBLIC KEY BLOCK" in body["seal_key"]
    refused = as_alice("put", "/api/v1/options", json={"seal_key": "AGE-SECRET-KEY-1ABC", "kinds": ["notes"]})
    assert refused.status_code == 422 and refused.get_json()["code"] == "invalid_options"
    assert refused.get_json()["problems"][0]["field"] == "seal_key"
    assert as_alice("get", "/api/v1/options").get_json() == body  # nothing changed, the kinds neither
    cleared = as_alice("put", "/api/v1/options", json={"seal_key": None}).get_json()
    assert (cleared["seal_key"], cleared["sealed_to"]) == (None, None)


@pytest.mark.slow  # real gpg keys or real processes: CI's whole suite, not test-fast
def test_the_api_refuses_an_expired_key_and_takes_one_expiring_soon_with_a_warning_naming_the_date(
    as_alice: Call, openpgp_key_expiring: OpenPGPKeyMaker
) -> None:
    refused = as_alice("put", "/api/v1/options", json={"seal_key": openpgp_key_expiring("1y", made="20200101T000000")})
    assert refused.status_code == 422 and refused.get_json()["code"] == "invalid_options"
    [problem] = refused.get_json()["problems"]
    assert problem["field"] == "seal_key" and "expired on 2020-12-31" in problem["message"]
    assert "gpg --quick-set-expire " in problem["message"]
    assert as_alice("get", "/api/v1/options").get_json()["seal_key"] is None
    expires = dt.datetime.now(dt.UTC) + dt.timedelta(days=10)
    body = as_alice("put", "/api/v1/options", json={"seal_key": openpgp_key_expiring("10d")}).get_json()
    assert body["sealed_to"].startswith("OpenPGP key ")
    assert body["seal_key_expires_at"].startswith(f"{expires:%Y-%m-%d}")
    assert f"expires on {expires:%Y-%m-%d}" in body["seal_key_warning"]
    later = as_alice("put", "/api/v1/options", json={"seal_key": openpgp_key_expiring("1y")}).get_json()
    assert later["seal_key_expires_at"] is not None and later["seal_key_warning"] is None  # a year away: no warning
