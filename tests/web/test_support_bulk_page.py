"""/support/bulk-resend: staff dry-run, confirm and watch a bulk re-send; forms need CSRF; users get 403."""

from __future__ import annotations

import re

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select

from jobs import bulk_resend
from store import AuditEvent, Database, ExportRun, User
from store.passwords import hash_password
from tests.delivery.bulk_seed import OUTAGE, failed_user
from tests.web.conftest import PASSWORD, csrf_token, sign_in
from web.staff_access import STAFF_VERIFIED_KEY

FORM = {"since": "2026-12-05T08:00", "until": "2026-12-05T12:00", "kind": "", "host": "", "per_minute": "6000"}


@pytest.fixture
def staff_client(app: Flask, db: Database) -> FlaskClient:
    """A support member past their second factor; the job runs in the request (its outcome is there to check)."""
    app.extensions[bulk_resend.INLINE] = True
    with db.session(write=True) as session:
        session.add(User(email="helper@example.com", password_hash=hash_password(PASSWORD), role="support"))
    client = app.test_client()
    assert sign_in(client, "helper@example.com").status_code == 302
    with client.session_transaction() as flask_session:
        flask_session[STAFF_VERIFIED_KEY] = True
    return client


@pytest.fixture
def hit(db: Database) -> list[int]:
    return [
        failed_user(db, "m1@example.com", failed_at=OUTAGE, endpoint="https://minio.example"),
        failed_user(db, "mail@example.com", failed_at=OUTAGE, kind="email"),
    ]


def resent(db: Database) -> list[int]:
    with db.session() as session:
        return sorted(session.scalars(select(ExportRun.user_id).where(ExportRun.trigger == "support")))


def actions(db: Database) -> list[str]:
    with db.session() as session:
        return list(session.scalars(select(AuditEvent.action).order_by(AuditEvent.id)))


def hidden_fields(page: str) -> dict[str, str]:
    start = re.search(r'<form method="post" action="/support/bulk-resend/start">.*?</form>', page, re.S)
    assert start, page
    fields = {}
    for tag in re.findall(r"<input [^>]*>", start.group(0)):
        name, value = re.search(r'name="([^"]+)"', tag), re.search(r'value="([^"]*)"', tag)
        assert name and value and 'type="hidden"' in tag, tag
        fields[name.group(1)] = value.group(1)
    assert "csrf_token" in fields
    return fields


def test_dry_run_then_start_then_progress_re_sends_each_user_once(
    staff_client: FlaskClient, db: Database, hit: list[int]
) -> None:
    page = staff_client.get("/support/bulk-resend").get_data(as_text=True)
    assert 'aria-current="page">Bulk re-send</a>' in page and 'name="reason"' in page
    token = csrf_token(staff_client, "/support/bulk-resend")
    dry = staff_client.post("/support/bulk-resend", data={**FORM, "reason": "Outage 5 Dec", "csrf_token": token})
    text = dry.get_data(as_text=True)
    assert dry.status_code == 200, text
    assert "Dry run: 2 users would get their latest archive again" in text
    assert "m1@example.com" in text and "s3 (minio.example)" in text and "2.0 KB" in text
    assert resent(db) == [] and actions(db) == ["bulk_resend_dry_run"]

    confirm = hidden_fields(text)
    assert confirm["reason"] == "Outage 5 Dec" and confirm["request_key"]
    started = staff_client.post("/support/bulk-resend/start", data=confirm)
    assert started.status_code == 302
    job_url = started.headers["Location"]
    again = staff_client.post("/support/bulk-resend/start", data=confirm)  # a second press: the same job
    assert again.headers["Location"] == job_url and resent(db) == sorted(hit)

    progress = staff_client.get(job_url).get_data(as_text=True)
    assert '<progress id="bulk-progress" max="2" value="2">' in progress
    assert 'aria-live="polite"' in progress and "2 of 2 users done (2 re-sent, 0 skipped), finished." in progress
    status = staff_client.get(f"{job_url}/status.json").get_json()
    assert (status["done"], status["count"], status["state"]) == (2, 2, "finished")


def _started_not_running(staff_client: FlaskClient, monkeypatch: pytest.MonkeyPatch) -> tuple[str, str]:
    """(CSRF token, job page) of a bulk job started from the page whose runner never got going."""
    token = csrf_token(staff_client, "/support/bulk-resend")
    with monkeypatch.context() as patch:
        patch.setattr(bulk_resend, "run_in_background", lambda _app, _job: None)
        started = staff_client.post(
            "/support/bulk-resend/start", data={**FORM, "reason": "Outage", "csrf_token": token, "request_key": "k"}
        )
    return token, started.headers["Location"]


def test_pause_and_resume_from_the_job_page(
    staff_client: FlaskClient, app: Flask, db: Database, hit: list[int], monkeypatch: pytest.MonkeyPatch
) -> None:
    token, job_url = _started_not_running(staff_client, monkeypatch)
    assert "Pause</button>" in staff_client.get(job_url).get_data(as_text=True)
    pause = {"csrf_token": token, "reason": "MinIO flapping again"}
    assert staff_client.post(f"{job_url}/pause", data=pause).status_code == 302
    paused = staff_client.get(job_url).get_data(as_text=True)
    assert "0 of 2 users done" in paused and "paused" in paused and "Resume</button>" in paused
    staff_client.post(f"{job_url}/resume", data={"csrf_token": token, "reason": "MinIO steady for an hour"})
    assert "2 of 2 users done" in staff_client.get(job_url).get_data(as_text=True)
    assert actions(db).count("bulk_resend_paused") == actions(db).count("bulk_resend_resumed") == 1


def _control_reasons(db: Database) -> list[tuple[str, str]]:
    with db.session() as session:
        rows = session.execute(
            select(AuditEvent.action, AuditEvent.reason)
            .where(AuditEvent.action.in_(("bulk_resend_paused", "bulk_resend_resumed")))
            .order_by(AuditEvent.id)
        )
        return [(action, reason) for action, reason in rows]


def test_pause_and_resume_each_ask_a_reason_and_keep_the_one_typed_clean(
    staff_client: FlaskClient, app: Flask, db: Database, hit: list[int], monkeypatch: pytest.MonkeyPatch
) -> None:
    token, job_url = _started_not_running(staff_client, monkeypatch)
    page = staff_client.get(job_url).get_data(as_text=True)
    assert 'id="bulk-pause-reason" name="reason"' in page and 'id="bulk-resume-reason" name="reason"' in page
    for reason, words in (("", "Give a reason"), ("\x01\x1b", "Give a reason"), ("x" * 501, "501 characters")):
        refused = staff_client.post(f"{job_url}/pause", data={"csrf_token": token, "reason": reason})
        assert refused.status_code == 400 and words in refused.get_data(as_text=True)
    assert _control_reasons(db) == [] and "running" in staff_client.get(job_url).get_data(as_text=True)

    staff_client.post(f"{job_url}/pause", data={"csrf_token": token, "reason": "bucket\x00 flapping\u202e"})
    refused = staff_client.post(f"{job_url}/resume", data={"csrf_token": token, "reason": "  "})
    assert refused.status_code == 400 and "paused" in staff_client.get(job_url).get_data(as_text=True)
    staff_client.post(f"{job_url}/resume", data={"csrf_token": token, "reason": "steady again"})
    assert _control_reasons(db) == [
        ("bulk_resend_paused", "bucket\ufffd flapping"),
        ("bulk_resend_resumed", "steady again"),
    ]


def test_a_bad_window_is_refused_in_words_and_nothing_is_counted(
    staff_client: FlaskClient, db: Database, hit: list[int]
) -> None:
    token = csrf_token(staff_client, "/support/bulk-resend")
    data = {**FORM, "since": "2026-12-06T00:00", "until": "2026-12-05T00:00", "reason": "x", "csrf_token": token}
    answer = staff_client.post("/support/bulk-resend", data=data)
    page = answer.get_data(as_text=True)
    assert answer.status_code == 400 and "the start (since) must come before the end (until)" in page
    assert "--since" not in page  # a command-line flag means nothing on the form
    missing = staff_client.post("/support/bulk-resend", data={**FORM, "reason": "", "csrf_token": token})
    assert missing.status_code == 400 and "Give a reason" in missing.get_data(as_text=True)
    assert actions(db) == []


def test_forms_without_csrf_are_refused_and_send_nothing(
    staff_client: FlaskClient, db: Database, hit: list[int]
) -> None:
    for url in ("/support/bulk-resend", "/support/bulk-resend/start"):
        assert staff_client.post(url, data={**FORM, "reason": "x", "request_key": "k"}).status_code == 400
    assert resent(db) == [] and actions(db) == []


def test_a_regular_user_gets_403_and_the_signed_out_go_to_sign_in(app: Flask, signed_in: FlaskClient) -> None:
    assert app.test_client().get("/support/bulk-resend").headers["Location"].startswith("/login")
    assert signed_in.get("/support/bulk-resend").status_code == 403
    assert signed_in.get("/support/bulk-resend/feedfeedfeedfeed").status_code == 403
    token = csrf_token(signed_in, "/settings")
    assert signed_in.post("/support/bulk-resend", data={**FORM, "reason": "x", "csrf_token": token}).status_code == 403


def test_an_unknown_job_is_404(staff_client: FlaskClient) -> None:
    assert staff_client.get("/support/bulk-resend/feedfeedfeedfeed").status_code == 404
    assert staff_client.get("/support/bulk-resend/not-a-job/status.json").status_code == 404


def test_a_job_limited_to_one_user_a_minute_says_so_in_the_singular(
    staff_client: FlaskClient, db: Database, hit: list[int], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The job page said "at most 1 users a minute" (trial 14)."""
    monkeypatch.setattr(bulk_resend, "run_in_background", lambda _app, _job: None)
    token = csrf_token(staff_client, "/support/bulk-resend")
    data = {**FORM, "per_minute": "1", "reason": "Outage", "csrf_token": token, "request_key": "one"}
    page = staff_client.get(staff_client.post("/support/bulk-resend/start", data=data).headers["Location"])
    words = re.sub(r"\s+", " ", page.get_data(as_text=True))
    assert "at most 1 user a minute" in words and "1 users" not in words
