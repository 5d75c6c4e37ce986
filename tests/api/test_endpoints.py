"""Each endpoint's behaviour: export now, runs, cancel, archives, schedule, destinations, tokens, counts."""

from __future__ import annotations

import datetime as dt

import pytest
from flask import Flask

from exporters.archive.counts import counts_line
from jobs import get_context, run_lifecycle
from jobs.execute import execute_run
from jobs.schedule import ScheduleSpec, jitter
from store import Database, ExportRun, RunState, User
from store.accounts import AccountReader
from store.base import utcnow
from tests.api.conftest import Call


def _export(app: Flask, as_user: Call) -> dict:
    run = as_user("post", "/api/v1/exports").get_json()
    assert execute_run(get_context(app), run["id"], "test-worker") == "delivered"
    return as_user("get", f"/api/v1/runs/{run['id']}").get_json()


def test_me_names_the_account_and_its_vcard_version(app: Flask, as_alice: Call) -> None:
    me = as_alice("get", "/api/v1/me").get_json()
    assert me["email"] == "alice@example.com"
    assert me["vcard_version"] == app.config["VCARD_VERSION"] and "timezone" in me


def test_counts_match_the_dashboard_figures(db: Database, alice_id: int, as_alice: Call) -> None:
    counts = as_alice("get", "/api/v1/counts").get_json()
    with db.session() as session:
        expected = AccountReader(session, session.get(User, alice_id)).counts().as_dict()  # type: ignore[arg-type]
    assert {k: counts[k] for k in expected} == expected
    assert counts["summary"] == counts_line(expected)
    assert "last_change_at" in counts


def test_export_now_is_idempotent_while_a_run_is_active(as_alice: Call) -> None:
    first = as_alice("post", "/api/v1/exports")
    second = as_alice("post", "/api/v1/exports")
    assert first.status_code == second.status_code == 202
    assert first.get_json()["id"] == second.get_json()["id"]
    assert first.headers["Location"].endswith(f"/api/v1/runs/{first.get_json()['id']}")
    assert first.get_json()["state"] == "queued"


def test_a_finished_run_reports_its_delivery_and_archive(app: Flask, as_alice: Call) -> None:
    run = _export(app, as_alice)
    assert run["state"] == "delivered" and run["progress"] == 100 and run["archive_id"]
    assert [e["kind"] for e in run["history"]][:2] == ["queued", "started"]
    assert run["next_attempt_at"] is None and run["error"] is None
    again = as_alice("post", "/api/v1/exports").get_json()
    assert again["id"] != run["id"]  # the earlier one ended: a new run


def test_runs_are_paginated_newest_first(db: Database, alice_id: int, as_alice: Call) -> None:
    ids = []
    for _ in range(5):
        with db.session(write=True) as session:
            run, _ = run_lifecycle.request_run(session, alice_id, "manual", now=utcnow())
            ids.append(run.id)
        run_lifecycle.cancel(db, run.id, alice_id, now=utcnow())
    seen, cursor = [], None
    while True:
        page = as_alice("get", "/api/v1/runs", query_string={"limit": 2, **({"cursor": cursor} if cursor else {})})
        body = page.get_json()
        assert len(body["items"]) <= 2
        seen += [r["id"] for r in body["items"]]
        cursor = body["next_cursor"]
        if cursor is None:
            break
    assert seen == list(reversed(ids))


def test_bad_pagination_arguments_are_422(as_alice: Call) -> None:
    for query in ({"limit": 0}, {"limit": 1000}, {"cursor": "../etc"}):
        response = as_alice("get", "/api/v1/runs", query_string=query)
        assert response.status_code == 422 and response.get_json()["code"] == "invalid_input"
        assert response.get_json()["problems"]


def test_cancel_a_queued_run(as_alice: Call) -> None:
    run = as_alice("post", "/api/v1/exports").get_json()
    response = as_alice("post", f"/api/v1/runs/{run['id']}/cancel")
    assert response.status_code == 202 and response.get_json()["state"] == "cancelled"
    assert as_alice("post", "/api/v1/exports").get_json()["id"] != run["id"]


def test_a_cancelled_running_run_stops_and_writes_nothing(app: Flask, db: Database, alice_id: int) -> None:
    """The executor's heartbeat finds the run no longer its own; its next progress report stops it."""
    from jobs import get_context

    ctx = get_context(app)
    with db.session(write=True) as session:
        run, _ = run_lifecycle.request_run(session, alice_id, "manual", now=utcnow())
    assert run_lifecycle.claim(db, run.id, "w", now=utcnow(), lease=dt.timedelta(minutes=5))
    assert run_lifecycle.cancel(db, run.id, alice_id, now=utcnow()) == RunState.CANCELLED
    assert not run_lifecycle.heartbeat(db, run.id, "w", now=utcnow(), lease=ctx.lease)
    assert not run_lifecycle.finish_delivered(db, run.id, "w", now=utcnow(), message="x")
    with db.session() as session:
        row = session.get(ExportRun, run.id)
        assert row is not None and row.state == "cancelled" and row.lease_owner is None


def test_cancelling_a_finished_run_is_409(app: Flask, as_alice: Call) -> None:
    run = _export(app, as_alice)
    response = as_alice("post", f"/api/v1/runs/{run['id']}/cancel")
    assert response.status_code == 409 and response.get_json()["code"] == "run_finished"


def test_archives_list_and_detail_with_the_manifest_summary(app: Flask, as_alice: Call) -> None:
    run = _export(app, as_alice)
    page = as_alice("get", "/api/v1/archives").get_json()
    assert [a["id"] for a in page["items"]] == [run["archive_id"]] and page["next_cursor"] is None
    archive = page["items"][0]
    assert len(archive["sha256"]) == 64 and archive["size"] > 0 and archive["counts"]["contacts"] == 3
    detail = as_alice("get", f"/api/v1/archives/{archive['id']}").get_json()
    assert detail["manifest"]["files"] > 3 and detail["manifest"]["format_version"] == 1
    assert "contacts" in detail["manifest"]["folders"]


def test_an_archive_whose_file_is_gone_is_410(app: Flask, db: Database, as_alice: Call) -> None:
    run = _export(app, as_alice)
    from store import Archive

    with db.session() as session:
        relpath = session.get(Archive, run["archive_id"]).relpath  # type: ignore[union-attr]
    get_context(app).files.delete(relpath)
    response = as_alice("get", f"/api/v1/archives/{run['archive_id']}")
    assert response.status_code == 410 and response.get_json()["code"] == "archive_gone"


def test_schedule_round_trip_and_switch_off(as_alice: Call) -> None:
    assert as_alice("get", "/api/v1/schedule").get_json()["enabled"] is False
    body = {"frequency": "daily", "time_of_day": "03:30", "timezone": "Europe/Berlin"}
    saved = as_alice("put", "/api/v1/schedule", json=body)
    assert saved.status_code == 200
    view = saved.get_json()
    assert view["enabled"] and view["frequency"] == "daily" and view["time_of_day"] == "03:30"
    assert view["next_run_at"] and "Europe/Berlin" in view["description"]
    assert as_alice("get", "/api/v1/schedule").get_json() == view
    off = as_alice("put", "/api/v1/schedule", json={"enabled": False}).get_json()
    assert off["enabled"] is False and off["next_run_at"] is None


def test_the_schedule_gives_the_fixed_delay_that_next_run_at_includes(alice_id: int, as_alice: Call) -> None:
    # User trial 9: a daily 02:00 schedule's next run at 02:02 had no stated reason.
    assert as_alice("get", "/api/v1/schedule").get_json()["delay_seconds"] is None  # no schedule yet
    body = {"frequency": "daily", "time_of_day": "02:00", "timezone": "UTC"}
    view = as_alice("put", "/api/v1/schedule", json=body).get_json()
    spec = ScheduleSpec(frequency="daily", time_of_day="02:00", timezone="UTC", user_id=alice_id)
    assert view["delay_seconds"] == jitter(spec).total_seconds()
    next_run = dt.datetime.fromisoformat(view["next_run_at"])
    assert (next_run - next_run.replace(hour=2, minute=0, second=0)).total_seconds() == view["delay_seconds"]


def test_an_invalid_schedule_is_422_naming_each_problem(as_alice: Call) -> None:
    response = as_alice("put", "/api/v1/schedule", json={"time_of_day": "25:99", "timezone": "Mars/Olympus"})
    assert response.status_code == 422
    body = response.get_json()
    assert body["code"] == "invalid_schedule"
    assert {p["field"] for p in body["problems"]} >= {"time_of_day", "timezone"}
    assert as_alice("get", "/api/v1/schedule").get_json()["enabled"] is False  # nothing written


def test_unknown_fields_are_422(as_alice: Call) -> None:
    response = as_alice("put", "/api/v1/schedule", json={"frequency": "daily", "sudo": True})
    assert response.status_code == 422 and response.get_json()["problems"][0]["field"] == "sudo"


def test_a_body_that_is_not_json_is_400_saying_so_not_the_browser_wording(as_alice: Call) -> None:
    """A user trial: `{bad json` got "The browser (or proxy) sent a request that this server could not understand"."""
    response = as_alice("put", "/api/v1/schedule", data="{bad json", content_type="application/json")
    body = response.get_json()
    assert response.status_code == 400 and body["code"] == "bad_request"
    assert body["message"] == 'The body is not valid JSON: send one JSON object, such as {"name": "value"}.'
    assert "browser" not in body["message"]
    assert as_alice("get", "/api/v1/schedule").get_json()["enabled"] is False  # nothing written


def test_email_destination_add_list_and_remove(as_alice: Call) -> None:
    added = as_alice("post", "/api/v1/destinations", json={"kind": "email", "to": "me@example.org"})
    assert added.status_code == 201
    destination = added.get_json()
    assert destination["settings"] == {"to": "me@example.org"}
    # Another address than the account's own waits for the link mailed to it (jobs.destination_confirmation).
    assert destination["status"] == "waiting" and destination["confirmed"] is False
    assert destination["confirmation_sent_at"] is not None
    assert [d["id"] for d in as_alice("get", "/api/v1/destinations").get_json()] == [destination["id"]]
    assert as_alice("delete", f"/api/v1/destinations/{destination['id']}").status_code == 204
    assert as_alice("get", "/api/v1/destinations").get_json() == []


def test_an_invalid_destination_is_422(as_alice: Call) -> None:
    response = as_alice("post", "/api/v1/destinations", json={"kind": "email", "to": "not an address"})
    assert response.status_code == 422 and response.get_json()["code"] == "invalid_destination"
    response = as_alice("post", "/api/v1/destinations", json={"kind": "ftp"})
    assert response.status_code == 422


def test_an_email_destinations_too_long_address_is_422_saying_it_is_too_long(as_alice: Call) -> None:
    # User trial: a 100,000-character address; the words say what is wrong and do not echo it back.
    response = as_alice("post", "/api/v1/destinations", json={"kind": "email", "to": "a" * 100_000 + "@example.com"})
    body = response.get_data(as_text=True)
    assert response.status_code == 422
    assert "That email address is too long (at most 254 characters)." in body and "a" * 300 not in body


@pytest.mark.server
def test_s3_destination_test_reports_a_wrong_key_in_words(
    app: Flask, as_alice: Call, moto_server: object, s3_bucket: str
) -> None:
    from tests.servers.s3 import ADMIN_KEYS

    app.config["ENDPOINT_ALLOW_LIST"] = ["127.0.0.0/8"]
    body = {
        "kind": "s3",
        "bucket": s3_bucket,
        "endpoint_url": moto_server.url,  # type: ignore[attr-defined]
        "path_style": True,
        "access_key_id": ADMIN_KEYS["aws_access_key_id"],
        "secret_access_key": ADMIN_KEYS["aws_secret_access_key"],
    }
    added = as_alice("post", "/api/v1/destinations", json=body)
    assert added.status_code == 201, added.get_json()
    destination = added.get_json()
    assert destination["has_secret"] and "secret_access_key" not in destination["settings"]
    assert ADMIN_KEYS["aws_secret_access_key"] not in added.get_data(as_text=True)
    tested = as_alice("post", f"/api/v1/destinations/{destination['id']}/test").get_json()
    assert tested["ok"] is True and tested["destination"]["status"] == "ok"
    missing = as_alice("post", "/api/v1/destinations", json={**body, "bucket": s3_bucket + "-missing"}).get_json()
    tested = as_alice("post", f"/api/v1/destinations/{missing['id']}/test").get_json()
    assert tested["ok"] is False and tested["message"] and tested["destination"]["status"] == "error"


def test_token_create_shows_the_secret_once(as_alice: Call) -> None:
    created = as_alice("post", "/api/v1/tokens", json={"name": "nightly", "expires_in_days": 7})
    assert created.status_code == 201
    body = created.get_json()
    assert body["token"].startswith("lb_") and body["active"]
    expires = dt.datetime.fromisoformat(body["expires_at"])
    assert dt.timedelta(days=6) < expires - utcnow() <= dt.timedelta(days=7)
    listing = as_alice("get", "/api/v1/tokens").get_data(as_text=True)
    assert body["token"] not in listing and "nightly" in listing
    assert as_alice("post", "/api/v1/tokens", json={"name": "x", "expires_in_days": 9999}).status_code == 422


def test_ids_and_queries_out_of_range_are_client_errors_not_crashes(as_alice: Call) -> None:
    """Found by schemathesis: a 20-digit destination id overflowed the driver; `?limt=` was ignored."""
    assert as_alice("delete", f"/api/v1/destinations/{2**70}").status_code == 404
    response = as_alice("get", "/api/v1/runs", query_string={"limt": 5})
    assert response.status_code == 422 and response.get_json()["problems"][0]["field"] == "limt"
    response = as_alice("put", "/api/v1/schedule", data="{}")  # not declared as JSON
    assert response.status_code == 415


def test_a_token_name_the_document_allows_is_accepted_and_one_it_refuses_is_refused(as_alice: Call) -> None:
    """Found by schemathesis: U+001C is whitespace to Python's `strip()` but not to the document's `\\s`."""
    for blank in ("\x1c\x1f", " \u3000\t", "\x85"):
        refused = as_alice("post", "/api/v1/tokens", json={"name": blank})
        assert refused.status_code == 422 and refused.get_json()["problems"][0]["field"] == "name"
    created = as_alice("post", "/api/v1/tokens", json={"name": "\u3000 nightly "})
    assert created.status_code == 201 and created.get_json()["name"] == "nightly"


def test_a_token_name_longer_than_the_settings_page_allows_is_refused_by_the_api_too(as_alice: Call) -> None:
    """The page took 100 characters and the API 200 (user trial): one limit for both."""
    refused = as_alice("post", "/api/v1/tokens", json={"name": "x" * 101})
    assert refused.status_code == 422 and refused.get_json()["problems"][0]["field"] == "name"
    assert as_alice("post", "/api/v1/tokens", json={"name": "x" * 100}).status_code == 201
