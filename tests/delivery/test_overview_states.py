"""The overview says what is true of where archives go and of the last export, on moto's real server.

A user trial: with one good bucket and one whose bucket did not exist, `/` read "Where
archives go: Kept here, ready to download; Moto; Broken" while the support queue listed
"Destination in error … Broken: The bucket … does not exist"; and "Last export: Delivered"
at the time of a support re-send of an older archive.
"""

from __future__ import annotations

import datetime as dt
import re

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select

from account.records import Account
from jobs import get_context, support_actions, support_queue
from jobs.audit import Actor
from jobs.destination_backends import Registry
from jobs.destination_setup import add_destination
from jobs.execute import execute_run
from store import Destination, ExportRun, RunState, User
from store.base import utcnow
from store.passwords import hash_password
from tests.delivery.test_run_retention import setup_run
from tests.servers.s3 import MotoS3
from tests.web.conftest import PASSWORD, sign_in

pytestmark = pytest.mark.server


def _overview(client: FlaskClient) -> str:
    response = client.get("/")
    assert response.status_code == 200
    return re.sub(r"\s+", " ", response.get_data(as_text=True))


def _signed_in(app: Flask) -> FlaskClient:
    with get_context(app).db.session(write=True) as session:
        user = session.scalars(select(User).where(User.email == "alice@example.com")).one()
        user.password_hash = hash_password(PASSWORD)
    client = app.test_client()
    assert sign_in(client).status_code == 302
    return client


def _later(app: Flask, minutes: int) -> None:
    """Move the job clock on: archives are named to the second, and runs finish in order."""
    get_context(app).clock = lambda: utcnow() + dt.timedelta(minutes=minutes)


def test_the_overview_names_a_destination_in_error_with_its_words_and_where_to_fix_it(
    bucket_app: Flask, alice: Account, moto_server: MotoS3, s3_bucket: str
) -> None:
    user_id, good_id, run_id = setup_run(bucket_app, alice, moto_server.url, s3_bucket)
    ctx = get_context(bucket_app)
    with ctx.db.session(write=True) as session:
        user = session.get(User, user_id)
        assert user is not None
        settings = {
            "bucket": "no-such-bucket", "endpoint_url": moto_server.url, "path_style": True,
            "access_key_id": "AKIALIFEBOATTEST0001", "secret_access_key": "secret-key-for-the-test",
        }  # fmt: skip
        broken_id = add_destination(session, Registry(dict(bucket_app.config)), user, "s3", "Broken", settings).id
    execute_run(ctx, run_id, "w")
    with ctx.db.session() as session:
        broken = session.get(Destination, broken_id)
        assert broken is not None and broken.status == "error", broken and broken.status
        said = broken.status_message or ""
        queued = support_queue.queue(session, now=utcnow(), kinds=("destination_error",)).items
    assert "no-such-bucket" in said and [i.destination_id for i in queued] == [broken_id]

    client = _signed_in(bucket_app)
    page = _overview(client)
    warning = page[page.index(f'id="destination-warning-{broken_id}"') : page.index('aria-labelledby="exports-title"')]
    assert "Broken is not working</h2>" in warning and str(said).replace("'", "&#39;") in warning
    assert f'<a href="/settings/destinations#destination-{broken_id}">Fix Broken in your destinations</a>' in warning
    where = page[page.index("<dt>Where archives go</dt>") :]
    where = where[: where.index("</dd>")]
    anchor = f"/settings/destinations#destination-{broken_id}"
    fix = f'<a href="{anchor}">'
    assert f'{fix}Broken</a> <span class="badge failed">not working</span>' in where
    assert "; bucket" in where and f"destination-warning-{good_id}" not in page  # the good one reads as before
    settings_page = re.sub(r"\s+", " ", client.get("/settings").get_data(as_text=True))
    assert f'places: bucket, Broken <a class="badge failed" href="{anchor}">not working</a>.' in settings_page


def test_last_export_is_the_users_export_and_a_later_support_resend_is_named_as_one(
    bucket_app: Flask, alice: Account, moto_server: MotoS3, s3_bucket: str
) -> None:
    user_id, _good_id, run_id = setup_run(bucket_app, alice, moto_server.url, s3_bucket)
    ctx = get_context(bucket_app)
    assert execute_run(ctx, run_id, "w") == RunState.DELIVERED
    with ctx.db.session(write=True) as session:
        run = session.get(ExportRun, run_id)
        staff = User(email="sam@support.example.com", role="support")
        session.add(staff)
        session.flush()
        assert run is not None and run.archive_id is not None
        archive_id, exported_at, actor = run.archive_id, run.finished_at, Actor.of(staff)
    result = support_actions.resend_archive(
        ctx.db, actor, user_id, archive_id, "destinations", reason="Bucket restored", request_key="k1", now=utcnow()
    )
    with ctx.db.session() as session:
        resend = session.scalars(select(ExportRun).where(ExportRun.resend_to.is_not(None))).one()
        resend_id = resend.id
    assert result is not None
    _later(bucket_app, 5)
    assert execute_run(ctx, resend_id, "w") == RunState.DELIVERED

    page = _overview(_signed_in(bucket_app))
    last = page[page.index("<dt>Last export</dt>") : page.index("<dt>Next export</dt>")]
    assert f'href="/runs/{run_id}"' in last and f'href="/runs/{resend_id}"' in last
    assert exported_at is not None and f'datetime="{exported_at.isoformat()}"' in last  # the export's own time
    assert "Support re-sent the archive of " in last and " to your destinations on " in last
    assert last.index(f'href="/runs/{run_id}"') < last.index("Support re-sent")
