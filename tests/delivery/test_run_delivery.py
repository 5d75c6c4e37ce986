"""A run delivers its verified archive to a real bucket and a real mail server.

The bytes in the bucket and in the email attachment are the verified archive
(same SHA-256), the history tells the truth about every attempt, and no
secret appears in logs, pages or API responses.
"""

from __future__ import annotations

import hashlib
import logging
import re

import pytest
from flask import Flask
from sqlalchemy import select

from account.records import Account
from jobs import api_tokens, get_context, run_lifecycle
from jobs.destination_backends import Registry
from jobs.destination_setup import add_destination, public_view
from jobs.execute import execute_run
from store import DeliveryAttempt, Destination, ExportRun, RunState
from store.accounts import replace_account
from store.base import utcnow
from store.passwords import hash_password
from tests.servers.s3 import MotoS3
from tests.servers.smtp import SmtpServer

SECRET = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYSECRETKEY1"
ACCESS = "AKIALIFEBOATTEST0001"

pytestmark = pytest.mark.server


def _setup(app: Flask, alice: Account, moto_server: MotoS3, bucket: str, *, email: bool = True) -> tuple[int, str]:
    ctx = get_context(app)
    registry = Registry(dict(app.config))
    with ctx.db.session(write=True) as session:
        user = replace_account(session, alice)
        user.password_hash = hash_password("pw")
        add_destination(
            session,
            registry,
            user,
            "s3",
            "my bucket",
            {
                "bucket": bucket,
                "endpoint_url": moto_server.url,
                "path_style": True,
                "region": "us-east-1",
                "access_key_id": ACCESS,
                "secret_access_key": SECRET,
            },
        )
        if email:
            add_destination(session, registry, user, "email", "me", {})
        run, _ = run_lifecycle.request_run(session, user.id, "manual", now=utcnow())
        return user.id, run.id


def test_bucket_and_email_receive_the_verified_archive_and_no_secret_leaks_and_receipts_are_kept(
    delivery_app: Flask,
    alice: Account,
    moto_server: MotoS3,
    s3_bucket: str,
    smtp_server: SmtpServer,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    moto_server.client().put_bucket_versioning(Bucket=s3_bucket, VersioningConfiguration={"Status": "Enabled"})
    _user_id, run_id = _setup(delivery_app, alice, moto_server, s3_bucket)
    ctx = get_context(delivery_app)
    assert execute_run(ctx, run_id, "w") == RunState.DELIVERED
    with ctx.db.session() as session:
        run = session.get(ExportRun, run_id)
        assert run is not None and run.archive is not None
        expected = run.archive.sha256
        attempts = list(session.scalars(select(DeliveryAttempt).where(DeliveryAttempt.run_id == run_id)))
        stored = [d.secret_token for d in session.scalars(select(Destination))]
    assert [a.outcome for a in attempts] == ["delivered", "delivered"]
    location = attempts[0].location
    assert location is not None
    key = location.split(f"s3://{s3_bucket}/", 1)[1]
    body = moto_server.client().get_object(Bucket=s3_bucket, Key=key)["Body"].read()
    assert hashlib.sha256(body).hexdigest() == expected
    # Each attempt keeps its receipt as data: what the bucket and the mail server were given.
    head = moto_server.client().head_object(Bucket=s3_bucket, Key=key)
    assert (attempts[0].object_key, attempts[0].version_id) == (key, head["VersionId"])
    assert attempts[0].etag == head["ETag"].strip('"') and attempts[0].message_id is None
    message = smtp_server.received[0].message()
    assert attempts[1].message_id == message["Message-ID"] and attempts[1].object_key is None
    zips = [p for p in message.iter_attachments() if (p.get_filename() or "").endswith(".zip")]
    assert hashlib.sha256(zips[0].get_content()).hexdigest() == expected
    plain = message.get_body(("plain",))
    assert plain is not None and expected in plain.get_content()
    # The secret is encrypted at rest and appears nowhere a person or log could see it.
    assert all(SECRET not in (token or "") for token in stored)
    client = delivery_app.test_client()
    page = client.get("/login").get_data(as_text=True)
    token = re.search(r'name="csrf_token" type="hidden" value="([^"]+)"', page).group(1)  # type: ignore[union-attr]  # no match fails the test
    client.post("/login", data={"email": "alice@example.com", "password": "pw", "csrf_token": token})
    seen = client.get("/").get_data(as_text=True) + client.get(f"/runs/{run_id}.json").get_data(as_text=True)
    with ctx.db.session() as session:
        seen += str([public_view(d) for d in session.scalars(select(Destination))])
    for text in (seen, caplog.text):
        assert SECRET not in text and SECRET[:12] not in text


def test_a_bucket_that_refuses_marks_the_run_failed_with_the_fix(
    delivery_app: Flask, alice: Account, moto_server: MotoS3, smtp_server: SmtpServer
) -> None:
    _user_id, run_id = _setup(delivery_app, alice, moto_server, "no-such-bucket-lifeboat", email=False)
    ctx = get_context(delivery_app)
    notified: list[str] = []
    ctx.notify_failure = lambda user, run: notified.append(run.error or "")
    assert execute_run(ctx, run_id, "w") == RunState.FAILED
    with ctx.db.session() as session:
        run = session.get(ExportRun, run_id)
        assert run is not None and run.error and "bucket" in run.error.lower()
        destination = session.scalar(select(Destination))
        assert destination is not None and destination.status == "error"
        assert run.archive is not None  # the verified archive is kept: nothing is lost
    assert notified and "bucket" in notified[0].lower()


def test_the_user_is_emailed_when_a_run_fails_for_good(
    delivery_app: Flask, alice: Account, moto_server: MotoS3, smtp_server: SmtpServer
) -> None:
    _user_id, run_id = _setup(delivery_app, alice, moto_server, "no-such-bucket-lifeboat", email=False)
    assert execute_run(get_context(delivery_app), run_id, "w") == RunState.FAILED
    notice = smtp_server.received[-1].message()
    # The archive was made and is kept; only delivery failed, and the mail says so (user trial 8).
    assert notice["To"] == "alice@example.com"
    assert notice["Subject"] == "Your Lifeboat archive was made, but not delivered"
    text = notice.get_content().replace("\r\n", "\n")
    assert f"Lifeboat made your archive, but could not deliver it (run {run_id}, 1 attempt(s)). It is kept" in text
    assert "ready to download at " in text and "/archives\n" in text
    assert "It did not arrive at:\n  - s3://no-such-bucket-lifeboat/lifeboat: " in text
    assert "could not complete" not in text and "bucket" in text.lower()


def test_a_destination_whose_stored_settings_cannot_be_used_fails_the_run_for_good_with_the_fix(
    delivery_app: Flask, alice: Account, moto_server: MotoS3
) -> None:
    _user_id, run_id = _setup(delivery_app, alice, moto_server, "lifeboat-any", email=False)
    ctx = get_context(delivery_app)
    ctx.notify_failure = lambda _user, _run: None
    with ctx.db.session(write=True) as session:
        destination = session.scalar(select(Destination))
        assert destination is not None
        destination.settings = {"bucket": "", "endpoint_url": "not a url"}  # written around the checks
    assert execute_run(ctx, run_id, "w") == RunState.FAILED
    with ctx.db.session() as session:
        run = session.get(ExportRun, run_id)
        assert run is not None and run.state == RunState.FAILED  # for good: not "retrying"
        assert run.error and "“my bucket” cannot be used" in run.error and "Settings → Destinations" in run.error


def test_a_destination_that_fails_does_not_keep_the_archive_from_the_others(
    delivery_app: Flask, alice: Account, moto_server: MotoS3, smtp_server: SmtpServer
) -> None:
    """A user trial: a broken first destination failed the run before the working ones were tried.

    The bucket (added first) does not exist; the email destination after it still gets the
    verified archive, and the run still fails for good naming the bucket.
    """
    _user_id, run_id = _setup(delivery_app, alice, moto_server, "no-such-bucket-lifeboat")
    ctx = get_context(delivery_app)
    ctx.notify_failure = lambda _user, _run: None
    assert execute_run(ctx, run_id, "w") == RunState.FAILED
    with ctx.db.session() as session:
        run = session.get(ExportRun, run_id)
        assert run is not None and run.archive is not None and run.error and "bucket" in run.error.lower()
        expected = run.archive.sha256
        attempts = session.scalars(
            select(DeliveryAttempt).where(DeliveryAttempt.run_id == run_id).order_by(DeliveryAttempt.id)
        )
        labels = {d.id: d.label for d in session.scalars(select(Destination))}
        outcomes = [(labels.get(a.destination_id or 0), a.outcome) for a in attempts]
    assert outcomes == [("my bucket", "permanent"), ("me", "delivered")]
    (received,) = smtp_server.received
    zips = [p for p in received.message().iter_attachments() if (p.get_filename() or "").endswith(".zip")]
    assert hashlib.sha256(zips[0].get_content()).hexdigest() == expected


def test_a_run_that_reached_some_destinations_is_partly_delivered_in_its_email_and_the_api_with_places_in_words(
    delivery_app: Flask, alice: Account, moto_server: MotoS3, smtp_server: SmtpServer
) -> None:
    """A user trial: the web said "Partly delivered", the API only "state": "failed", and the email's subject
    "Your Lifeboat export failed" above "It did arrive at: mailto:…" (a URL, not a place)."""
    user_id, run_id = _setup(delivery_app, alice, moto_server, "no-such-bucket-lifeboat")
    assert execute_run(get_context(delivery_app), run_id, "w") == RunState.FAILED
    archive, notice = (m.message() for m in smtp_server.received)  # the copy, then the notice
    assert notice["Subject"] == "Your Lifeboat export was partly delivered" and archive["Subject"] != notice["Subject"]
    text = notice.get_content().replace("\r\n", "\n")
    assert "It arrived at:\n  - alice@example.com\n" in text and "mailto:" not in text
    assert "It did not arrive at:\n  - s3://no-such-bucket-lifeboat/lifeboat: " in text
    assert "What went wrong: " in text and "bucket" in text.lower()

    with get_context(delivery_app).db.session(write=True) as session:
        token = api_tokens.create_token(session, user_id, "t", days=1, now=utcnow()).secret
    api = delivery_app.test_client()
    headers = {"Authorization": f"Bearer {token}"}
    run = api.get(f"/api/v1/runs/{run_id}", headers=headers).get_json()
    assert run["state"] == "failed"  # the values of "state" stay as they were
    assert (run["partly_delivered"], run["delivered_to"]) == (True, ["alice@example.com"])
    (listed,) = api.get("/api/v1/runs", headers=headers).get_json()["items"]
    assert (listed["partly_delivered"], listed["delivered_to"]) == (True, ["alice@example.com"])
