"""PATCH /api/v1/destinations/{id}: change a destination in place, validated as POST is, tested at once."""

from __future__ import annotations

from typing import Any

import pytest
from flask import Flask

from jobs.destination_backends import Registry
from store import Destination, get_db
from tests.api.conftest import Call

ROLE = "arn:aws:iam::123456789012:role/lifeboat"
KEYS = {"access_key_id": "AKIAEXAMPLEKEY12WXYZ", "secret_access_key": "wJalrXUtnFEMI/K7MDENG"}


def stored(app: Flask, destination_id: int) -> Destination:
    with get_db(app).session() as session:
        row = session.get(Destination, destination_id)
        assert row is not None
        return row


@pytest.fixture
def bucket(as_alice: Call) -> dict[str, Any]:
    """An AWS bucket of alice's with a retention policy (no network: AWS endpoints are not resolved on save)."""
    body = {"kind": "s3", "bucket": "my-archives", "region": "us-east-1", "retention_keep": 5, **KEYS}
    added = as_alice("post", "/api/v1/destinations", json=body)
    assert added.status_code == 201, added.get_json()
    return dict(added.get_json())


def test_patch_changes_only_the_fields_given_and_keeps_id_retention_and_the_stored_keys(
    app: Flask, as_alice: Call, bucket: dict[str, Any]
) -> None:
    patched = as_alice("patch", f"/api/v1/destinations/{bucket['id']}", json={"prefix": "backups"})
    assert patched.status_code == 200, patched.get_json()
    body = patched.get_json()
    assert set(body) == {"ok", "message", "destination"} and isinstance(body["ok"], bool) and body["message"]
    destination = body["destination"]
    assert destination["id"] == bucket["id"] and destination["settings"]["prefix"] == "backups"
    assert destination["settings"]["bucket"] == "my-archives" and destination["settings"]["retention_keep"] == 5
    assert destination["has_secret"] and KEYS["secret_access_key"] not in patched.get_data(as_text=True)
    listed = as_alice("get", "/api/v1/destinations").get_json()
    assert listed == [destination]  # as GET shows it
    assert Registry(dict(app.config)).decrypt(stored(app, bucket["id"])) == KEYS


def test_patch_with_a_role_drops_the_keys_and_new_keys_replace_them(
    app: Flask, as_alice: Call, bucket: dict[str, Any]
) -> None:
    path = f"/api/v1/destinations/{bucket['id']}"
    role = as_alice("patch", path, json={"role_arn": ROLE}).get_json()["destination"]
    assert role["settings"]["role_arn"] == ROLE and role["settings"]["external_id"] and not role["has_secret"]
    new = {"access_key_id": "AKIANEWKEYEXAMPLE123", "secret_access_key": "the-new-secret"}
    keys = as_alice("patch", path, json=new).get_json()["destination"]
    assert "role_arn" not in keys["settings"] and "external_id" not in keys["settings"] and keys["has_secret"]
    assert Registry(dict(app.config)).decrypt(stored(app, bucket["id"])) == new


def test_patch_refuses_what_post_refuses_with_the_same_problems_and_changes_nothing(
    app: Flask, as_alice: Call, bucket: dict[str, Any]
) -> None:
    before = stored(app, bucket["id"])
    path = f"/api/v1/destinations/{bucket['id']}"
    patched = as_alice("patch", path, json={"bucket": "x", "region": "EU WEST"})
    posted = as_alice("post", "/api/v1/destinations", json={"kind": "s3", "bucket": "x", "region": "EU WEST", **KEYS})
    assert patched.status_code == posted.status_code == 422
    assert patched.get_json() == posted.get_json() and patched.get_json()["code"] == "invalid_destination"
    private = as_alice("patch", path, json={"endpoint_url": "http://10.0.0.7:9000"})
    assert private.status_code == 422 and "10.0.0.7" in private.get_json()["message"]
    assert as_alice("patch", path, json={"path_style": "yes"}).status_code == 422
    after = stored(app, bucket["id"])
    assert (after.settings, after.secret_token, after.label) == (before.settings, before.secret_token, before.label)


def test_patch_of_an_email_destination_checks_the_address(app: Flask, as_alice: Call) -> None:
    added = as_alice("post", "/api/v1/destinations", json={"kind": "email", "to": "me@example.org"}).get_json()
    path = f"/api/v1/destinations/{added['id']}"
    refused = as_alice("patch", path, json={"to": "not an address"})
    assert refused.status_code == 422 and refused.get_json()["problems"][0]["field"] == "to"
    patched = as_alice("patch", path, json={"to": "Backup@Example.org", "label": "Backups"})
    assert patched.status_code == 200
    destination = patched.get_json()["destination"]
    assert destination["settings"] == {"to": "backup@example.org"} and destination["label"] == "Backups"


def test_patch_of_another_users_or_no_destination_is_404(
    app: Flask, as_alice: Call, as_bob: Call, bucket: dict[str, Any]
) -> None:
    before = stored(app, bucket["id"])
    for call, destination_id in ((as_bob, bucket["id"]), (as_alice, 2**70), (as_alice, bucket["id"] + 1)):
        answer = call("patch", f"/api/v1/destinations/{destination_id}", json={"bucket": "stolen"})
        assert answer.status_code == 404 and answer.get_json()["code"] == "not_found"
    assert stored(app, bucket["id"]).settings == before.settings


@pytest.mark.server
def test_patching_the_right_secret_makes_the_test_pass_at_once(
    app: Flask, as_alice: Call, moto_server: Any, s3_bucket: str, moto_s3_keys: dict[str, str]
) -> None:
    app.config["ENDPOINT_ALLOW_LIST"] = ["127.0.0.0/8"]
    keys = moto_s3_keys
    body = {
        "kind": "s3",
        "bucket": s3_bucket,
        "endpoint_url": moto_server.url,
        "path_style": True,
        "access_key_id": keys["access_key_id"],
        "secret_access_key": "wrong",
    }
    added = as_alice("post", "/api/v1/destinations", json=body).get_json()
    assert as_alice("post", f"/api/v1/destinations/{added['id']}/test").get_json()["ok"] is False
    fixed = as_alice(
        "patch", f"/api/v1/destinations/{added['id']}", json={"secret_access_key": keys["secret_access_key"]}
    )
    assert fixed.status_code == 200
    answer = fixed.get_json()
    assert (
        answer["ok"] is True and answer["destination"]["status"] == "ok" and answer["destination"]["id"] == added["id"]
    )
    assert keys["secret_access_key"] not in fixed.get_data(as_text=True)
