"""Pruning after a real run: the archive is delivered to moto, then old ones go by the destination's policy.

The outcome is a line in the run's history (the run page and its JSON show
it), and nothing that goes wrong while pruning fails the delivery.
"""

from __future__ import annotations

import datetime as dt

import pytest
from flask import Flask
from sqlalchemy import select

from account.records import Account
from delivery.retention_policy import RetentionPolicy
from delivery.s3 import manifest_key
from jobs import api_tokens, get_context, run_lifecycle
from jobs.bucket_retention import name_prefix, run_retention, set_retention, verified_keys
from jobs.destination_backends import Registry
from jobs.destination_setup import add_destination
from jobs.execute import execute_run
from store import Destination, ExportRun, RunEvent, RunState, User
from store.accounts import replace_account
from store.base import utcnow
from tests.servers.s3 import FaultProxy, MotoS3, s3_error

pytestmark = pytest.mark.server

FOREIGN = ["lifeboat/notes.txt", "lifeboat/2026/01/lifeboat-bob-20260101T030000Z.zip"]


def old_archives(moto: MotoS3, bucket: str, count: int) -> list[str]:
    """`count` of alice's daily archives from January, each with its manifest, and two objects not hers."""
    client = moto.client()
    keys = [f"lifeboat/2026/01/lifeboat-alice-202601{day:02d}T030000Z.zip" for day in range(1, count + 1)]
    for key in [*keys, *FOREIGN]:
        client.put_object(Bucket=bucket, Key=key, Body=b"old")
    for key in keys:
        client.put_object(Bucket=bucket, Key=manifest_key(key), Body=b"{}")
    return keys


def setup_run(app: Flask, alice: Account, endpoint: str, bucket: str, **retention: int) -> tuple[int, int, str]:
    ctx = get_context(app)
    with ctx.db.session(write=True) as session:
        user = replace_account(session, alice)
        user.timezone = "Europe/Berlin"
        settings = {
            "bucket": bucket,
            "endpoint_url": endpoint,
            "path_style": True,
            "access_key_id": "AKIALIFEBOATTEST0001",
            "secret_access_key": "secret-key-for-the-test",
            **retention,
        }
        row = add_destination(session, Registry(dict(app.config)), user, "s3", "bucket", settings)
        run, _ = run_lifecycle.request_run(session, user.id, "manual", now=utcnow())
        return user.id, row.id, run.id


def bucket_keys(moto: MotoS3, bucket: str) -> set[str]:
    return {o["Key"] for o in moto.client().list_objects_v2(Bucket=bucket).get("Contents", [])}


def retention_lines(app: Flask, run_id: str) -> list[tuple[str, str]]:
    with get_context(app).db.session() as session:
        events = session.scalars(select(RunEvent).where(RunEvent.run_id == run_id, RunEvent.kind == "retention"))
        return [(e.level, e.message) for e in events]


def test_after_a_delivery_old_archives_go_by_the_policy_and_the_run_says_so(
    bucket_app: Flask, alice: Account, moto_server: MotoS3, s3_bucket: str
) -> None:
    old = old_archives(moto_server, s3_bucket, 10)
    user_id, _, run_id = setup_run(bucket_app, alice, moto_server.url, s3_bucket, retention_keep=3)
    assert execute_run(get_context(bucket_app), run_id, "w") == RunState.DELIVERED
    with get_context(bucket_app).db.session() as session:
        run = session.get(ExportRun, run_id)
        assert run is not None and run.archive is not None
        new_key = f"lifeboat/{run.archive.created_at:%Y/%m}/{run.archive.filename}"
        assert verified_keys(session, user_id, s3_bucket) == {new_key}
    survivors = [new_key, old[-1], old[-2]]
    assert bucket_keys(moto_server, s3_bucket) == {*survivors, *map(manifest_key, survivors), *FOREIGN}
    assert retention_lines(bucket_app, run_id) == [("info", "Retention: deleted 8 old archive(s), kept 3.")]
    # The user sees it in the run's detail (the API's, as the page's, is the run's history).
    with get_context(bucket_app).db.session(write=True) as session:
        token = api_tokens.create_token(session, user_id, "t", days=1, now=utcnow()).secret
    detail = bucket_app.test_client().get(f"/api/v1/runs/{run_id}", headers={"Authorization": f"Bearer {token}"})
    assert {"level": "info", "kind": "retention", "message": "Retention: deleted 8 old archive(s), kept 3."} in [
        {k: e[k] for k in ("level", "kind", "message")} for e in detail.get_json()["history"]
    ]


def test_a_pruning_failure_is_a_warning_and_the_run_is_still_delivered(
    bucket_app: Flask, alice: Account, moto_server: MotoS3, s3_bucket: str, fault_proxy: FaultProxy
) -> None:
    old = old_archives(moto_server, s3_bucket, 3)
    fault_proxy.add(s3_error(403, "AccessDenied", "Access Denied"), when=lambda seen: "list-type" in seen.query)
    _, _, run_id = setup_run(bucket_app, alice, fault_proxy.url, s3_bucket, retention_keep=1)
    assert execute_run(get_context(bucket_app), run_id, "w") == RunState.DELIVERED
    [(level, message)] = retention_lines(bucket_app, run_id)
    assert level == "warning"
    assert message.startswith("Retention: old archives were not pruned this time: Access denied for s3:ListBucket")
    assert set(old) <= bucket_keys(moto_server, s3_bucket)


def test_without_a_policy_nothing_is_listed_or_deleted(
    bucket_app: Flask, alice: Account, moto_server: MotoS3, s3_bucket: str
) -> None:
    old = old_archives(moto_server, s3_bucket, 3)
    _, _, run_id = setup_run(bucket_app, alice, moto_server.url, s3_bucket)
    assert execute_run(get_context(bucket_app), run_id, "w") == RunState.DELIVERED
    assert set(old) <= bucket_keys(moto_server, s3_bucket) and retention_lines(bucket_app, run_id) == []


def test_a_dry_run_of_a_policy_not_yet_saved_deletes_nothing_and_saving_it_keeps_the_other_settings(
    bucket_app: Flask, alice: Account, moto_server: MotoS3, s3_bucket: str
) -> None:
    _, destination_id, run_id = setup_run(bucket_app, alice, moto_server.url, s3_bucket)
    ctx = get_context(bucket_app)
    assert execute_run(ctx, run_id, "w") == RunState.DELIVERED
    old = old_archives(moto_server, s3_bucket, 5)
    before = bucket_keys(moto_server, s3_bucket)
    registry = Registry(dict(bucket_app.config))
    with ctx.db.session() as session:
        user = session.get(User, 1)
        assert user is not None and name_prefix(user) == "lifeboat-alice-"
        user_id = user.id
    preview = run_retention(ctx.db, registry, destination_id, user_id, policy=RetentionPolicy(last=2))
    assert preview is not None and bucket_keys(moto_server, s3_bucket) == before
    assert [d.key for d in preview.report.plan.delete] == old[-2::-1]
    assert run_retention(ctx.db, registry, destination_id, user_id + 1, policy=RetentionPolicy(last=2)) is None
    with ctx.db.session(write=True) as session:
        row = set_retention(session, registry, user_id, destination_id, RetentionPolicy(daily=2, monthly=12))
        assert row is not None
    with ctx.db.session() as session:
        stored = session.get(Destination, destination_id)
        assert stored is not None
        assert stored.settings["bucket"] == s3_bucket and stored.settings["retention_monthly"] == 12
        assert "retention_keep" not in stored.settings
    pruned = run_retention(ctx.db, registry, destination_id, user_id, dry_run=False)
    assert pruned is not None and pruned.policy == RetentionPolicy(daily=2, monthly=12)
    # Kept: the run's archive (daily, monthly), 5 January (daily, monthly), 1 January (oldest: months left).
    assert sorted(pruned.report.deleted) == old[1:4]


def test_the_zone_of_the_account_counts_days(bucket_app: Flask, alice: Account) -> None:
    with get_context(bucket_app).db.session(write=True) as session:
        user = replace_account(session, alice)
        user.timezone = "Not/AZone"
        from jobs.bucket_retention import user_zone

        assert user_zone(user) == dt.UTC
