"""Scrub: each S3 destination's newest delivered archive checked again later, on moto's real server.

A real export is delivered first; then the object is left alone, deleted or
rewritten with moto's admin client, and `jobs.scrub` (and `lifeboat scrub`) must
say so in the destination's check row and the delivering run's history, on the
schedule (a look-up weekly, a full read monthly), once per destination however
many scrubbers run, and again soon after a scrubber dies mid-check.
"""

from __future__ import annotations

import datetime as dt

import pytest
from flask import Flask
from flask.testing import FlaskCliRunner
from sqlalchemy import select

import jobs
from account.records import Account
from delivery.s3.inspection import HEALTHY, MISSING, UNWRITABLE
from jobs import get_context, housekeeping, support_queue
from jobs.copy_checks import copy_checks
from jobs.destination_backends import Registry
from jobs.destination_setup import add_destination
from jobs.execute import execute_run
from jobs.scrub import CLAIM_HOLD, DEEP_EVERY, LIGHT_EVERY, PER_BUCKET, REFUSED_HERE, claim, due, scrub
from store import DeliveryAttempt, DestinationCheck, RunEvent, RunState, User
from tests.delivery.test_run_retention import setup_run
from tests.servers.s3 import FaultProxy, MotoS3, s3_error

pytestmark = pytest.mark.server


def delivered(app: Flask, alice: Account, moto: MotoS3 | FaultProxy, bucket: str) -> tuple[int, str, str]:
    """alice's bucket (reached through `moto`, or a proxy in front of it) and one delivered export.

    Returns (destination id, run id, object key).
    """
    _, destination_id, run_id = setup_run(app, alice, moto.url, bucket)
    assert execute_run(get_context(app), run_id, "w") == RunState.DELIVERED
    with get_context(app).db.session() as session:
        key = session.scalars(select(DeliveryAttempt.object_key).where(DeliveryAttempt.run_id == run_id)).one()
    assert key is not None
    return destination_id, run_id, key


def scrub_lines(app: Flask, run_id: str) -> list[tuple[str, str]]:
    with get_context(app).db.session() as session:
        events = session.scalars(
            select(RunEvent).where(RunEvent.run_id == run_id, RunEvent.kind == "scrub").order_by(RunEvent.id)
        )
        return [(e.level, e.message) for e in events]


def checked(app: Flask, destination_id: int) -> DestinationCheck:
    with get_context(app).db.session() as session:
        row = session.get(DestinationCheck, destination_id)
        assert row is not None
        return row


def test_a_healthy_copy_is_read_in_full_first_then_looked_up_weekly_and_read_again_monthly(
    bucket_app: Flask, alice: Account, moto_server: MotoS3, s3_bucket: str
) -> None:
    destination_id, run_id, key = delivered(bucket_app, alice, moto_server, s3_bucket)
    ctx = get_context(bucket_app)
    start = dt.datetime.now(dt.UTC)
    (first,) = scrub(ctx, now=start)
    assert (first.state, first.deep) == (HEALTHY, True)
    assert scrub(ctx, now=start + dt.timedelta(days=1)) == []  # not due yet
    (weekly,) = scrub(ctx, now=start + LIGHT_EVERY + dt.timedelta(minutes=1))
    assert (weekly.state, weekly.deep) == (HEALTHY, False)
    later = start + DEEP_EVERY + dt.timedelta(days=1)
    (monthly,) = scrub(ctx, now=later)
    assert monthly.deep
    row = checked(bucket_app, destination_id)
    assert (row.state, row.object_key, row.checked_at, row.deep_checked_at) == (HEALTHY, key, later, later)
    lines = scrub_lines(bucket_app, run_id)
    assert [level for level, _ in lines] == ["info"] * 3
    assert lines[0][1].startswith("Checked again (read in full): ") and "size and SHA-256 as at delivery" in lines[0][1]
    assert lines[1][1].startswith("Checked again (looked up): ")


def test_a_deleted_copy_is_a_warning_in_the_runs_history_and_the_command_exits_1(
    bucket_app: Flask, alice: Account, moto_server: MotoS3, s3_bucket: str, runner: FlaskCliRunner
) -> None:
    destination_id, run_id, key = delivered(bucket_app, alice, moto_server, s3_bucket)
    moto_server.client().delete_object(Bucket=s3_bucket, Key=key)
    result = runner.invoke(args=["scrub", "alice@example.com", "--light"])
    assert result.exit_code == 1, result.output
    assert "MISSING" in result.output and "0 of 1 healthy." in result.output and "Traceback" not in result.output
    assert checked(bucket_app, destination_id).state == MISSING
    (level, line), told = scrub_lines(bucket_app, run_id)
    assert level == "warning" and f"s3://{s3_bucket}/{key} is gone" in line
    assert told == ("warning", "Could not be emailed (no mail server, or it refused).")  # none set up in tests
    unknown = runner.invoke(args=["scrub", "nobody@example.com"])
    assert unknown.exit_code != 0 and unknown.output.count("\n") == 1 and "No user" in unknown.output


def test_scrub_matches_the_address_in_any_letter_case_as_the_user_lookup_does(
    bucket_app: Flask, alice: Account, moto_server: MotoS3, s3_bucket: str, runner: FlaskCliRunner
) -> None:
    destination_id, _, _ = delivered(bucket_app, alice, moto_server, s3_bucket)
    result = runner.invoke(args=["scrub", "ALICE@Example.com", "--light"])
    assert result.exit_code == 0, result.output
    assert "1 of 1 healthy." in result.output and f"destination {destination_id} " in result.output
    assert checked(bucket_app, destination_id).state == HEALTHY


def test_scrub_of_a_user_without_a_delivered_s3_archive_does_not_say_due(
    bucket_app: Flask, alice: Account, runner: FlaskCliRunner
) -> None:
    with get_context(bucket_app).db.session(write=True) as session:
        session.add(User(email="carol@example.com"))
    result = runner.invoke(args=["scrub", "carol@example.com"])
    assert result.exit_code == 0, result.output
    assert result.output == "Nothing to check: carol@example.com has no S3 destination with a delivered archive.\n"


def test_two_scrubbers_check_a_destination_once_and_a_dead_ones_claim_falls_due_again(
    bucket_app: Flask, alice: Account, moto_server: MotoS3, s3_bucket: str
) -> None:
    delivered(bucket_app, alice, moto_server, s3_bucket)
    ctx = get_context(bucket_app)
    now = dt.datetime.now(dt.UTC)
    with ctx.db.session() as session:
        (mine,) = due(session, now=now)
        (theirs,) = due(session, now=now)
    assert [claim(ctx.db, mine, now=now), claim(ctx.db, theirs, now=now)] == [True, False]
    # The winner dies before writing its finding: nobody takes it until the hold ends, then somebody does.
    with ctx.db.session() as session:
        assert due(session, now=now + CLAIM_HOLD - dt.timedelta(minutes=1)) == []
        (again,) = due(session, now=now + CLAIM_HOLD + dt.timedelta(minutes=1))
    assert claim(ctx.db, again, now=now + CLAIM_HOLD + dt.timedelta(minutes=1))


def test_one_bucket_gets_at_most_its_share_of_a_scrub(
    bucket_app: Flask, alice: Account, moto_server: MotoS3, s3_bucket: str
) -> None:
    _, run_id, key = delivered(bucket_app, alice, moto_server, s3_bucket)
    ctx, registry = get_context(bucket_app), Registry(dict(bucket_app.config))
    with ctx.db.session(write=True) as session:
        user = session.scalars(select(User)).one()
        settings = {"bucket": s3_bucket, "endpoint_url": moto_server.url, "path_style": True}
        secrets = {"access_key_id": "AKIALIFEBOATTEST0001", "secret_access_key": "secret-key-for-the-test"}
        for n in range(PER_BUCKET + 2):  # more destinations in the same bucket, each with a delivery on record
            folder = {"prefix": f"folder-{n}"}  # one folder each: the same place twice is refused
            row = add_destination(session, registry, user, "s3", f"same bucket {n}", {**settings, **folder, **secrets})
            session.flush()
            attempt = DeliveryAttempt(run_id=run_id, destination_id=row.id, outcome="delivered", message="ok")
            attempt.object_key = key
            session.add(attempt)
    with ctx.db.session() as session:
        picked = due(session, now=dt.datetime.now(dt.UTC))
    assert len(picked) == PER_BUCKET


def test_housekeeping_scrubs_what_is_due_and_metrics_count_the_findings(
    bucket_app: Flask, alice: Account, moto_server: MotoS3, s3_bucket: str
) -> None:
    _, _, key = delivered(bucket_app, alice, moto_server, s3_bucket)
    moto_server.client().put_object(Bucket=s3_bucket, Key=key, Body=b"not the archive")
    ctx = get_context(bucket_app)
    now = dt.datetime.now(dt.UTC)
    assert housekeeping.run_all(ctx, now=now)["scrubbed"] == 1
    assert housekeeping.run_all(ctx, now=now + dt.timedelta(minutes=10))["scrubbed"] == 0  # checked: not due
    scraped = bucket_app.test_client().get("/metrics", environ_base={"REMOTE_ADDR": "127.0.0.1"}).get_data(as_text=True)
    assert 'lifeboat_scrubbed_destinations{state="changed"} 1.0' in scraped
    assert 'lifeboat_scrubbed_destinations{state="healthy"} 0.0' in scraped
    assert "lifeboat_scrub_oldest_check_age_seconds" in scraped


def test_a_copy_that_turns_bad_is_emailed_once_and_listed_for_support_until_it_is_healthy_again(
    bucket_app: Flask, alice: Account, moto_server: MotoS3, s3_bucket: str
) -> None:
    _, run_id, key = delivered(bucket_app, alice, moto_server, s3_bucket)
    ctx = get_context(bucket_app)
    sent: list[tuple[str, str, str]] = []
    ctx.send_notice = lambda to, subject, text: sent.append((to, subject, text))
    client = moto_server.client()
    original = client.get_object(Bucket=s3_bucket, Key=key)["Body"].read()
    client.delete_object(Bucket=s3_bucket, Key=key)
    now = dt.datetime.now(dt.UTC)
    scrub(ctx, now=now)
    scrub(ctx, now=now + LIGHT_EVERY + dt.timedelta(minutes=1))  # still missing: no second mail
    ((to, subject, text),) = sent
    assert to == "alice@example.com" and subject == f"Lifeboat: your archive in bucket is {MISSING}"
    assert "export now" in text.lower() and "/settings/destinations" in text
    assert ("warning", "Emailed to the account's address.") in scrub_lines(bucket_app, run_id)
    with ctx.db.session() as session:
        items = support_queue.queue(session, now=now, kinds=("copy_damaged",)).items
    assert [(i.kind, i.run_id) for i in items] == [("copy_damaged", run_id)] and "is gone" in items[0].message
    client.put_object(Bucket=s3_bucket, Key=key, Body=original)  # the user (or support) puts it back
    (again,) = scrub(ctx, email="alice@example.com")
    assert again.state == HEALTHY and len(sent) == 1
    with ctx.db.session() as session:
        assert support_queue.queue(session, now=now, kinds=("copy_damaged",)).items == []


def test_a_bucket_that_refuses_new_objects_is_unwritable_while_the_copy_is_fine_and_the_user_is_told(
    bucket_app: Flask, alice: Account, fault_proxy: FaultProxy, moto_server: MotoS3, s3_bucket: str
) -> None:
    _, run_id, key = delivered(bucket_app, alice, fault_proxy, s3_bucket)
    ctx = get_context(bucket_app)
    sent: list[tuple[str, str, str]] = []
    ctx.send_notice = lambda to, subject, text: sent.append((to, subject, text))
    (healthy,) = scrub(ctx, email="alice@example.com")
    assert healthy.state == HEALTHY and sent == []
    # The key lost s3:PutObject: reads still work, every write is refused.
    fault_proxy.add(s3_error(403, "AccessDenied", "Access Denied"), when=lambda seen: seen.method == "PUT", times=None)
    (refused,) = scrub(ctx, email="alice@example.com")
    assert refused.state == UNWRITABLE and "no longer accepts new archives" in refused.detail
    ((to, subject, text),) = sent
    assert to == "alice@example.com" and subject == "Lifeboat: bucket no longer accepts new archives"
    assert any(level == "warning" and "UNWRITABLE" in line for level, line in scrub_lines(bucket_app, run_id))
    assert "still there, but the bucket refused a new object" in text and "s3:PutObject" in text
    assert moto_server.client().head_object(Bucket=s3_bucket, Key=key)["ContentLength"] > 0  # the copy is untouched
    probes = [
        o["Key"] for o in moto_server.client().list_objects_v2(Bucket=s3_bucket)["Contents"] if "test" in o["Key"]
    ]
    assert probes == []  # the healthy check's probe was deleted again
    fault_proxy.clear()
    (again,) = scrub(ctx, email="alice@example.com")
    assert again.state == HEALTHY and len(sent) == 1


def test_a_check_this_processs_settings_refuse_is_told_to_the_operator_and_leaves_the_users_state_alone(
    bucket_app: Flask, alice: Account, moto_server: MotoS3, s3_bucket: str, runner: FlaskCliRunner
) -> None:
    """`lifeboat scrub` without the server's allow list stored `error` on the user's destination (user trial)."""
    destination_id, run_id, _ = delivered(bucket_app, alice, moto_server, s3_bucket)
    assert runner.invoke(args=["scrub", "alice@example.com", "--light"]).exit_code == 0
    before = checked(bucket_app, destination_id)
    lines = scrub_lines(bucket_app, run_id)
    bucket_app.config["ENDPOINT_ALLOW_LIST"] = []  # an operator's shell without the server's settings
    jobs.init_app(bucket_app)
    result = runner.invoke(args=["scrub", "alice@example.com", "--deep"])
    assert result.exit_code == 1
    assert result.stderr == (
        f"destination {destination_id} (user 1): Not checked, and nothing recorded for the user: Refusing to connect "
        "to 127.0.0.1: it is a loopback address, which this process's LIFEBOAT_ENDPOINT_ALLOW_LIST does not allow. "
        "Run scrub with the server's settings (LIFEBOAT_ENDPOINT_ALLOW_LIST as the server has it).\n"
    )
    assert result.stdout == "0 of 1 healthy; 1 not checked (this process's settings, above).\n"
    after = checked(bucket_app, destination_id)
    assert (after.state, after.detail, after.since, after.deep_checked_at) == (
        HEALTHY, before.detail, before.since, before.deep_checked_at
    )  # fmt: skip
    assert scrub_lines(bucket_app, run_id) == lines  # nothing in the user's History


def test_a_first_check_refused_here_leaves_no_check_for_the_user_to_see(
    bucket_app: Flask, alice: Account, moto_server: MotoS3, s3_bucket: str
) -> None:
    delivered(bucket_app, alice, moto_server, s3_bucket)
    bucket_app.config["ENDPOINT_ALLOW_LIST"] = []
    jobs.init_app(bucket_app)
    ctx = get_context(bucket_app)
    (finding,) = scrub(ctx)
    assert finding.state == REFUSED_HERE
    with ctx.db.session() as session:
        user = session.scalars(select(User)).one()
        assert copy_checks(session, user.id) == {}  # the claim's "checking" row is shown nowhere
