"""Settings → Destinations: a bucket's retention policy chosen in the browser, shown in words, previewed (moto)."""

from __future__ import annotations

from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from werkzeug.test import TestResponse

from delivery.s3 import manifest_key
from store import Destination, get_db
from tests.servers.s3 import ADMIN_KEYS, MotoS3
from tests.web.conftest import csrf_token

PAGE = "/settings/destinations"
GFS = {"retention_keep": "3", "retention_daily": "7", "retention_weekly": "4", "retention_monthly": "12"}


def add_bucket(client: FlaskClient, **fields: Any) -> int:
    form = {"region": "us-east-1", "bucket": "my-archives", "prefix": "lifeboat", "auth": "keys", "save": "1"}
    form.update(access_key_id="AKIAEXAMPLEKEY12WXYZ", secret_access_key="wJalrXUtnFEMI/K7MDENG")
    form.update(fields)
    added = client.post(PAGE + "/s3", data={**form, "csrf_token": csrf_token(client, PAGE)})
    assert added.status_code == 302, added.get_data(as_text=True)
    return int(added.headers["Location"].rsplit("-", 1)[1])


def post_policy(client: FlaskClient, destination_id: int, button: str = "save", **counts: str) -> TestResponse:
    prefix = f"retention-{destination_id}-"
    data = {prefix + name: value for name, value in counts.items()}
    data[prefix + "csrf_token"] = csrf_token(client, PAGE)
    data[button] = "1"
    return client.post(f"{PAGE}/{destination_id}/retention", data=data)


def stored(app: Flask, destination_id: int) -> dict[str, Any]:
    with get_db(app).session() as session:
        row = session.get(Destination, destination_id)
        assert row is not None
        return {k: v for k, v in row.settings.items() if k.startswith("retention_")}


def test_a_new_bucket_keeps_everything_and_says_so(app: Flask, signed_in: FlaskClient) -> None:
    destination_id = add_bucket(signed_in)
    page = signed_in.get(PAGE).get_data(as_text=True)
    assert f'id="retention-summary-{destination_id}">Keeps every archive (no retention policy).' in page
    assert "Choose which archives stay in this bucket" in page
    assert stored(app, destination_id) == {}


def test_a_policy_is_saved_and_shown_in_plain_words(app: Flask, signed_in: FlaskClient) -> None:
    destination_id = add_bucket(signed_in)
    saved = post_policy(signed_in, destination_id, **GFS)
    assert saved.status_code == 302 and saved.headers["Location"].endswith(f"#destination-{destination_id}")
    words = (
        "Keeps the last 3, one a day for 7 days, one a week for 4 weeks and one a month for 12 months; "
        "never the newest verified archive."
    )
    page = signed_in.get(PAGE).get_data(as_text=True)
    assert f'id="retention-summary-{destination_id}">{words}' in page
    assert f'name="retention-{destination_id}-retention_monthly" type="number" value="12"' in page
    assert stored(app, destination_id) == {k: int(v) for k, v in GFS.items()}
    cleared = post_policy(signed_in, destination_id, retention_keep="", retention_daily="0")
    assert cleared.status_code == 302 and stored(app, destination_id) == {}


@pytest.mark.parametrize(
    "counts",
    [
        {"retention_keep": "abc"},
        {"retention_daily": "-1"},
        {"retention_weekly": "1.5"},
        {"retention_monthly": "9" * 40},
        {"retention_yearly": "10001"},
        {"retention_keep": "\x00"},
    ],
)
def test_hostile_counts_are_a_400_with_one_line_and_nothing_is_stored(
    app: Flask, signed_in: FlaskClient, counts: dict[str, str]
) -> None:
    destination_id = add_bucket(signed_in)
    post_policy(signed_in, destination_id, retention_keep="2")
    refused = post_policy(signed_in, destination_id, **counts)
    page = refused.get_data(as_text=True)
    assert refused.status_code == 400
    assert 'id="retention-error">Enter whole numbers from 0 (off) upwards, or leave a rule empty.' in page
    assert 'class="field-error"' in page
    assert stored(app, destination_id) == {"retention_keep": 2}


def test_without_its_csrf_token_or_for_someone_else_nothing_changes(app: Flask, signed_in: FlaskClient) -> None:
    destination_id = add_bucket(signed_in)
    bare = signed_in.post(
        f"{PAGE}/{destination_id}/retention", data={f"retention-{destination_id}-retention_keep": "1"}
    )
    assert bare.status_code == 400
    assert post_policy(signed_in, destination_id + 100, retention_keep="1").status_code == 404
    assert post_policy(signed_in, 2**70, retention_keep="1").status_code == 404
    assert stored(app, destination_id) == {}


def test_an_email_destination_has_no_retention(app: Flask, signed_in: FlaskClient) -> None:
    added = signed_in.post(PAGE + "/email", data={"to": "", "csrf_token": csrf_token(signed_in, PAGE)})
    destination_id = int(added.headers["Location"].rsplit("-", 1)[1])
    assert "Choose which archives stay" not in signed_in.get(PAGE).get_data(as_text=True)
    refused = post_policy(signed_in, destination_id, retention_keep="1")
    assert refused.status_code == 400
    assert "Retention applies to S3-compatible buckets only" in refused.get_data(as_text=True)


@pytest.mark.server
def test_show_what_it_would_delete_lists_the_bucket_and_deletes_nothing(
    app: Flask, signed_in: FlaskClient, moto_server: MotoS3, s3_bucket: str
) -> None:
    app.config["ENDPOINT_ALLOW_LIST"] = ["127.0.0.0/8"]
    destination_id = add_bucket(
        signed_in,
        endpoint_url=moto_server.url,
        bucket=s3_bucket,
        path_style="y",
        access_key_id=ADMIN_KEYS["aws_access_key_id"],
        secret_access_key=ADMIN_KEYS["aws_secret_access_key"],
    )
    client = moto_server.client()
    keys = [f"lifeboat/2026/03/lifeboat-alice-202603{day:02d}T030000Z.zip" for day in (1, 2, 3)]
    for key in [*keys, "lifeboat/mine.txt"]:
        client.put_object(Bucket=s3_bucket, Key=key, Body=b"x")
    client.put_object(Bucket=s3_bucket, Key=manifest_key(keys[0]), Body=b"{}")
    before = {o["Key"] for o in client.list_objects_v2(Bucket=s3_bucket)["Contents"]}
    shown = post_policy(signed_in, destination_id, button="preview", retention_keep="1")
    page = shown.get_data(as_text=True)
    assert shown.status_code == 200
    # None of them was delivered (so verified) by Lifeboat: nothing is deleted, and the page says why.
    assert "Retention: no verified archive yet: nothing is deleted (3 archive(s) in the bucket)." in page
    assert 'id="would-delete"' not in page and page.count("<code>lifeboat/2026/03/") == 3
    assert {o["Key"] for o in client.list_objects_v2(Bucket=s3_bucket)["Contents"]} == before
    assert stored(app, destination_id) == {}  # a preview saves nothing
