"""Retention through the API: choose a policy, see it in words, dry-run it against a real bucket (moto)."""

from __future__ import annotations

from typing import Any

import pytest
from flask import Flask

from delivery.retention_policy import NEWEST_VERIFIED
from delivery.s3 import manifest_key
from jobs import get_context
from jobs.execute import execute_run
from tests.api.conftest import Call
from tests.servers.s3 import ADMIN_KEYS, MotoS3

pytestmark = pytest.mark.server

GFS = {"retention_keep": 3, "retention_daily": 7, "retention_weekly": 4, "retention_monthly": 12}


@pytest.fixture
def bucket_destination(app: Flask, as_alice: Call, moto_server: MotoS3, s3_bucket: str) -> dict[str, Any]:
    app.config["ENDPOINT_ALLOW_LIST"] = ["127.0.0.0/8"]
    import jobs

    jobs.init_app(app)  # the runs' backends are built from the configuration: rebuild them
    body = {
        "kind": "s3",
        "bucket": s3_bucket,
        "endpoint_url": moto_server.url,
        "path_style": True,
        "access_key_id": ADMIN_KEYS["aws_access_key_id"],
        "secret_access_key": ADMIN_KEYS["aws_secret_access_key"],
    }
    added = as_alice("post", "/api/v1/destinations", json=body)
    assert added.status_code == 201, added.get_json()
    return dict(added.get_json())


def january(moto: MotoS3, bucket: str, days: int) -> list[str]:
    keys = [f"lifeboat/2026/01/lifeboat-alice-202601{day:02d}T030000Z.zip" for day in range(1, days + 1)]
    for key in keys:
        moto.client().put_object(Bucket=bucket, Key=key, Body=b"old")
        moto.client().put_object(Bucket=bucket, Key=manifest_key(key), Body=b"{}")
    return keys


def bucket_keys(moto: MotoS3, bucket: str) -> set[str]:
    return {o["Key"] for o in moto.client().list_objects_v2(Bucket=bucket).get("Contents", [])}


def test_a_new_bucket_keeps_everything_until_the_user_chooses(bucket_destination: dict[str, Any]) -> None:
    assert bucket_destination["retention_summary"] == "Keeps every archive (no retention policy)."
    assert not {k for k in bucket_destination["settings"] if k.startswith("retention_")}


def test_the_policy_is_saved_shown_in_words_and_replaced_whole(
    as_alice: Call, bucket_destination: dict[str, Any]
) -> None:
    path = f"/api/v1/destinations/{bucket_destination['id']}/retention"
    saved = as_alice("put", path, json=GFS)
    assert saved.status_code == 200, saved.get_json()
    body = saved.get_json()
    assert body["retention_summary"] == (
        "Keeps the last 3, one a day for 7 days, one a week for 4 weeks and one a month for 12 months; "
        "never the newest verified archive."
    )
    assert {k: v for k, v in body["settings"].items() if k.startswith("retention_")} == GFS
    assert body["settings"]["bucket"] == bucket_destination["settings"]["bucket"]
    listed = as_alice("get", "/api/v1/destinations").get_json()
    assert listed[0]["retention_summary"] == body["retention_summary"]
    replaced = as_alice("put", path, json={"retention_monthly": 6}).get_json()
    assert {k: v for k, v in replaced["settings"].items() if k.startswith("retention_")} == {"retention_monthly": 6}
    off = as_alice("put", path, json={}).get_json()
    assert off["retention_summary"] == "Keeps every archive (no retention policy)."


def test_a_dry_run_lists_what_would_go_and_why_the_rest_stays_and_deletes_nothing(
    app: Flask, as_alice: Call, bucket_destination: dict[str, Any], moto_server: MotoS3, s3_bucket: str
) -> None:
    run = as_alice("post", "/api/v1/exports").get_json()
    assert execute_run(get_context(app), run["id"], "w") == "delivered"  # a verified archive, in December
    old = january(moto_server, s3_bucket, 6)
    before = bucket_keys(moto_server, s3_bucket)
    path = f"/api/v1/destinations/{bucket_destination['id']}/retention/dry-run"
    answer = as_alice("post", path, json={"retention_keep": 2})
    assert answer.status_code == 200, answer.get_json()
    plan = answer.get_json()
    assert bucket_keys(moto_server, s3_bucket) == before
    assert plan["dry_run"] is True and plan["deleted"] == [] and plan["note"] is None
    assert [d["key"] for d in plan["delete"]] == old[-2::-1]
    assert [d["reasons"] for d in plan["keep"]] == [[NEWEST_VERIFIED, "last 2"], ["last 2"]]
    assert plan["keep"][0]["verified"] is True and plan["delete"][0]["verified"] is False
    assert plan["summary"] == "Retention dry run: would delete 5 of 7 archive(s), keeping 2."
    assert plan["policy"]["summary"] == "Keeps the last 2; never the newest verified archive."
    # With no counts, the saved policy is tried: none yet, so everything stays.
    saved = as_alice("post", path, json={}).get_json()
    assert saved["delete"] == [] and saved["note"] == "no retention policy: everything is kept"


@pytest.mark.parametrize(
    "body",
    [
        {"retention_keep": -1},
        {"retention_daily": "7"},
        {"retention_weekly": 1.5},
        {"retention_monthly": True},
        {"retention_yearly": 10**30},
        {"retention_hourly": 24},
        ["retention_keep"],
    ],
)
def test_hostile_policies_are_a_one_line_422(as_alice: Call, bucket_destination: dict[str, Any], body: Any) -> None:
    for path in ("retention", "retention/dry-run"):
        answer = as_alice(
            "post" if "dry" in path else "put", f"/api/v1/destinations/{bucket_destination['id']}/{path}", json=body
        )
        assert answer.status_code == 422, (path, body, answer.get_json())
        assert "\n" not in answer.get_json()["message"]


def test_email_destinations_and_other_users_destinations_are_refused(
    as_alice: Call, as_bob: Call, bucket_destination: dict[str, Any]
) -> None:
    email = as_alice("post", "/api/v1/destinations", json={"kind": "email", "to": "me@example.org"}).get_json()
    refused = as_alice("put", f"/api/v1/destinations/{email['id']}/retention", json={"retention_keep": 1})
    assert refused.status_code == 422 and "S3-compatible buckets only" in refused.get_json()["message"]
    assert as_alice("post", f"/api/v1/destinations/{email['id']}/retention/dry-run", json={}).status_code == 422
    theirs = bucket_destination["id"]
    assert as_bob("put", f"/api/v1/destinations/{theirs}/retention", json={"retention_keep": 1}).status_code == 404
    assert as_bob("post", f"/api/v1/destinations/{theirs}/retention/dry-run", json={}).status_code == 404
    assert as_alice("post", f"/api/v1/destinations/{2**70}/retention/dry-run", json={}).status_code == 404
