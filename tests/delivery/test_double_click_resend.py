"""A double-clicked re-send sends one email and puts one object in the bucket.

Why against real servers: "once" is what the mailbox and the bucket hold, not
what the database says. The bucket is versioned, so a second upload under the
same key would show as a second version instead of silently overwriting the first.
Both ways a form is submitted twice are covered: one after the other, and two
requests racing each other from two threads.
"""

from __future__ import annotations

import threading
from collections.abc import Callable

import pytest
from flask import Flask
from sqlalchemy import select

from account.records import Account
from jobs import get_context, support_actions
from jobs.audit import Actor
from jobs.destination_backends import Registry
from jobs.destination_setup import add_destination
from jobs.execute import execute_run
from store import AuditEvent, DeliveryAttempt, ExportRun, RunState, User
from store.accounts import replace_account
from store.base import utcnow
from tests.delivery.test_support_actions import exported_archive
from tests.servers.s3 import MotoS3
from tests.servers.smtp import SmtpServer

pytestmark = pytest.mark.server

Resend = Callable[[], support_actions.ActionResult]


@pytest.fixture
def resend_app(quiet_delivery_app: Flask) -> Flask:
    return quiet_delivery_app


def click_twice_in_a_row(resend: Resend) -> list[support_actions.ActionResult]:
    return [resend(), resend()]


def click_twice_at_once(resend: Resend) -> list[support_actions.ActionResult]:
    """Two requests with the same key, released together, each in its own thread (as two web workers)."""
    gate = threading.Barrier(2)
    results: list[support_actions.ActionResult] = []
    errors: list[BaseException] = []

    def submit() -> None:
        gate.wait()
        try:
            results.append(resend())
        except BaseException as exc:  # reported below, in the test's thread
            errors.append(exc)

    threads = [threading.Thread(target=submit) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    assert not errors, errors
    return results


@pytest.mark.parametrize("submit", [click_twice_in_a_row, click_twice_at_once], ids=["in_a_row", "at_once"])
def test_a_double_clicked_resend_sends_one_email_and_one_object_version(
    resend_app: Flask,
    alice: Account,
    moto_server: MotoS3,
    s3_bucket: str,
    smtp_server: SmtpServer,
    submit: Callable[[Resend], list[support_actions.ActionResult]],
) -> None:
    ctx = get_context(resend_app)
    with ctx.db.session(write=True) as session:
        alice_id = replace_account(session, alice).id
        helper = User(email="helper@lifeboat.example", display_name="Helper", role="support")
        session.add(helper)
        session.flush()
        staff = Actor.of(helper, "192.0.2.7")
    archive = exported_archive(resend_app, alice_id)  # before any destination: nothing delivered yet
    moto_server.client().put_bucket_versioning(Bucket=s3_bucket, VersioningConfiguration={"Status": "Enabled"})
    registry = Registry(dict(resend_app.config))
    with ctx.db.session(write=True) as session:
        user = session.get(User, alice_id)
        assert user is not None
        bucket = {"bucket": s3_bucket, "endpoint_url": moto_server.url, "path_style": True, "region": "us-east-1"}
        keys = {"access_key_id": "AKIALIFEBOATTEST0001", "secret_access_key": "not-checked-by-moto-here"}
        add_destination(session, registry, user, "s3", "my bucket", {**bucket, **keys})
        add_destination(session, registry, user, "email", "me", {})
    smtp_server.handler.reset()

    def resend() -> support_actions.ActionResult:
        return support_actions.resend_archive(
            ctx.db, staff, alice_id, archive.id, "destinations", reason="Ticket 9", request_key="form-1", now=utcnow()
        )

    results = submit(resend)

    assert sorted(r.repeated for r in results) == [False, True]
    assert len({r.run_id for r in results}) == 1 and results[0].message == results[1].message
    with ctx.db.session() as session:
        queued = list(session.scalars(select(ExportRun.id).where(ExportRun.trigger == "support")))
        rows = list(session.scalars(select(AuditEvent).where(AuditEvent.request_key == "form-1")))
    assert queued == [results[0].run_id]
    assert [(r.action, r.outcome) for r in rows] == [("archive.resend", "ok")]
    for run_id in queued:
        assert execute_run(ctx, run_id, "w") == RunState.DELIVERED

    with ctx.db.session() as session:
        attempts = list(session.scalars(select(DeliveryAttempt).where(DeliveryAttempt.run_id.in_(queued))))
    s3_attempt = next(a for a in attempts if a.object_key is not None)
    mail_attempt = next(a for a in attempts if a.message_id is not None)
    assert sorted(a.outcome for a in attempts) == ["delivered", "delivered"]
    [mail] = smtp_server.received
    assert mail.message()["Message-ID"] == mail_attempt.message_id
    listing = moto_server.client().list_object_versions(Bucket=s3_bucket)
    versions = [(v["Key"], v["VersionId"]) for v in listing.get("Versions", [])]
    names = [name for name, _version in versions]
    assert len(names) == len(set(names))  # one version of each object (the zip and its manifest beside it)
    assert (s3_attempt.object_key, s3_attempt.version_id) in versions
    assert not listing.get("DeleteMarkers")
