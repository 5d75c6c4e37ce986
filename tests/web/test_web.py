"""The web layer: sign-in, CSRF, own data only, export now with progress, signed links, health."""

from __future__ import annotations

import datetime as dt
import re

from flask import Flask
from flask.testing import FlaskClient

from account.records import Account
from jobs import get_context
from jobs.download_links import create_link
from jobs.execute import execute_run
from store import Database
from store.accounts import replace_account
from tests.web.conftest import csrf_token
from web.links import make_token


def test_it_refuses_a_wrong_password_without_saying_which_part_was_wrong(app: Flask, alice_user: int) -> None:
    client = app.test_client()
    token = csrf_token(client, "/login")
    page = client.post("/login", data={"email": "alice@example.com", "password": "nope", "csrf_token": token})
    assert page.status_code == 200 and "Wrong email or password" in page.get_data(as_text=True)
    assert client.get("/").status_code == 302


def test_forms_without_a_csrf_token_are_refused(app: Flask, alice_user: int) -> None:
    client = app.test_client()
    response = client.post("/login", data={"email": "alice@example.com", "password": "correct horse"})
    assert response.status_code in (200, 400)
    assert client.get("/").status_code == 302  # not signed in


def test_export_now_runs_and_the_archive_downloads(app: Flask, signed_in: FlaskClient, alice_user: int) -> None:
    page = signed_in.get("/").get_data(as_text=True)
    assert "No archives yet" in page and "3</strong> contacts" in page
    token = csrf_token(signed_in, "/")
    response = signed_in.post("/export", data={"csrf_token": token})
    assert response.status_code == 302
    run_id = re.search(r'id="run-([0-9a-f]+)"', signed_in.get("/").get_data(as_text=True)).group(1)  # type: ignore[union-attr]  # no match fails the test
    status = signed_in.get(f"/runs/{run_id}.json").get_json()
    assert status["state"] == "queued"
    assert execute_run(get_context(app), run_id, "test-worker") == "delivered"
    status = signed_in.get(f"/runs/{run_id}.json").get_json()
    assert status["state"] == "delivered" and status["progress"] == 100 and status["archive_id"]
    download = signed_in.get(f"/archives/{status['archive_id']}/download")
    assert download.status_code == 200 and download.data[:2] == b"PK"
    assert download.headers["Content-Disposition"].startswith("attachment; filename=lifeboat-alice-")
    download.close()


def test_users_see_only_their_own_runs_and_archives(
    app: Flask, signed_in: FlaskClient, db: Database, alice: Account
) -> None:
    from dataclasses import replace

    from jobs import run_lifecycle
    from store.base import utcnow

    with db.session(write=True) as session:
        mallory = replace_account(session, replace(alice, email="mallory@example.com"))
        run, _ = run_lifecycle.request_run(session, mallory.id, "manual", now=utcnow())
        run_id = run.id
    execute_run(get_context(app), run_id, "w")
    with db.session() as session:
        from store import ExportRun

        archive_id = session.get(ExportRun, run_id).archive_id  # type: ignore[union-attr]  # the run exists
    assert signed_in.get(f"/runs/{run_id}.json").status_code == 404
    assert signed_in.get(f"/archives/{archive_id}/download").status_code == 404


def test_signed_links_open_one_archive_and_expire(app: Flask, db: Database, alice_user: int) -> None:
    from jobs import run_lifecycle
    from store import ExportRun
    from store.base import utcnow

    with db.session(write=True) as session:
        run, _ = run_lifecycle.request_run(session, alice_user, "manual", now=utcnow())
    execute_run(get_context(app), run.id, "w")
    with db.session() as session:
        row = session.get(ExportRun, run.id)
        assert row is not None and row.archive_id is not None
        archive_id = row.archive_id
    client = app.test_client()
    with db.session(write=True) as session:
        link_id = create_link(session, archive_id, alice_user, max_age=dt.timedelta(days=7), now=utcnow()).id
    good = make_token(app.config["SECRET_KEY"], link_id)
    opened = client.get(f"/d/{good}")
    assert opened.status_code == 200
    opened.close()
    assert client.get(f"/d/{good}x").status_code == 403
    forged = make_token("another-key", link_id)
    assert client.get(f"/d/{forged}").status_code == 403
    app.config["DOWNLOAD_LINK_MAX_AGE"] = -1
    expired = client.get(f"/d/{good}")
    assert expired.status_code == 410 and "expired" in expired.get_data(as_text=True)


def test_health_and_metrics_answer(app: Flask) -> None:
    client = app.test_client()
    assert client.get("/healthz").get_json() == {"status": "ok", "database": "ok"}
    text = client.get("/metrics").get_data(as_text=True)
    assert 'lifeboat_runs{state="delivered"} 0.0' in text
    assert "lifeboat_oldest_due_schedule_lag_seconds" in text
