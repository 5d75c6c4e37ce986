"""/api/v1/support/bulk-resends: a staff token dry-runs, starts, watches, pauses and resumes a bulk re-send."""

from __future__ import annotations

from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select

from jobs import bulk_resend
from store import AuditEvent, Database, ExportRun
from tests.api.conftest import bearer, make_token
from tests.delivery.bulk_seed import OUTAGE, failed_user, staff_member

WINDOW = {"since": "2026-12-05T08:00:00", "until": "2026-12-05T12:00:00Z"}


@pytest.fixture
def staff_token(app: Flask, db: Database) -> str:
    app.extensions[bulk_resend.INLINE] = True  # the job runs in the request: its result is there to check
    return make_token(db, staff_member(db), "console")


@pytest.fixture
def hit(db: Database) -> list[int]:
    return [
        failed_user(db, "m1@example.com", failed_at=OUTAGE, endpoint="https://minio.example"),
        failed_user(db, "m2@example.com", failed_at=OUTAGE, endpoint="https://minio.example"),
        failed_user(db, "mail@example.com", failed_at=OUTAGE, kind="email"),
    ]


def post(client: FlaskClient, token: str, path: str, body: dict[str, Any], **headers: str) -> Any:
    return client.post(f"/api/v1/support/bulk-resends{path}", json=body, headers={**bearer(token), **headers})


def resent(db: Database) -> list[int]:
    with db.session() as session:
        return sorted(session.scalars(select(ExportRun.user_id).where(ExportRun.trigger == "support")))


def test_a_dry_run_answers_count_and_sample_and_queues_nothing(
    client: FlaskClient, db: Database, staff_token: str, hit: list[int]
) -> None:
    answer = post(client, staff_token, "", {**WINDOW, "kind": "s3", "reason": "Outage", "dry_run": True})
    assert answer.status_code == 200, answer.get_json()
    body = answer.get_json()
    assert (body["dry_run"], body["count"], body["job"]) == (True, 2, None)
    assert [s["email"] for s in body["sample"]] == ["m1@example.com", "m2@example.com"]
    assert body["sample"][0]["destination"] == "s3 (minio.example)"
    assert resent(db) == []


def test_a_started_job_re_sends_once_per_user_and_a_retried_call_finds_the_same_job(
    client: FlaskClient, db: Database, staff_token: str, hit: list[int]
) -> None:
    body = {**WINDOW, "reason": "Outage", "per_minute": 6000}
    first = post(client, staff_token, "", body, **{"Idempotency-Key": "outage-1"}).get_json()
    job = first["job"]
    assert (job["count"], job["done"], job["sent"], job["state"], job["started_by"]) == (
        3,
        3,
        3,
        "finished",
        "helper@lifeboat.example",
    )
    again = post(client, staff_token, "", body, **{"Idempotency-Key": "outage-1"}).get_json()
    assert again["job"]["job_id"] == job["job_id"] and resent(db) == sorted(hit)
    status = client.get(f"/api/v1/support/bulk-resends/{job['job_id']}", headers=bearer(staff_token))
    assert status.status_code == 200 and status.get_json()["done"] == 3


def test_pause_and_resume_change_the_state_and_resume_finishes_the_rest(
    client: FlaskClient, db: Database, staff_token: str, hit: list[int], monkeypatch: pytest.MonkeyPatch
) -> None:
    with monkeypatch.context() as patch:  # started, but its runner never got going (say, the server restarted)
        patch.setattr(bulk_resend, "run_in_background", lambda _app, _job: None)
        job = post(client, staff_token, "", {**WINDOW, "reason": "Outage"}).get_json()["job"]
    assert (job["done"], job["state"]) == (0, "running")
    paused = post(client, staff_token, f"/{job['job_id']}/pause", {"reason": "Bucket still flaky"})
    assert paused.get_json()["state"] == "paused"
    resumed = post(client, staff_token, f"/{job['job_id']}/resume", {})
    assert (resumed.get_json()["state"], resumed.get_json()["done"]) == ("finished", 3)
    assert resent(db) == sorted(hit)


def test_a_pause_reason_with_nul_is_kept_clean_and_one_of_only_control_characters_is_refused(
    client: FlaskClient, db: Database, staff_token: str, hit: list[int], monkeypatch: pytest.MonkeyPatch
) -> None:
    """A NUL in the reason made PostgreSQL refuse the audit row (a 500, trial 14); now it is U+FFFD, as everywhere."""
    monkeypatch.setattr(bulk_resend, "run_in_background", lambda _app, _job: None)
    job = post(client, staff_token, "", {**WINDOW, "reason": "Outage"}).get_json()["job"]
    refused = post(client, staff_token, f"/{job['job_id']}/pause", {"reason": "\x01\x1b"})
    assert refused.status_code == 422 and refused.get_json()["code"] == "invalid_input"
    paused = post(client, staff_token, f"/{job['job_id']}/pause", {"reason": "still\x00 flaky"})
    assert paused.get_json()["state"] == "paused"
    with db.session() as session:
        reasons = session.scalars(select(AuditEvent.reason).where(AuditEvent.action == "bulk_resend_paused"))
        assert list(reasons) == ["still\ufffd flaky"]


@pytest.mark.parametrize(
    ("path", "body", "status", "code"),
    [
        ("", {**WINDOW, "reason": ""}, 422, "invalid_input"),
        ("", {"since": "2026-12-06T00:00:00Z", "until": "2026-12-05T00:00:00Z", "reason": "x"}, 422, "invalid_input"),
        ("", {**WINDOW, "kind": "email", "host": "minio.example", "reason": "x"}, 422, "invalid_input"),
        ("/feedfeedfeedfeed/pause", {}, 404, "unknown_job"),
    ],
)
def test_bad_requests_answer_a_stable_error_code(
    client: FlaskClient, staff_token: str, path: str, body: dict[str, Any], status: int, code: str
) -> None:
    answer = post(client, staff_token, path, body)
    assert answer.status_code == status, answer.get_json()
    assert answer.get_json()["code"] == code


def test_a_user_token_gets_403_and_no_job_is_started(
    client: FlaskClient, db: Database, alice_token: str, hit: list[int]
) -> None:
    answer = post(client, alice_token, "", {**WINDOW, "reason": "x"})
    assert answer.status_code == 403 and answer.get_json()["code"] == "staff_only"
    assert client.get("/api/v1/support/bulk-resends/feedfeedfeedfeed", headers=bearer(alice_token)).status_code == 403
    assert resent(db) == []
