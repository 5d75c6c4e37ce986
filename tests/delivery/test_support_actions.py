"""Support's actions change what they say, once per request key, each with its audit row in the same commit.

The re-send runs against real servers (moto's S3, aiosmtpd): what arrives has
the archive's own SHA-256, read back from the bucket and the mailbox.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from typing import Any

import pytest
from flask import Flask
from sqlalchemy import select

from account.records import Account
from errors import InvalidInput
from jobs import api_tokens, get_context, run_lifecycle, support_actions
from jobs.audit import Actor
from jobs.destination_backends import Registry
from jobs.destination_setup import add_destination
from jobs.download_links import create_link
from jobs.execute import execute_run
from jobs.user_schedule import ScheduleChange, find_schedule, save_schedule
from store import (
    ApiToken,
    Archive,
    AuditEvent,
    Database,
    DeliveryAttempt,
    Destination,
    DownloadLink,
    ExportRun,
    RunState,
    Schedule,
    User,
)
from store.accounts import replace_account
from store.base import utcnow
from store.passwords import hash_password
from tests.servers.s3 import MotoS3
from tests.servers.smtp import SmtpServer
from tests.web.conftest import PASSWORD, sign_in

NOW = dt.datetime(2026, 12, 6, 12, 0, tzinfo=dt.UTC)


@pytest.fixture
def actions_app(quiet_delivery_app: Flask) -> Flask:
    return quiet_delivery_app


@pytest.fixture
def adb(actions_app: Flask) -> Database:
    return get_context(actions_app).db


@pytest.fixture
def staff(adb: Database) -> Actor:
    with adb.session(write=True) as session:
        user = User(email="helper@lifeboat.example", display_name="Helper", role="support")
        session.add(user)
        session.flush()
        return Actor.of(user, "192.0.2.7")


@pytest.fixture
def alice_id(adb: Database, alice: Account) -> int:
    with adb.session(write=True) as session:
        return replace_account(session, alice).id


def exported_archive(app: Flask, user_id: int) -> Archive:
    """An ordinary verified archive of the user's (an export with no destination)."""
    ctx = get_context(app)
    with ctx.db.session(write=True) as session:
        run, _ = run_lifecycle.request_run(session, user_id, "manual", now=utcnow())
    assert execute_run(ctx, run.id, "setup") == RunState.DELIVERED
    with ctx.db.session() as session:
        found = session.get(ExportRun, run.id)
        assert found is not None and found.archive is not None
        return found.archive


def audit_rows(db: Database) -> list[AuditEvent]:
    with db.session() as session:
        return list(session.scalars(select(AuditEvent).order_by(AuditEvent.id)))


def s3_settings(moto: MotoS3, bucket: str, keys: dict[str, str]) -> dict[str, Any]:
    return {"bucket": bucket, "endpoint_url": moto.url, "path_style": True, "region": "us-east-1", **keys}


# -- each action's effect and its audit row ----------------------------------------------------


def test_revoke_credentials_revokes_every_link_and_token_and_records_who_why_and_how_many(
    actions_app: Flask, adb: Database, staff: Actor, alice_id: int
) -> None:
    archive = exported_archive(actions_app, alice_id)
    with adb.session(write=True) as session:
        create_link(session, archive.id, alice_id, max_age=dt.timedelta(days=3), now=utcnow())
        api_tokens.create_token(session, alice_id, "script", days=30, now=utcnow())
    result = support_actions.revoke_credentials(
        adb, staff, alice_id, reason="Ticket 42: link posted publicly", request_key="k1", now=utcnow()
    )
    assert result.ok and "1 download link and 1 API token" in result.message
    with adb.session() as session:
        assert all(link.revoked_at is not None for link in session.scalars(select(DownloadLink)))
        assert all(token.revoked_at is not None for token in session.scalars(select(ApiToken)))
    [row] = audit_rows(adb)
    assert (row.action, row.actor_email, row.actor_role, row.address) == (
        "credentials.revoke",
        "helper@lifeboat.example",
        "support",
        "192.0.2.7",
    )
    assert (row.target_user_id, row.reason, row.request_key) == (alice_id, "Ticket 42: link posted publicly", "k1")
    assert json.loads(row.detail)["links"] == 1


@pytest.fixture
def every_action(actions_app: Flask, adb: Database, staff: Actor, alice_id: int) -> dict[str, Any]:
    """One call per staff action, against an account that each can change: an archive, a paused-able
    schedule, an email destination in error, and a link and a token to revoke."""
    archive = exported_archive(actions_app, alice_id)
    registry = Registry(dict(actions_app.config))
    with adb.session(write=True) as session:
        user = session.get(User, alice_id)
        assert user is not None
        save_schedule(session, user, ScheduleChange(frequency="daily"), now=NOW)
        destination = add_destination(session, registry, user, "email", "my mail", {"to": "alice@example.com"})
        destination.status, destination.status_message = "error", "The mail server refused the message."
        create_link(session, archive.id, alice_id, max_age=dt.timedelta(days=3), now=utcnow())
        api_tokens.create_token(session, alice_id, "script", days=30, now=utcnow())
        destination_id = destination.id

    def call(name: str, key: str) -> Any:
        common: dict[str, Any] = {"reason": "Ticket 9", "request_key": key, "now": NOW}
        return {
            "archive.resend": lambda: support_actions.resend_archive(
                adb, staff, alice_id, archive.id, "email", **common
            ),
            "export.start": lambda: support_actions.export_now(adb, staff, alice_id, **common),
            "schedule.pause": lambda: support_actions.pause_schedule(adb, staff, alice_id, **common),
            "schedule.resume": lambda: support_actions.resume_schedule(adb, staff, alice_id, **common),
            "destination.retest": lambda: support_actions.retest_destination(
                adb, registry, staff, alice_id, destination_id, **common
            ),
            "credentials.revoke": lambda: support_actions.revoke_credentials(adb, staff, alice_id, **common),
        }[name]()

    def prepare(name: str) -> None:
        if name == "schedule.resume":  # only a schedule support paused can be resumed by support
            with adb.session(write=True) as session:
                row = session.scalar(select(Schedule).where(Schedule.user_id == alice_id))
                assert row is not None
                row.enabled, row.next_run_at, row.paused_reason = False, None, support_actions.PAUSED_BY_SUPPORT

    return {"call": call, "prepare": prepare}


def account_state(db: Database) -> list[Any]:
    """Everything a staff action may change, to compare before and after."""
    with db.session() as session:
        return [
            [(r.id, r.state) for r in session.scalars(select(ExportRun).order_by(ExportRun.id))],
            [(r.enabled, r.next_run_at) for r in session.scalars(select(Schedule))],
            [(r.status, r.status_message) for r in session.scalars(select(Destination))],
            [r.revoked_at for r in session.scalars(select(DownloadLink))],
            [r.revoked_at for r in session.scalars(select(ApiToken))],
            len(list(session.scalars(select(AuditEvent)))),
        ]


STAFF_ACTIONS = [
    "archive.resend",
    "export.start",
    "schedule.pause",
    "schedule.resume",
    "destination.retest",
    "credentials.revoke",
]


@pytest.mark.server
@pytest.mark.parametrize("action", STAFF_ACTIONS)
def test_every_staff_action_changes_the_account_and_writes_exactly_one_audit_row(
    every_action: dict[str, Any], adb: Database, action: str
) -> None:
    every_action["prepare"](action)
    before = account_state(adb)
    result = every_action["call"](action, "once")
    assert every_action["call"](action, "once").repeated  # the double click
    after = account_state(adb)
    assert after[:-1] != before[:-1], "the action changed nothing"
    assert [(r.action, r.request_key, r.reason) for r in audit_rows(adb)] == [(action, "once", "Ticket 9")]
    assert result.action == action


@pytest.mark.server
@pytest.mark.parametrize("action", STAFF_ACTIONS)
def test_every_staff_action_that_crashes_at_its_audit_row_leaves_neither_the_row_nor_its_effect(
    every_action: dict[str, Any], adb: Database, action: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    real_record = support_actions.record

    def record_then_crash(*args: Any, **kwargs: Any) -> Any:
        real_record(*args, **kwargs)
        raise RuntimeError("the database went away mid-commit")

    every_action["prepare"](action)
    before = account_state(adb)
    monkeypatch.setattr(support_actions, "record", record_then_crash)
    with pytest.raises(RuntimeError):
        every_action["call"](action, "crash")
    assert account_state(adb) == before


def test_a_repeated_request_key_acts_once_and_returns_the_first_outcome(
    actions_app: Flask, adb: Database, staff: Actor, alice_id: int
) -> None:
    first = support_actions.export_now(adb, staff, alice_id, reason="User asked", request_key="same", now=NOW)
    with adb.session(write=True) as session:  # the export finished meanwhile: a new one could start
        run = session.get(ExportRun, first.run_id)
        assert run is not None
        run.state = RunState.DELIVERED
    again = support_actions.export_now(adb, staff, alice_id, reason="User asked", request_key="same", now=NOW)
    assert first.ok and first.queued and "Export started" in first.message
    assert again.repeated and again.message == first.message and again.run_id == first.run_id
    with adb.session() as session:
        assert len(list(session.scalars(select(ExportRun)))) == 1
    assert len(audit_rows(adb)) == 1


def test_a_second_export_while_one_runs_starts_nothing_and_says_so(
    actions_app: Flask, adb: Database, staff: Actor, alice_id: int
) -> None:
    first = support_actions.export_now(adb, staff, alice_id, reason="r", request_key="a", now=NOW)
    second = support_actions.export_now(adb, staff, alice_id, reason="r", request_key="b", now=NOW)
    assert second.run_id == first.run_id and not second.queued and "already in progress" in second.message
    assert [row.outcome for row in audit_rows(adb)] == ["ok", "already_running"]
    with adb.session() as session:
        run = session.get(ExportRun, first.run_id)
        assert run is not None and run.trigger == "support"


@pytest.mark.parametrize("reason", ["", "   ", "x" * 501])
def test_a_missing_or_overlong_reason_is_refused_before_anything_happens(
    actions_app: Flask, adb: Database, staff: Actor, alice_id: int, reason: str
) -> None:
    with pytest.raises(InvalidInput, match="reason"):
        support_actions.export_now(adb, staff, alice_id, reason=reason, request_key="k", now=NOW)
    assert audit_rows(adb) == []


def test_an_unknown_user_is_refused(actions_app: Flask, adb: Database, staff: Actor) -> None:
    with pytest.raises(support_actions.UnknownTarget):
        support_actions.revoke_credentials(adb, staff, 999_999, reason="r", request_key=None, now=NOW)


def test_pause_stops_the_schedule_and_resume_starts_it_from_now(
    actions_app: Flask, adb: Database, staff: Actor, alice_id: int
) -> None:
    with adb.session(write=True) as session:
        user = session.get(User, alice_id)
        assert user is not None
        save_schedule(session, user, ScheduleChange(frequency="daily"), now=NOW)
    paused = support_actions.pause_schedule(adb, staff, alice_id, reason="Bounces", request_key="p", now=NOW)
    with adb.session() as session:
        user = session.get(User, alice_id)
        row = find_schedule(session, user)  # type: ignore[arg-type]
        assert row is not None and not row.enabled and row.next_run_at is None
        assert row.paused_reason == support_actions.PAUSED_BY_SUPPORT  # never the staff member's notes
    later = NOW + dt.timedelta(days=3)
    resumed = support_actions.resume_schedule(adb, staff, alice_id, reason="Fixed", request_key="r", now=later)
    with adb.session() as session:
        row = find_schedule(session, session.get(User, alice_id))  # type: ignore[arg-type]
        assert row is not None and row.enabled and row.paused_reason is None
        assert row.next_run_at is not None and row.next_run_at > later
    assert paused.ok and resumed.ok
    assert [r.action for r in audit_rows(adb)] == ["schedule.pause", "schedule.resume"]


def test_a_schedule_the_user_switched_off_is_not_resumed_by_support(
    actions_app: Flask, adb: Database, staff: Actor, alice_id: int
) -> None:
    with adb.session(write=True) as session:
        user = session.get(User, alice_id)
        assert user is not None
        save_schedule(session, user, ScheduleChange(), now=NOW).enabled = False
    with pytest.raises(support_actions.ActionRefused, match="switched it off themselves"):
        support_actions.resume_schedule(adb, staff, alice_id, reason="r", request_key="r", now=NOW)
    [refusal] = audit_rows(adb)  # the refusal is audited, and a resubmitted form answers it once
    assert (refusal.action, refusal.outcome, refusal.request_key) == ("schedule.resume", "refused", "r")
    again = support_actions.resume_schedule(adb, staff, alice_id, reason="r", request_key="r", now=NOW)
    assert again.repeated and not again.ok and "switched it off themselves" in again.message
    with adb.session() as session:
        assert find_schedule(session, session.get(User, alice_id)).enabled is False  # type: ignore[arg-type, union-attr]


def test_another_users_deleted_or_unverified_archive_is_refused(
    actions_app: Flask, adb: Database, staff: Actor, alice_id: int
) -> None:
    archive = exported_archive(actions_app, alice_id)
    with adb.session(write=True) as session:
        bob = User(email="bob@example.com", display_name="Bob")
        session.add(bob)
        session.flush()
        bob_id = bob.id
    with pytest.raises(support_actions.ActionRefused, match="has no archive"):
        support_actions.resend_archive(adb, staff, bob_id, archive.id, "email", reason="r", request_key="1", now=NOW)
    with adb.session(write=True) as session:
        row = session.get(Archive, archive.id)
        assert row is not None
        row.verified_at = None
    with pytest.raises(support_actions.ActionRefused, match="never verified"):
        support_actions.resend_archive(adb, staff, alice_id, archive.id, "email", reason="r", request_key="2", now=NOW)
    with adb.session(write=True) as session:
        row = session.get(Archive, archive.id)
        assert row is not None
        row.verified_at, row.deleted_at = NOW, NOW
    with pytest.raises(support_actions.ActionRefused, match="deleted"):
        support_actions.resend_archive(adb, staff, alice_id, archive.id, "email", reason="r", request_key="3", now=NOW)
    assert [(r.action, r.outcome, r.target_user_id) for r in audit_rows(adb)] == [
        ("archive.resend", "refused", bob_id),
        ("archive.resend", "refused", alice_id),
        ("archive.resend", "refused", alice_id),
    ]
    with adb.session() as session:
        assert list(session.scalars(select(ExportRun).where(ExportRun.trigger == "support"))) == []


# -- re-sending through real servers ------------------------------------------------------------


@pytest.mark.server
def test_a_resend_to_email_delivers_the_same_bytes_to_the_users_own_address(
    actions_app: Flask, adb: Database, staff: Actor, alice_id: int, smtp_server: SmtpServer
) -> None:
    archive = exported_archive(actions_app, alice_id)
    result = support_actions.resend_archive(
        adb, staff, alice_id, archive.id, "email", reason="Lost the mail", request_key="e", now=utcnow()
    )
    assert result.queued and result.run_id is not None
    assert execute_run(get_context(actions_app), result.run_id, "w") == RunState.DELIVERED
    message = smtp_server.received[-1].message()
    assert message["To"] and "alice@example.com" in message["To"]
    [attachment] = [p for p in message.iter_attachments() if (p.get_filename() or "").endswith(".zip")]
    assert hashlib.sha256(attachment.get_content()).hexdigest() == archive.sha256
    with adb.session() as session:
        run = session.get(ExportRun, result.run_id)
        assert run is not None and run.trigger == "support" and run.archive_id == archive.id
        assert len(list(session.scalars(select(Archive)))) == 1  # no new export
    # The user sees it in their History: who asked, which archive, and the delivery with its receipt.
    with adb.session(write=True) as session:
        user = session.get(User, alice_id)
        assert user is not None
        user.password_hash = hash_password(PASSWORD)
    client = actions_app.test_client()
    sign_in(client)
    page = client.get(f"/runs/{result.run_id}").get_data(as_text=True)
    assert "Requested by</dt><dd>Support" in page and f"SHA-256 {archive.sha256}" in page
    assert "email address (sent again by support)" in page and message["Message-ID"].strip("<>") in page
    assert result.run_id in client.get("/history").get_data(as_text=True)


@pytest.mark.server
def test_a_bad_key_fails_then_clear_and_retest_passes_and_the_resend_puts_the_same_sha256_in_the_bucket(
    actions_app: Flask,
    adb: Database,
    staff: Actor,
    alice_id: int,
    moto_server: MotoS3,
    s3_bucket: str,
    moto_iam_user: Any,
) -> None:
    from delivery.s3 import iam_policy

    archive = exported_archive(actions_app, alice_id)
    keys = moto_iam_user(json.loads(iam_policy(s3_bucket, "lifeboat")))  # moto checks keys from here on
    registry = Registry(dict(actions_app.config))
    with adb.session(write=True) as session:
        user = session.get(User, alice_id)
        assert user is not None
        wrong = {**keys, "secret_access_key": "not-the-right-secret"}
        destination_id = add_destination(
            session, registry, user, "s3", "my bucket", s3_settings(moto_server, s3_bucket, wrong)
        ).id
    ctx = get_context(actions_app)

    failed = support_actions.resend_archive(
        adb, staff, alice_id, archive.id, "destinations", reason="Ticket 7", request_key="r1", now=utcnow()
    )
    assert failed.run_id is not None and execute_run(ctx, failed.run_id, "w") == RunState.FAILED
    with adb.session(write=True) as session:  # the user saves the right key on their settings page
        row = session.get(Destination, destination_id)
        assert row is not None and row.status == "error"
        row.secret_token = registry.encrypt(keys)

    retest = support_actions.retest_destination(
        adb, registry, staff, alice_id, destination_id, reason="User fixed the key", request_key="t1", now=utcnow()
    )
    assert retest.ok and "test passed" in retest.message
    assert support_actions.retest_destination(
        adb, registry, staff, alice_id, destination_id, reason="again", request_key="t1", now=utcnow()
    ).repeated

    sent = support_actions.resend_archive(
        adb, staff, alice_id, archive.id, "destinations", reason="Ticket 7", request_key="r2", now=utcnow()
    )
    assert sent.run_id is not None and execute_run(ctx, sent.run_id, "w") == RunState.DELIVERED
    with adb.session() as session:
        [attempt] = session.scalars(select(DeliveryAttempt).where(DeliveryAttempt.run_id == sent.run_id))
        assert attempt.outcome == "delivered" and attempt.object_key is not None
        assert len(list(session.scalars(select(Archive)))) == 1  # the same archive, no new export
    moto_server.set_auth(False)
    body = moto_server.client().get_object(Bucket=s3_bucket, Key=attempt.object_key)["Body"].read()
    assert hashlib.sha256(body).hexdigest() == archive.sha256
    assert [(r.action, r.outcome, r.request_key) for r in audit_rows(adb)] == [
        ("archive.resend", "ok", "r1"),
        ("destination.retest", "ok", "t1"),
        ("archive.resend", "ok", "r2"),
    ]


@pytest.mark.server
def test_a_resend_whose_archive_vanished_fails_for_good_instead_of_exporting_anew(
    actions_app: Flask, adb: Database, staff: Actor, alice_id: int
) -> None:
    archive = exported_archive(actions_app, alice_id)
    result = support_actions.resend_archive(
        adb, staff, alice_id, archive.id, "email", reason="r", request_key="v", now=utcnow()
    )
    ctx = get_context(actions_app)
    ctx.files.delete(archive.relpath)
    assert result.run_id is not None and execute_run(ctx, result.run_id, "w") == RunState.FAILED
    with adb.session() as session:
        run = session.get(ExportRun, result.run_id)
        assert run is not None and run.error and "no longer on Lifeboat" in run.error
        assert len(list(session.scalars(select(Archive)))) == 1
