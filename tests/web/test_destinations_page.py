"""Settings → Destinations: list, add (S3, email), Test in words, remove; secrets never shown."""

from __future__ import annotations

import re
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from werkzeug.test import TestResponse

from jobs import run_lifecycle
from jobs.destination_backends import Registry
from jobs.destination_setup import external_id_for
from store import DeliveryAttempt, Destination, User, get_db
from store.base import utcnow
from tests.web.conftest import csrf_token

PAGE = "/settings/destinations"
ROLE = "arn:aws:iam::123456789012:role/lifeboat"


def post(client: FlaskClient, path: str, **form: Any) -> TestResponse:
    return client.post(PAGE + path, data={**form, "csrf_token": csrf_token(client, PAGE)})


def s3_form(**fields: Any) -> dict[str, Any]:
    form = {"region": "us-east-1", "bucket": "my-archives", "prefix": "lifeboat/alice", "auth": "keys", "save": "1"}
    form.update(access_key_id="AKIAEXAMPLEKEY12WXYZ", secret_access_key="wJalrXUtnFEMI/K7MDENG")
    return {**form, **fields}


def rows(app: Flask, user_id: int) -> list[Destination]:
    with get_db(app).session() as session:
        return list(session.query(Destination).filter_by(user_id=user_id).order_by(Destination.id))


def test_with_no_destinations_the_pages_say_download_only(signed_in: FlaskClient) -> None:
    page = signed_in.get(PAGE).get_data(as_text=True)
    assert 'id="download-only"' in page and "Download only." in page
    settings = signed_in.get("/settings").get_data(as_text=True)
    assert "Download only" in settings and f'href="{PAGE}"' in settings


def test_an_s3_bucket_is_added_with_its_key_masked_and_its_secret_never_shown(
    app: Flask, signed_in: FlaskClient, alice_user: int
) -> None:
    added = post(signed_in, "/s3", **s3_form())
    assert added.status_code == 302 and added.headers["Location"].endswith("#destination-1")
    page = signed_in.get(PAGE).get_data(as_text=True)
    assert "s3://my-archives/lifeboat/alice (AWS)" in page
    assert "access key AKIA…WXYZ (secret key stored encrypted)" in page
    assert "wJalrXUtnFEMI" not in page and "AKIAEXAMPLEKEY12WXYZ" not in page
    assert "Not tested yet" in page and "none yet" in page
    (row,) = rows(app, alice_user)
    assert row.secret_token and "wJalrXUtnFEMI" not in row.secret_token + row.settings_json
    assert "Each archive also goes to 1 place: s3://my-archives." in signed_in.get("/settings").get_data(as_text=True)


def test_a_bad_field_is_refused_next_to_it_and_the_secret_is_not_sent_back(
    app: Flask, signed_in: FlaskClient, alice_user: int
) -> None:
    refused = post(signed_in, "/s3", **s3_form(bucket="x", region="EU WEST"))
    page = refused.get_data(as_text=True)
    assert refused.status_code == 400
    assert 'id="bucket-error">Enter the bucket name' in page and 'id="region-error">Enter a region' in page
    assert "wJalrXUtnFEMI" not in page  # the password field is not filled in again
    assert rows(app, alice_user) == []


def test_a_form_posted_without_its_fields_is_refused_in_words_not_a_server_error(
    app: Flask, signed_in: FlaskClient, alice_user: int
) -> None:
    refused = post(signed_in, "/s3")
    assert refused.status_code == 400
    assert 'id="bucket-error">' in refused.get_data(as_text=True)
    assert rows(app, alice_user) == []


def test_a_private_endpoint_is_refused_in_words_when_saved(app: Flask, signed_in: FlaskClient, alice_user: int) -> None:
    refused = post(signed_in, "/s3", **s3_form(endpoint_url="http://10.0.0.7:9000"))
    assert refused.status_code == 400
    message = re.search(r'id="s3-error">([^<]+)<', refused.get_data(as_text=True))
    assert message and "The s3 destination is not valid:" in message.group(1) and "10.0.0.7" in message.group(1)
    assert rows(app, alice_user) == []


def test_show_policy_renders_the_least_privilege_policy_for_the_typed_bucket_and_saves_nothing(
    app: Flask, signed_in: FlaskClient, alice_user: int
) -> None:
    shown = post(signed_in, "/s3", **s3_form(save=None, show_policy="1", bucket="photos-bkt", prefix="/backups//me/"))
    page = shown.get_data(as_text=True)
    assert shown.status_code == 200 and "Least-privilege policy for photos-bkt" in page
    assert "arn:aws:s3:::photos-bkt/backups/me/*" in page and "s3:AbortMultipartUpload" in page
    assert rows(app, alice_user) == []


def test_a_role_is_saved_with_the_external_id_the_page_showed(
    app: Flask, signed_in: FlaskClient, alice_user: int
) -> None:
    page = signed_in.get(PAGE).get_data(as_text=True)
    shown = re.search(r'<code class="external-id" id="external-id">([^<]+)</code>', page)
    assert shown is not None
    with get_db(app).session() as session:
        user = session.get(User, alice_user)
        assert user is not None
        assert shown.group(1) == external_id_for(user, Registry(dict(app.config)).external_id_key)
    assert f'"sts:ExternalId": "{shown.group(1)}"' in page.replace("&#34;", '"')
    form = s3_form(auth="role", role_arn=ROLE)
    assert post(signed_in, "/s3", **form).status_code == 302
    (row,) = rows(app, alice_user)
    assert row.settings["external_id"] == shown.group(1) and row.secret_token is None  # keys not stored
    assert f"role {ROLE} with ExternalId {shown.group(1)}" in signed_in.get(PAGE).get_data(as_text=True)


def test_an_email_destination_defaults_to_the_account_address_and_refuses_a_bad_one(
    app: Flask, signed_in: FlaskClient, alice_user: int
) -> None:
    assert 'value="alice@example.com"' in signed_in.get(PAGE).get_data(as_text=True)
    refused = post(signed_in, "/email", to="not an address")
    assert refused.status_code == 400 and 'id="to-error"' in refused.get_data(as_text=True)
    assert post(signed_in, "/email", to="Alice@Example.com").status_code == 302
    (row,) = rows(app, alice_user)
    assert row.kind == "email" and row.settings == {"to": "alice@example.com"}


def test_an_email_address_mail_cannot_be_sent_to_is_refused_when_added_not_at_every_delivery(
    app: Flask, signed_in: FlaskClient, alice_user: int
) -> None:
    """A user trial: `ünïcødé@exämple.com` was added and passed "Test", then failed every export for good.

    Letters outside ASCII before the @ need SMTPUTF8, which the mail sender does not use; the
    form now says so at once. A non-ASCII domain is still fine (it is sent in its IDNA form).
    """
    refused = post(signed_in, "/email", to="jörg@example.com")
    page = refused.get_data(as_text=True)
    assert refused.status_code == 400 and 'id="to-error"' in page
    assert "Internationalized characters before the @-sign are not supported" in page
    assert rows(app, alice_user) == []
    assert post(signed_in, "/email", to="joerg@exämple.com").status_code == 302
    (row,) = rows(app, alice_user)
    assert row.settings == {"to": "joerg@exämple.com"}


def test_the_same_email_address_twice_is_refused_in_one_line_and_nothing_is_added(
    app: Flask, signed_in: FlaskClient, alice_user: int
) -> None:
    """A user trial added one address three times and would have had three emails per export."""
    assert post(signed_in, "/email", to="alice@example.com").status_code == 302
    again = post(signed_in, "/email", to="Alice@EXAMPLE.com")  # the same address, written otherwise
    assert again.status_code == 400
    assert "You already have this destination" in again.get_data(as_text=True)
    assert len(rows(app, alice_user)) == 1
    assert post(signed_in, "/email", to="bob@example.com").status_code == 302  # another address is fine
    assert len(rows(app, alice_user)) == 2


def test_the_same_bucket_and_folder_twice_is_refused_and_another_folder_is_fine(
    app: Flask, signed_in: FlaskClient, alice_user: int, moto_server: Any, s3_bucket: str, moto_s3_keys: dict[str, str]
) -> None:
    """Two destinations in one folder would get every archive twice and prune it by two retention policies."""
    app.config["ENDPOINT_ALLOW_LIST"] = ["127.0.0.0/8"]  # moto listens on loopback
    base = s3_form(endpoint_url=moto_server.url, bucket=s3_bucket, prefix="lb/alice", path_style="y", **moto_s3_keys)
    assert post(signed_in, "/s3", **base).status_code == 302
    again = post(signed_in, "/s3", **{**base, "prefix": "/lb/alice/", "endpoint_url": moto_server.url + "/"})
    assert again.status_code == 400
    assert "You already have this destination" in again.get_data(as_text=True)
    assert len(rows(app, alice_user)) == 1
    assert post(signed_in, "/s3", **{**base, "prefix": "lb/bob"}).status_code == 302  # another folder is fine
    assert len(rows(app, alice_user)) == 2


def test_the_last_delivery_attempt_is_shown_in_words(app: Flask, signed_in: FlaskClient, alice_user: int) -> None:
    post(signed_in, "/email", to="alice@example.com")
    (row,) = rows(app, alice_user)
    with get_db(app).session(write=True) as session:
        run, _ = run_lifecycle.request_run(session, alice_user, "manual", now=utcnow())
        session.add(
            DeliveryAttempt(
                run_id=run.id, destination_id=row.id, outcome="permanent", message="The mail server refused it."
            )
        )
    page = signed_in.get(PAGE).get_data(as_text=True)
    assert re.search(r"Failed,\s*<time datetime=\"[^\"]+\">[^<]+</time>: The mail server refused it\.", page)


def test_remove_needs_csrf_and_only_removes_your_own(
    app: Flask, signed_in: FlaskClient, alice_user: int, bobs_destination: int
) -> None:
    post(signed_in, "/email", to="alice@example.com")
    (row,) = rows(app, alice_user)
    assert signed_in.post(f"{PAGE}/{row.id}/remove").status_code == 400
    theirs_id = bobs_destination
    assert post(signed_in, f"/{theirs_id}/remove").status_code == 404
    assert post(signed_in, f"/{theirs_id}/test").status_code == 404
    assert post(signed_in, f"/{2**70}/test").status_code == 404
    removed = post(signed_in, f"/{row.id}/remove")
    assert removed.status_code == 302
    assert "removed. Archives already delivered there stay" in signed_in.get(PAGE).get_data(as_text=True)
    assert rows(app, alice_user) == []
    with get_db(app).session() as session:
        assert session.get(Destination, theirs_id) is not None


@pytest.mark.server
def test_test_reports_a_wrong_secret_and_a_missing_bucket_in_words_and_success_when_right(
    app: Flask, signed_in: FlaskClient, alice_user: int, moto_server: Any, s3_bucket: str, moto_s3_keys: dict[str, str]
) -> None:
    app.config["ENDPOINT_ALLOW_LIST"] = ["127.0.0.0/8"]  # moto listens on loopback
    keys = moto_s3_keys
    base = s3_form(endpoint_url=moto_server.url, bucket=s3_bucket, prefix="lb", path_style="y", **keys)
    for form in (
        {**base, "prefix": "lb-wrong-key", "secret_access_key": "wrong-secret"},
        {**base, "bucket": s3_bucket + "-missing"},
        base,
    ):
        assert post(signed_in, "/s3", **form).status_code == 302
    wrong, missing, right = rows(app, alice_user)

    tested = post(signed_in, f"/{wrong.id}/test").get_data(as_text=True)
    assert "Test failed:" in tested and "Enter the secret access key again." in tested
    tested = post(signed_in, f"/{missing.id}/test").get_data(as_text=True)
    assert f"The bucket &#39;{s3_bucket}-missing&#39; does not exist" in tested
    tested = post(signed_in, f"/{right.id}/test").get_data(as_text=True)
    assert "Test passed: Wrote, read back and deleted a test object" in tested
    assert tested.count('<span class="badge">Not working</span>') == 2  # the page shows the outcomes just written
    assert tested.count('<span class="badge">Working</span>') == 1
    assert keys["secret_access_key"] not in tested
    statuses = {row.id: row.status for row in rows(app, alice_user)}
    assert statuses == {wrong.id: "error", missing.id: "error", right.id: "ok"}
