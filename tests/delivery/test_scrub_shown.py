"""What a later check (scrub) found is what the user is shown: the destinations page, the archive's page,
the overview and the API, on moto's real server.

A user trial: `lifeboat scrub` found the copy changed, printed CHANGED, emailed
the user and listed it for support, while the destinations page still said
"Working … the MD5 ETag match", the archive's page "Delivered" (even after the
bucket was deleted), the overview nothing and the API `"status": "ok"`. Each
must say what the check found and since when, until a later check or delivery
finds the copy good again.
"""

from __future__ import annotations

import datetime as dt
import re

import pytest
from flask import Flask
from flask.testing import FlaskClient, FlaskCliRunner
from markupsafe import escape
from sqlalchemy import select

from account.records import Account
from delivery.s3.inspection import CHANGED, HEALTHY, MISSING
from jobs import api_tokens, get_context, run_lifecycle, support_queue
from jobs.execute import execute_run
from jobs.scrub import FIX_WORDS, LIGHT_EVERY, scrub
from store import DestinationCheck, ExportRun, RunState, User
from store.base import utcnow
from store.passwords import hash_password
from tests.delivery.test_scrub import delivered
from tests.servers.s3 import MotoS3
from tests.web.conftest import PASSWORD, sign_in, staff_client

pytestmark = pytest.mark.server


def _text(client: FlaskClient, path: str) -> str:
    response = client.get(path)
    assert response.status_code == 200, path
    return re.sub(r"\s+", " ", response.get_data(as_text=True))


def _signed_in(app: Flask) -> FlaskClient:
    with get_context(app).db.session(write=True) as session:
        user = session.scalars(select(User)).one()
        user.password_hash = hash_password(PASSWORD)
    client = app.test_client()
    assert sign_in(client).status_code == 302
    return client


def _api_destination(app: Flask) -> dict[str, object]:
    with get_context(app).db.session(write=True) as session:
        user = session.scalars(select(User)).one()
        token = api_tokens.create_token(session, user.id, "t", days=1, now=utcnow()).secret
    response = app.test_client().get("/api/v1/destinations", headers={"Authorization": f"Bearer {token}"})
    assert response.status_code == 200
    (destination,) = response.get_json()
    assert isinstance(destination, dict)
    return destination


def _support_queue(app: Flask) -> list[tuple[str, int | None]]:
    with get_context(app).db.session() as session:
        items = support_queue.queue(session, now=utcnow(), kinds=("copy_damaged",)).items
    return [(i.kind, i.destination_id) for i in items]


def _archive_of(app: Flask, run_id: str) -> str:
    with get_context(app).db.session() as session:
        run = session.get(ExportRun, run_id)
        assert run is not None and run.archive_id is not None
        return run.archive_id


def _export_again(app: Flask) -> str:
    """Export and deliver again, a minute later on the job clock.

    Why later: archives are named to the second, and an export in the same second would
    meet the rewritten object at its own key, which Lifeboat never overwrites.
    """
    ctx = get_context(app)
    with ctx.db.session(write=True) as session:
        user = session.scalars(select(User)).one()
        run, _ = run_lifecycle.request_run(session, user.id, "manual", now=utcnow())
    ctx.clock = lambda: utcnow() + dt.timedelta(minutes=1)
    assert execute_run(ctx, run.id, "w") == RunState.DELIVERED
    return run.id


def test_a_copy_scrub_found_changed_reads_changed_on_every_page_and_in_the_api_until_a_new_delivery(
    bucket_app: Flask, alice: Account, moto_server: MotoS3, s3_bucket: str, runner: FlaskCliRunner
) -> None:
    destination_id, run_id, key = delivered(bucket_app, alice, moto_server, s3_bucket)
    client = _signed_in(bucket_app)
    assert "Working" in _text(client, "/settings/destinations")  # the delivery's own read-back, before any check
    moto_server.client().put_object(Bucket=s3_bucket, Key=key, Body=b"corrupted")
    result = runner.invoke(args=["scrub", "alice@example.com"])
    assert result.exit_code == 1 and "CHANGED" in result.output, result.output
    with get_context(bucket_app).db.session() as session:
        check = session.get(DestinationCheck, destination_id)
        assert check is not None and check.state == CHANGED and check.since == check.checked_at
    found = f"s3://{s3_bucket}/{key} is 9 bytes now"

    settings = _text(client, "/settings/destinations")
    problem = settings[settings.index(f'id="copy-problem-{destination_id}"') :]
    problem = problem[: problem.index("</dd>")]
    assert '<span class="badge failed">Copy changed</span> since <time' in problem
    assert found in problem and "What to do:</strong> Something rewrote it after delivery." in problem
    status = settings[settings.index("<dt>Status</dt>") : settings.index("<dt>Last delivery</dt>")]
    assert "Working" not in status and "ETag match" not in status  # the delivery's read-back, weeks old
    assert f'id="copy-check-{destination_id}"' in settings  # "Checked again <date>: copy changed"

    archive = _text(client, f"/archives/{_archive_of(bucket_app, run_id)}")
    delivered_to = archive[archive.index("Delivered to") : archive.index("Expires")]
    assert '<span class="badge failed">Copy changed</span> since' in delivered_to and found in delivered_to
    assert ">Delivered</span>" not in delivered_to

    overview = _text(client, "/")
    warning = overview[
        overview.index(f'id="copy-warning-{destination_id}"') : overview.index('aria-labelledby="exports-title"')
    ]
    assert "bucket: copy changed since <time" in warning and found in warning
    assert "What to do:</strong> Something rewrote it after delivery. Export now" in warning

    api = _api_destination(bucket_app)
    assert api["status"] == "error" and str(api["status_message"]).startswith(f"Copy changed: {found}")
    assert _support_queue(bucket_app) == [("copy_damaged", destination_id)]
    copy = api["copy_check"]
    assert isinstance(copy, dict)
    assert (copy["state"], copy["problem"], copy["run_id"], copy["object_key"]) == (CHANGED, True, run_id, key)
    assert copy["since"] and str(copy["what_to_do"]).startswith("Something rewrote it after delivery.")

    # A later export puts a fresh, verified copy there: the destination is fine again, the old copy is not.
    _export_again(bucket_app)
    assert 'id="copy-warning-' not in _text(client, "/")
    settings = _text(client, "/settings/destinations")
    assert "Copy changed" not in settings and "Working" in settings
    api = _api_destination(bucket_app)
    assert (api["status"], api["copy_check"]) == ("ok", None)
    assert _support_queue(bucket_app) == []  # support no longer chases it either
    old_archive = _text(client, f"/archives/{_archive_of(bucket_app, run_id)}")
    assert '<span class="badge failed">Copy changed</span>' in old_archive

    # And the next check of the new copy says so, with its date.
    (healthy,) = scrub(get_context(bucket_app), now=dt.datetime.now(dt.UTC) + LIGHT_EVERY + dt.timedelta(hours=1))
    assert healthy.state == HEALTHY
    settings = _text(client, "/settings/destinations")
    assert f'id="copy-check-{destination_id}"' in settings and "size and ETag as at delivery" in settings
    api = _api_destination(bucket_app)
    assert api["status"] == "ok" and isinstance(api["copy_check"], dict) and api["copy_check"]["problem"] is False


def test_a_deleted_bucket_turns_the_archives_delivered_line_into_copy_missing(
    bucket_app: Flask, alice: Account, moto_server: MotoS3, s3_bucket: str, runner: FlaskCliRunner
) -> None:
    destination_id, run_id, _key = delivered(bucket_app, alice, moto_server, s3_bucket)
    client = _signed_in(bucket_app)
    s3 = moto_server.client()
    for listed in s3.list_objects_v2(Bucket=s3_bucket).get("Contents", []):
        s3.delete_object(Bucket=s3_bucket, Key=listed["Key"])
    s3.delete_bucket(Bucket=s3_bucket)
    try:
        result = runner.invoke(args=["scrub", "alice@example.com", "--light"])
        assert result.exit_code == 1, result.output
        with get_context(bucket_app).db.session() as session:
            check = session.get(DestinationCheck, destination_id)
            assert check is not None
            state = check.state
        archive = _text(client, f"/archives/{_archive_of(bucket_app, run_id)}")
        delivered_to = archive[archive.index("Delivered to") : archive.index("Expires")]
        assert ">Delivered</span>" not in delivered_to, delivered_to
        assert f"Copy {state}</span> since" in delivered_to
        assert 'id="copy-warning-' in _text(client, "/")
        assert _api_destination(bucket_app)["status"] == "error"
    finally:
        s3.create_bucket(Bucket=s3_bucket)  # the fixture empties and deletes it


def test_the_support_console_says_a_copy_scrub_found_missing_is_missing_with_the_fix_as_the_queue_does(
    bucket_app: Flask, alice: Account, moto_server: MotoS3, s3_bucket: str, runner: FlaskCliRunner
) -> None:
    destination_id, _run_id, key = delivered(bucket_app, alice, moto_server, s3_bucket)
    with get_context(bucket_app).db.session() as session:
        user_id = session.scalars(select(User.id)).one()
    staff = staff_client(bucket_app, "sam@support.example.com", "support")
    before = _text(staff, f"/support/users/{user_id}")
    assert '<span class="badge delivered">ok</span>' in before and "no error to clear" in before
    assert "Clear the error and test again" not in before  # nothing to clear on a working destination

    moto_server.client().delete_object(Bucket=s3_bucket, Key=key)
    result = runner.invoke(args=["scrub", "alice@example.com"])
    assert result.exit_code == 1 and "MISSING" in result.output, result.output
    assert _support_queue(bucket_app) == [("copy_damaged", destination_id)]

    page = _text(staff, f"/support/users/{user_id}")
    card = page[page.index(f'id="destination-{destination_id}"') : page.index('id="support-actions"')]
    assert '<span class="badge failed">Copy missing</span>' in card and ">ok</span>" not in card
    problem = card[card.index(f'id="copy-problem-{destination_id}"') :]
    assert f"s3://{s3_bucket}/{key} is gone" in problem[: problem.index("</dd>")]
    assert f"What to do</dt><dd>{escape(FIX_WORDS[MISSING])}</dd>" in card  # the words of the scrub's email to the user
    actions = page[page.index('id="support-actions"') :]
    assert "A test does not bring the copy back" in actions and "Clear the error and test again" not in actions
