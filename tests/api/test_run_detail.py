"""GET /api/v1/runs/<id>: each stage with its timing, each delivery attempt with its receipt, described in OpenAPI."""

from __future__ import annotations

import datetime as dt

from flask import Flask

from errors import DeliveryError
from store import Database, ExportRun
from tests.api.conftest import Call
from tests.web.run_helpers import BUCKET_LABEL, ETAG, KEY, VERSION, ReceiptDelivery, run_now, use_bucket


def test_a_run_reports_its_stages_and_each_attempt_with_its_receipt(
    app: Flask, db: Database, alice_id: int, as_alice: Call
) -> None:
    busy = DeliveryError("503", permanent=False, user_message="The bucket server was busy.")
    destination = use_bucket(app, db, alice_id, ReceiptDelivery(busy))
    run_id, outcome = run_now(app, db, alice_id)
    assert outcome == "retrying"
    run = as_alice("get", f"/api/v1/runs/{run_id}").get_json()
    assert run["next_attempt_at"] and "will try again" in run["error"]
    (failed,) = run["attempts"]
    assert failed["outcome"] == "transient" and failed["message"] == "The bucket server was busy."
    assert failed["destination"] == BUCKET_LABEL and failed["destination_id"] == destination
    assert failed["object_key"] is failed["version_id"] is failed["etag"] is failed["message_id"] is None
    assert failed["archive_sha256"] is None  # nothing was delivered
    names = [s["name"] for s in run["stages"]]
    assert names == ["starting", "contacts", "calendars", "notes", "readback", "verified", "deliver"]
    assert all(s["attempt"] == 1 for s in run["stages"])
    assert all(s["seconds"] is not None and s["seconds"] >= 0 for s in run["stages"])
    started = [dt.datetime.fromisoformat(s["started_at"]) for s in run["stages"]]
    assert started == sorted(started)


def test_a_delivered_runs_receipt_names_key_version_and_etag(
    app: Flask, db: Database, alice_id: int, as_alice: Call
) -> None:
    use_bucket(app, db, alice_id, ReceiptDelivery())
    run_id, outcome = run_now(app, db, alice_id)
    assert outcome == "delivered"
    run = as_alice("get", f"/api/v1/runs/{run_id}").get_json()
    (attempt,) = run["attempts"]
    assert (attempt["object_key"], attempt["version_id"], attempt["etag"]) == (KEY, VERSION, ETAG)
    assert attempt["location"] == f"s3://backups/{KEY}" and attempt["outcome"] == "delivered"
    with db.session() as session:
        stored = session.get(ExportRun, run_id)
        assert stored is not None and stored.archive is not None
        assert attempt["archive_sha256"] == stored.archive.sha256  # for `lifeboat verify --expect`
    assert run["stages"][-1] == {"attempt": 1, "name": "done", "started_at": run["finished_at"], "seconds": None}
    assert [e["kind"] for e in run["history"]].count("stage") == 6


def test_the_openapi_document_describes_stages_and_receipts(as_alice: Call) -> None:
    schemas = as_alice("get", "/api/v1/openapi.json").get_json()["components"]["schemas"]
    detail = schemas["RunDetail"]["properties"]
    assert {"stages", "attempts"} <= set(detail)
    attempt = schemas["DeliveryAttempt"]["properties"]
    receipt = {"object_key", "version_id", "etag", "message_id", "archive_sha256"}
    assert {"at", "destination", "outcome", "message", *receipt} <= set(attempt)
    assert {"name", "started_at", "seconds"} <= set(schemas["Stage"]["properties"])
