"""Settings → Destinations → change one in place: same rules as adding, same id, retention and history kept."""

from __future__ import annotations

from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from werkzeug.test import TestResponse

from jobs import run_lifecycle
from jobs.destination_backends import Registry
from store import DeliveryAttempt, Destination, get_db
from store.base import utcnow
from tests.web.conftest import csrf_token
from tests.web.test_destinations_page import PAGE, ROLE, post, rows, s3_form

OLD_SECRET = "wJalrXUtnFEMI/K7MDENG"


def edit(client: FlaskClient, destination_id: int, **fields: Any) -> TestResponse:
    """Post the edit form of one destination (its fields carry the `edit-<id>-` prefix)."""
    prefix = f"edit-{destination_id}-"
    data = {prefix + name: value for name, value in fields.items() if value is not None}
    data[prefix + "csrf_token"] = csrf_token(client, PAGE)
    return client.post(f"{PAGE}/{destination_id}/edit", data=data)


def bucket_fields(**fields: Any) -> dict[str, Any]:
    """The edit form as the page fills it for the bucket `s3_form` adds: key fields empty."""
    form = {"region": "us-east-1", "bucket": "my-archives", "prefix": "lifeboat/alice", "auth": "keys"}
    return {**form, **fields}


def secrets(app: Flask, row: Destination) -> dict[str, str]:
    return Registry(dict(app.config)).decrypt(row)


@pytest.fixture
def bucket(app: Flask, signed_in: FlaskClient, alice_user: int) -> Destination:
    """Alice's bucket with a retention policy, an error status and one delivery attempt."""
    assert post(signed_in, "/s3", **s3_form()).status_code == 302
    (row,) = rows(app, alice_user)
    with get_db(app).session(write=True) as session:
        stored = session.get(Destination, row.id)
        assert stored is not None
        stored.settings = {**stored.settings, "retention_keep": 7}
        stored.status, stored.status_message = "error", "Enter the secret access key again."
        run, _ = run_lifecycle.request_run(session, alice_user, "manual", now=utcnow())
        session.add(DeliveryAttempt(run_id=run.id, destination_id=row.id, outcome="permanent", message="refused"))
    (row,) = rows(app, alice_user)
    return row


def test_the_page_offers_each_destination_an_edit_form_without_its_secrets(
    signed_in: FlaskClient, bucket: Destination
) -> None:
    page = signed_in.get(PAGE).get_data(as_text=True)
    assert f'action="{PAGE}/{bucket.id}/edit"' in page and "Change the bucket or replace its keys" in page
    assert f'name="edit-{bucket.id}-bucket"' in page and 'value="my-archives"' in page
    assert OLD_SECRET not in page and "AKIAEXAMPLEKEY12WXYZ" not in page


def test_editing_keeps_the_id_retention_and_history_and_a_blank_secret_keeps_the_stored_one(
    app: Flask, signed_in: FlaskClient, alice_user: int, bucket: Destination
) -> None:
    saved = edit(signed_in, bucket.id, **bucket_fields(bucket="other-archives", prefix="backups"))
    page = saved.get_data(as_text=True)
    assert saved.status_code == 200 and "your changes are saved, and Lifeboat tested it again." in page
    assert 'id="test-result"' in page and "Test failed: " in page  # no such AWS bucket here: said in words
    assert OLD_SECRET not in page
    (row,) = rows(app, alice_user)
    assert row.id == bucket.id and row.label == "s3://other-archives"
    assert row.settings["bucket"] == "other-archives" and row.settings["prefix"] == "backups"
    assert row.settings["retention_keep"] == 7
    assert secrets(app, row) == {"access_key_id": "AKIAEXAMPLEKEY12WXYZ", "secret_access_key": OLD_SECRET}
    assert OLD_SECRET not in row.settings_json
    with get_db(app).session() as session:
        assert session.query(DeliveryAttempt).filter_by(destination_id=bucket.id).count() == 1


def test_new_keys_replace_the_stored_ones_encrypted(
    app: Flask, signed_in: FlaskClient, alice_user: int, bucket: Destination
) -> None:
    new = {"access_key_id": "AKIANEWKEYEXAMPLE123", "secret_access_key": "the-new-secret"}
    assert edit(signed_in, bucket.id, **bucket_fields(**new)).status_code == 200
    (row,) = rows(app, alice_user)
    assert secrets(app, row) == new and "the-new-secret" not in (row.secret_token or "") + row.settings_json


def test_both_new_keys_replace_keys_that_can_no_longer_be_read(
    app: Flask, signed_in: FlaskClient, alice_user: int, bucket: Destination
) -> None:
    with get_db(app).session(write=True) as session:
        stored = session.get(Destination, bucket.id)
        assert stored is not None
        stored.secret_token = "sealed under an encryption key this server no longer has"
    only_secret = edit(signed_in, bucket.id, **bucket_fields(secret_access_key="the-new-secret"))
    assert only_secret.status_code == 409 and 'id="edit-error"' in only_secret.get_data(as_text=True)
    new = {"access_key_id": "AKIANEWKEYEXAMPLE123", "secret_access_key": "the-new-secret"}
    assert edit(signed_in, bucket.id, **bucket_fields(**new)).status_code == 200
    (row,) = rows(app, alice_user)
    assert secrets(app, row) == new


def test_switching_to_a_role_drops_the_keys_and_back_needs_new_keys(
    app: Flask, signed_in: FlaskClient, alice_user: int, bucket: Destination
) -> None:
    assert edit(signed_in, bucket.id, **bucket_fields(auth="role", role_arn=ROLE)).status_code == 200
    (row,) = rows(app, alice_user)
    assert row.settings["role_arn"] == ROLE and row.settings["external_id"] and row.secret_token is None
    refused = edit(signed_in, bucket.id, **bucket_fields(role_arn=ROLE))
    assert refused.status_code == 400 and f'id="edit-{bucket.id}-access_key_id-error"' in refused.get_data(as_text=True)
    (unchanged,) = rows(app, alice_user)
    assert unchanged.settings == row.settings


def test_bad_input_gives_the_add_forms_errors_and_changes_nothing(
    app: Flask, signed_in: FlaskClient, alice_user: int, bucket: Destination
) -> None:
    refused = edit(
        signed_in, bucket.id, **bucket_fields(bucket="x", region="EU WEST", secret_access_key="typed-secret")
    )
    page = refused.get_data(as_text=True)
    assert refused.status_code == 400 and 'id="edit-error"' in page
    assert f'id="edit-{bucket.id}-bucket-error">Enter the bucket name' in page
    assert f'id="edit-{bucket.id}-region-error">Enter a region' in page
    assert "typed-secret" not in page
    private = edit(signed_in, bucket.id, **bucket_fields(endpoint_url="http://10.0.0.7:9000"))
    assert private.status_code == 400 and "10.0.0.7" in private.get_data(as_text=True)
    (row,) = rows(app, alice_user)
    assert (row.settings, row.secret_token, row.status) == (bucket.settings, bucket.secret_token, "error")


def test_moving_a_destination_into_another_ones_folder_is_refused_and_changes_nothing(
    app: Flask, signed_in: FlaskClient, alice_user: int, bucket: Destination
) -> None:
    assert post(signed_in, "/s3", **s3_form(prefix="lifeboat/other")).status_code == 302
    other = rows(app, alice_user)[1]
    refused = edit(signed_in, other.id, **bucket_fields(prefix="/lifeboat/alice/"))  # the first one's folder
    assert refused.status_code == 400 and "You already have this destination" in refused.get_data(as_text=True)
    first, second = rows(app, alice_user)
    assert (first.settings, second.settings) == (bucket.settings, other.settings)
    assert edit(signed_in, other.id, **bucket_fields(prefix="lifeboat/third")).status_code == 200  # a free one


def test_twins_added_before_the_same_place_rule_can_still_have_their_keys_fixed(
    app: Flask, signed_in: FlaskClient, alice_user: int, bucket: Destination
) -> None:
    with get_db(app).session(write=True) as session:  # a second one in the same folder, as the page once allowed
        twin = Destination(user_id=alice_user, kind="s3", label="twin", enabled=True, settings=dict(bucket.settings))
        twin.secret_token = bucket.secret_token
        session.add(twin)
    twin_row = rows(app, alice_user)[1]
    new = {"access_key_id": "AKIANEWKEYEXAMPLE123", "secret_access_key": "the-new-secret"}
    assert edit(signed_in, twin_row.id, **bucket_fields(**new)).status_code == 200  # its place did not move
    assert secrets(app, rows(app, alice_user)[1]) == new


def test_an_email_destination_changes_its_address_under_the_add_rules(
    app: Flask, signed_in: FlaskClient, alice_user: int
) -> None:
    assert post(signed_in, "/email", to="alice@example.com").status_code == 302
    (row,) = rows(app, alice_user)
    refused = edit(signed_in, row.id, to="not an address")
    assert refused.status_code == 400 and f'id="edit-{row.id}-to-error"' in refused.get_data(as_text=True)
    saved = edit(signed_in, row.id, to="Alice.Backup@Example.com")
    assert saved.status_code == 200 and 'id="test-result"' in saved.get_data(as_text=True)
    (changed,) = rows(app, alice_user)
    assert changed.id == row.id and changed.settings == {"to": "alice.backup@example.com"}
    assert changed.label == "email alice.backup@example.com"


def test_edit_needs_csrf_and_another_users_destination_is_404(
    app: Flask, signed_in: FlaskClient, alice_user: int, bucket: Destination, bobs_destination: int
) -> None:
    no_token = signed_in.post(f"{PAGE}/{bucket.id}/edit", data={f"edit-{bucket.id}-bucket": "other"})
    assert no_token.status_code == 400
    theirs_id = bobs_destination
    assert edit(signed_in, theirs_id, to="alice@example.com").status_code == 404
    assert edit(signed_in, 2**70, to="alice@example.com").status_code == 404
    with get_db(app).session() as session:
        kept = session.get(Destination, theirs_id)
        assert kept is not None and kept.settings == {"to": "bob@example.com"}
    (row,) = rows(app, alice_user)
    assert row.settings == bucket.settings


@pytest.mark.server
def test_fixing_a_wrong_secret_makes_the_test_pass_at_once(
    app: Flask, signed_in: FlaskClient, alice_user: int, moto_server: Any, s3_bucket: str, moto_s3_keys: dict[str, str]
) -> None:
    app.config["ENDPOINT_ALLOW_LIST"] = ["127.0.0.0/8"]  # moto listens on loopback
    keys = moto_s3_keys
    fields = {"endpoint_url": moto_server.url, "bucket": s3_bucket, "prefix": "lb", "path_style": "y"}
    assert post(signed_in, "/s3", **s3_form(**fields, **{**keys, "secret_access_key": "wrong"})).status_code == 302
    (row,) = rows(app, alice_user)
    assert "Test failed:" in post(signed_in, f"/{row.id}/test").get_data(as_text=True)

    fixed = edit(signed_in, row.id, **bucket_fields(**fields, secret_access_key=keys["secret_access_key"]))
    page = fixed.get_data(as_text=True)
    assert "Test passed: Wrote, read back and deleted a test object" in page
    assert keys["secret_access_key"] not in page
    (stored,) = rows(app, alice_user)
    assert stored.id == row.id and stored.status == "ok" and secrets(app, stored) == keys
