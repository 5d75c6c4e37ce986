"""/api/v1/support/users/<id>/…: staff tokens act (audited, once per key); user tokens get 403."""

from __future__ import annotations

from typing import Any

import pytest
from flask.testing import FlaskClient
from sqlalchemy import select

from jobs import run_lifecycle
from jobs.execute import execute_run
from store import ApiToken, AuditEvent, Database, ExportRun, RunState, User
from store.base import utcnow
from tests.api.conftest import bearer, make_token

ACTIONS = ("resend", "export", "pause", "resume", "revoke-credentials", "destinations/1/retest")


@pytest.fixture
def staff_token(db: Database) -> str:
    with db.session(write=True) as session:
        staff = User(email="helper@example.com", role="support")
        session.add(staff)
        session.flush()
        staff_id = staff.id
    return make_token(db, staff_id, "console")


def call(client: FlaskClient, token: str, path: str, body: dict[str, Any], **headers: str) -> Any:
    return client.post(f"/api/v1/support/users/{path}", json=body, headers={**bearer(token), **headers})


def audit(db: Database) -> list[AuditEvent]:
    with db.session() as session:
        return list(session.scalars(select(AuditEvent)))


def test_a_staff_token_revokes_a_users_tokens_and_the_audit_row_names_the_staff_member(
    client: FlaskClient, db: Database, staff_token: str, alice_id: int, alice_token: str
) -> None:
    answer = call(client, staff_token, f"{alice_id}/revoke-credentials", {"reason": "Token leaked", "request_key": "a"})
    assert answer.status_code == 200
    assert answer.get_json() == {
        "action": "credentials.revoke",
        "ok": True,
        "message": "Revoked 0 download links and 1 API token of alice@example.com.",
        "repeated": False,
        "run_id": None,
        "queued": False,
    }
    assert client.get("/api/v1/me", headers=bearer(alice_token)).status_code == 401
    [row] = audit(db)
    assert (row.actor_email, row.reason, row.target_user_id) == ("helper@example.com", "Token leaked", alice_id)
    with db.session() as session:
        tokens = session.scalars(select(ApiToken).where(ApiToken.user_id == alice_id))
        assert all(t.revoked_at is not None for t in tokens)


def test_the_idempotency_key_header_makes_a_retried_export_act_once(
    client: FlaskClient, db: Database, staff_token: str, alice_id: int
) -> None:
    first = call(client, staff_token, f"{alice_id}/export", {"reason": "User asked"}, **{"Idempotency-Key": "x1"})
    again = call(client, staff_token, f"{alice_id}/export", {"reason": "User asked"}, **{"Idempotency-Key": "x1"})
    assert first.status_code == again.status_code == 200
    assert first.get_json()["queued"] and again.get_json()["repeated"]
    assert again.get_json()["run_id"] == first.get_json()["run_id"]
    assert len(audit(db)) == 1


def test_a_resend_queues_a_support_run_with_the_archive_attached(
    client: FlaskClient, db: Database, app: Any, staff_token: str, alice_id: int
) -> None:
    from jobs import get_context

    app.config["SMTP_HOST"] = "127.0.0.1"  # email is set up (nothing is sent here: the run is only queued)
    with db.session(write=True) as session:
        run, _ = run_lifecycle.request_run(session, alice_id, "manual", now=utcnow())
    assert execute_run(get_context(app), run.id, "t") == RunState.DELIVERED
    with db.session() as session:
        archive_id = session.get(ExportRun, run.id).archive_id  # type: ignore[union-attr]
    answer = call(client, staff_token, f"{alice_id}/resend", {"archive_id": archive_id, "to": "email", "reason": "r"})
    assert answer.status_code == 200, answer.get_json()
    with db.session() as session:
        resend = session.get(ExportRun, answer.get_json()["run_id"])
        assert resend is not None and (resend.trigger, resend.archive_id, resend.resend_to) == (
            "support",
            archive_id,
            "email",
        )


@pytest.mark.parametrize(
    ("path", "body", "status", "code"),
    [
        ("{alice}/export", {}, 422, "invalid_input"),
        ("{alice}/export", {"reason": "x" * 501}, 422, "invalid_input"),
        ("{alice}/resend", {"archive_id": "nope", "to": "fax", "reason": "r"}, 422, "invalid_input"),
        ("{alice}/resend", {"archive_id": "nope", "to": "email", "reason": "r"}, 409, "action_refused"),
        ("{alice}/resume", {"reason": "r"}, 409, "action_refused"),
        ("987654/pause", {"reason": "r"}, 404, "unknown_user"),
        ("{alice}/destinations/987654/retest", {"reason": "r"}, 404, "unknown_destination"),
    ],
)
def test_bad_requests_get_json_errors_with_stable_codes_and_do_nothing(
    client: FlaskClient,
    db: Database,
    staff_token: str,
    alice_id: int,
    path: str,
    body: dict[str, Any],
    status: int,
    code: str,
) -> None:
    answer = call(client, staff_token, path.format(alice=alice_id), body)
    assert (answer.status_code, answer.get_json()["code"]) == (status, code)
    assert answer.get_json()["message"]
    # Nothing was done; a refusal by the account's state is itself audited, as refused.
    assert [row.outcome for row in audit(db)] == (["refused"] if code == "action_refused" else [])


def test_a_users_own_token_gets_403_on_every_action(
    client: FlaskClient, db: Database, alice_id: int, alice_token: str, bob_id: int
) -> None:
    for action in ACTIONS:
        answer = call(client, alice_token, f"{bob_id}/{action}", {"reason": "r", "archive_id": "a", "to": "email"})
        assert (answer.status_code, answer.get_json()["code"]) == (403, "staff_only"), action
    assert client.post(f"/api/v1/support/users/{bob_id}/export", json={"reason": "r"}).status_code == 401
    assert audit(db) == []


# -- what a tester found: hostile or racing requests -------------------------------------------


def test_support_cannot_act_on_a_staff_account_and_sees_the_same_404_as_for_no_user(
    client: FlaskClient, db: Database, staff_token: str
) -> None:
    with db.session(write=True) as session:
        admin = User(email="boss@example.com", role="admin")
        session.add(admin)
        session.flush()
        admin_id = admin.id
    make_token(db, admin_id, "admin's script")
    answer = call(client, staff_token, f"{admin_id}/revoke-credentials", {"reason": "x"})
    assert (answer.status_code, answer.get_json()["code"]) == (404, "unknown_user")
    with db.session() as session:
        assert [t.revoked_at for t in session.scalars(select(ApiToken).where(ApiToken.user_id == admin_id))] == [None]


def test_a_request_key_used_for_another_user_or_action_is_refused_not_answered_with_the_others_outcome(
    client: FlaskClient, db: Database, staff_token: str, alice_id: int, bob_id: int
) -> None:
    first = call(client, staff_token, f"{alice_id}/revoke-credentials", {"reason": "r", "request_key": "outage-1"})
    assert first.status_code == 200
    for path in (f"{bob_id}/revoke-credentials", f"{alice_id}/pause"):
        reused = call(client, staff_token, path, {"reason": "r", "request_key": "outage-1"})
        assert (reused.status_code, reused.get_json()["code"]) == (409, "request_key_reused"), path
    assert len(audit(db)) == 1


def test_a_client_key_cannot_pose_as_a_bulk_jobs_own_key(
    client: FlaskClient, db: Database, staff_token: str, alice_id: int
) -> None:
    answer = call(client, staff_token, f"{alice_id}/revoke-credentials", {"reason": "r", "request_key": "bulk:ab:1"})
    assert answer.status_code == 200
    assert [row.request_key for row in audit(db)] == ["req:bulk:ab:1"]


def test_a_twin_request_that_loses_the_race_answers_with_the_winners_outcome(
    client: FlaskClient, db: Database, staff_token: str, alice_id: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    from jobs import support_actions

    first = call(client, staff_token, f"{alice_id}/export", {"reason": "r", "request_key": "twin"})
    # The twin read "not done" before the first committed (PostgreSQL under a double click):
    # its own insert of the same key then fails on the unique index.
    seen = {"calls": 0}
    real = support_actions.already_done

    def not_yet_the_first_time(session: Any, key: str | None) -> Any:
        seen["calls"] += 1
        return None if seen["calls"] <= 2 else real(session, key)

    monkeypatch.setattr(support_actions, "already_done", not_yet_the_first_time)
    twin = call(client, staff_token, f"{alice_id}/export", {"reason": "r", "request_key": "twin"})
    assert twin.status_code == 200, twin.get_json()
    assert twin.get_json()["repeated"] and twin.get_json()["run_id"] == first.get_json()["run_id"]
    assert len(audit(db)) == 1


def test_a_reason_loses_hidden_characters_and_a_lone_surrogate_is_stored_as_a_replacement(
    client: FlaskClient, db: Database, staff_token: str, alice_id: int
) -> None:
    reason = "Ticket\x1b[31m 9\u202e\x07 \ud800 done"
    answer = call(client, staff_token, f"{alice_id}/revoke-credentials", {"reason": reason})
    assert answer.status_code == 200
    assert [row.reason for row in audit(db)] == ["Ticket[31m 9 \ufffd done"]


def test_a_resend_to_email_is_refused_at_once_when_the_server_cannot_send_mail(
    client: FlaskClient, db: Database, app: Any, staff_token: str, alice_id: int
) -> None:
    from jobs import get_context

    app.config["SMTP_HOST"] = None
    with db.session(write=True) as session:
        run, _ = run_lifecycle.request_run(session, alice_id, "manual", now=utcnow())
    assert execute_run(get_context(app), run.id, "t") == RunState.DELIVERED
    with db.session() as session:
        archive_id = session.get(ExportRun, run.id).archive_id  # type: ignore[union-attr]
    answer = call(client, staff_token, f"{alice_id}/resend", {"archive_id": archive_id, "to": "email", "reason": "r"})
    assert (answer.status_code, answer.get_json()["code"]) == (409, "action_refused")
    assert "no mail server" in answer.get_json()["message"]
    with db.session() as session:
        assert list(session.scalars(select(ExportRun).where(ExportRun.trigger == "support"))) == []


def test_promoting_a_user_ends_their_own_api_tokens_so_none_opens_the_support_api(
    client: FlaskClient, db: Database, alice_id: int, alice_token: str
) -> None:
    from jobs.audit import Actor
    from jobs.staff_accounts import set_role

    with db.session(write=True) as session:
        set_role(
            session, Actor(None, "cli:test", "operator"), "alice@example.com", "support", reason="joins", now=utcnow()
        )
    answer = client.get("/api/v1/support/queue", headers=bearer(alice_token))
    assert answer.status_code == 401


def test_a_refused_action_sent_again_with_its_key_is_answered_409_again_and_audited_once(
    client: FlaskClient, db: Database, staff_token: str, alice_id: int
) -> None:
    body = {"reason": "user asked", "request_key": "resume-twice"}
    first = call(client, staff_token, f"{alice_id}/resume", body)
    again = call(client, staff_token, f"{alice_id}/resume", body)
    assert (first.status_code, first.get_json()["code"]) == (409, "action_refused")
    assert (again.status_code, again.get_json()["code"]) == (409, "action_refused")
    assert again.get_json()["message"].startswith("Nothing was done")
    assert [row.outcome for row in audit(db)] == ["refused"]
