"""/api/v1/support read routes: staff tokens only, the audit log for admins only, metadata only."""

from __future__ import annotations

import datetime as dt
import json
import uuid

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select

from jobs.audit import Actor, record
from store import AuditEvent, Database, User
from tests.api.conftest import bearer, make_token
from tests.web.conftest import make_staff
from tests.web.run_helpers import ETAG, KEY, VERSION
from tests.web.support_seed import ALICE_CONTENT, DENIED, KEY_ID, SECRET, Seeded, seed


@pytest.fixture
def seeded(app: Flask, db: Database, alice_id: int) -> Seeded:
    return seed(app, db, alice_id)


@pytest.fixture
def support_token(db: Database) -> str:
    return make_token(db, make_staff(db, "sam@support.example.com", "support"))


@pytest.fixture
def admin_token(db: Database) -> str:
    return make_token(db, make_staff(db, "ada@admin.example.com", "admin"))


def test_a_user_token_is_refused_with_staff_only_on_every_read_route(
    client: FlaskClient, alice_id: int, alice_token: str
) -> None:
    for path in ("/queue", "/users?q=a", f"/users/{alice_id}", "/audit"):
        response = client.get(f"/api/v1/support{path}", headers=bearer(alice_token))
        assert response.status_code == 403 and response.get_json()["code"] == "staff_only", path


def test_the_queue_lists_each_kind_pages_by_cursor_and_filters_by_kind(
    client: FlaskClient, seeded: Seeded, support_token: str
) -> None:
    whole = client.get("/api/v1/support/queue", headers=bearer(support_token)).get_json()
    assert whole["total"] == 7 and whole["next_cursor"] is None
    assert {(i["kind"], i["email"]) for i in whole["items"]} >= set(seeded.by_kind.items())
    times = [i["at"] for i in whole["items"]]
    assert times == sorted(times, reverse=True)
    first = client.get("/api/v1/support/queue?limit=4", headers=bearer(support_token)).get_json()
    rest = client.get(f"/api/v1/support/queue?limit=4&cursor={first['next_cursor']}", headers=bearer(support_token))
    assert first["items"] + rest.get_json()["items"] == whole["items"] and rest.get_json()["next_cursor"] is None
    retrying = client.get("/api/v1/support/queue?kind=retrying", headers=bearer(support_token)).get_json()
    assert [(i["kind"], i["email"]) for i in retrying["items"]] == [("retrying", "erin@queue.example")]
    wrong = client.get("/api/v1/support/queue?kind=everything", headers=bearer(support_token))
    assert wrong.status_code == 422


def test_find_users_by_run_id_and_checksum_prefix(client: FlaskClient, seeded: Seeded, support_token: str) -> None:
    dashed = str(uuid.UUID(hex=seeded.failed_run))  # the same run id as a UUID prints it
    for q in (seeded.failed_run, dashed, dashed.upper(), seeded.sha256[:12], "Alice@"):
        found = client.get("/api/v1/support/users", query_string={"q": q}, headers=bearer(support_token)).get_json()
        assert found["items"] == [
            {"id": seeded.alice, "email": "alice@example.com", "role": "user", "state": "active", "confirmed": True}
        ], q


def test_a_users_summary_has_receipts_masked_keys_and_checksums_but_no_content(
    db: Database, client: FlaskClient, seeded: Seeded, support_token: str
) -> None:
    response = client.get(f"/api/v1/support/users/{seeded.alice}", headers=bearer(support_token))
    assert response.status_code == 200
    body = response.get_json()
    text = json.dumps(body, ensure_ascii=False)
    delivered = next(r for r in body["runs"] if r["id"] == seeded.delivered_run)
    (receipt,) = delivered["attempts"]
    assert (receipt["object_key"], receipt["version_id"], receipt["etag"]) == (KEY, VERSION, ETAG)
    assert delivered["archive"]["sha256"] == seeded.sha256 and delivered["archive"]["counts"]["contacts"] == 3
    assert {s["name"] for s in delivered["stages"]} >= {"contacts", "deliver", "done"}
    failed = next(r for r in body["runs"] if r["id"] == seeded.failed_run)
    assert failed["attempts"][0]["message"] == DENIED and failed["state"] == "failed"
    keyed = next(d for d in body["destinations"] if d["status"] == "error")
    assert keyed["credentials"] == "access key AKIA…WXYZ (secret key stored encrypted)"
    assert keyed["last_attempt"]["outcome"] == "permanent"
    assert body["schedule"]["enabled"] and body["schedule"]["next_run_at"]
    assert SECRET not in text and KEY_ID not in text and "/d/" not in text and "download" not in text
    for content in ALICE_CONTENT:
        assert content not in text, content
    with db.session() as session:
        row = session.scalar(select(AuditEvent).where(AuditEvent.action == "view_user"))
        assert row is not None and row.target_user_id == seeded.alice and row.detail == '{"via": "api"}'
    missing = client.get("/api/v1/support/users/987654", headers=bearer(support_token))
    assert missing.status_code == 404
    error = missing.get_json()
    assert error["message"].startswith("There is no user with this id")
    assert not error.get("problems")  # no field to blame, and no "None" standing in for one


def test_the_audit_log_is_admin_only_and_filters(
    db: Database, client: FlaskClient, alice_id: int, support_token: str, admin_token: str
) -> None:
    refused = client.get("/api/v1/support/audit", headers=bearer(support_token))
    assert refused.status_code == 403 and refused.get_json()["code"] == "admin_only"
    with db.session(write=True) as session:
        sam = session.scalar(select(User).where(User.email == "sam@support.example.com"))
        alice = session.get(User, alice_id)
        assert sam is not None and alice is not None
        for day in (1, 2, 3):
            at = dt.datetime(2026, 12, day, 9, tzinfo=dt.UTC)
            record(session, Actor.of(sam), "export_now", now=at, target=alice, reason=f"day {day}")
    page = client.get("/api/v1/support/audit?limit=2&target=alice", headers=bearer(admin_token)).get_json()
    assert page["total"] == 3 and [e["reason"] for e in page["items"]] == ["day 3", "day 2"]
    assert page["next_cursor"] == "2" and page["items"][0]["detail"] == {}
    days = client.get("/api/v1/support/audit?since=2026-12-02&until=2026-12-02", headers=bearer(admin_token))
    assert [e["reason"] for e in days.get_json()["items"]] == ["day 2"]
    bad = client.get("/api/v1/support/audit?since=soon", headers=bearer(admin_token))
    assert bad.status_code == 400 and bad.get_json()["code"] == "invalid_filter"
    assert "YYYY-MM-DD" in bad.get_json()["problems"][0]["message"]
    for query, field in (("action=bogus", "action"), ("since=2026-12-03&until=2026-12-01", "until")):
        refused = client.get(f"/api/v1/support/audit?{query}", headers=bearer(admin_token)).get_json()
        assert refused["code"] == "invalid_filter" and refused["problems"][0]["field"] == field, refused


def test_support_actions_on_my_account_through_the_user_api(
    db: Database, client: FlaskClient, alice_id: int, alice_token: str
) -> None:
    with db.session(write=True) as session:
        alice = session.get(User, alice_id)
        assert alice is not None
        staff = Actor(user_id=99, email="sam@support.example.com", role="support", address="192.0.2.7")
        first, second = dt.datetime(2026, 12, 1, tzinfo=dt.UTC), dt.datetime(2026, 12, 2, tzinfo=dt.UTC)
        record(session, staff, "revoke_access", now=first, target=alice, reason="Leak")
        record(session, Actor(None, "system", "system"), "bulk_step", now=second, target=alice)  # not by support
    body = client.get("/api/v1/history/support", headers=bearer(alice_token)).get_json()
    assert body["items"] == [
        {
            "at": "2026-12-01T00:00:00+00:00",
            "action": "revoke_access",
            "what": "Revoked all your download links and API tokens",
            "reason": "Leak",
            "outcome": "ok",
            "outcome_label": "Done",
        }
    ]


def test_a_bad_staff_token_is_told_to_ask_an_admin_not_to_visit_settings(client: FlaskClient) -> None:
    response = client.get("/api/v1/support/queue", headers=bearer("lb_not_a_real_token"))
    assert response.status_code == 401
    message = response.get_json()["message"]
    assert "ask an admin" in message and "Settings" not in message
    user_api = client.get("/api/v1/me", headers=bearer("lb_not_a_real_token"))
    assert user_api.status_code == 401 and "create a new one in Settings" in user_api.get_json()["message"]
