"""History and run detail pages: every run, stage timings, receipts, errors in words, cancel, own runs only."""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import replace

from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select

from account.records import Account
from errors import DeliveryError
from jobs import get_context, run_lifecycle
from jobs.commands import DEMO_EMAIL, DEMO_PASSWORD, demo_command
from jobs.export import export_and_record
from store import Database, DeliveryAttempt, Destination, ExportRun, RunEvent, RunState, User
from store.accounts import replace_account
from store.base import utcnow
from tests.web.conftest import csrf_token, sign_in
from tests.web.run_helpers import (
    BUCKET_LABEL,
    ETAG,
    KEY,
    VERSION,
    ReceiptDelivery,
    finished_runs,
    run_and_delete_its_archive,
    run_now,
    use_bucket,
)
from web.formatting import local_time
from web.run_detail import stage_timings


def _text(response: object) -> str:
    return re.sub(r"\s+", " ", response.get_data(as_text=True))  # type: ignore[attr-defined]


def _queue(db: Database, user_id: int, trigger: str = "manual") -> str:
    with db.session(write=True) as session:
        run, _ = run_lifecycle.request_run(session, user_id, trigger, now=utcnow())
        return run.id


def test_history_lists_each_run_newest_first_in_words_with_duration_and_archive(
    app: Flask, db: Database, signed_in: FlaskClient, alice_user: int
) -> None:
    first, outcome = run_now(app, db, alice_user)
    assert outcome == RunState.DELIVERED
    queued = _queue(db, alice_user, "schedule")
    page = _text(signed_in.get("/history"))
    assert page.index(f'id="run-{queued}"') < page.index(f'id="run-{first}"')  # newest first
    assert "Your schedule" in page and "You pressed “Export now”" in page
    assert "Waiting to start" in page and "not finished" in page and "Kept here" in page  # no destination set
    assert "3 contacts" in page and re.search(r"\d+(\.\d)? KB", page)
    assert f'href="/runs/{first}"' in page and "2 exports" in page
    assert re.search(r"(under a second|\d+ s)</td>", page)  # how long the delivered one took


def test_history_shows_25_runs_a_page_with_links_between_pages(
    db: Database, signed_in: FlaskClient, alice_user: int
) -> None:
    ids = finished_runs(db, alice_user, 30, start=dt.datetime(2026, 11, 1, 2, 0, tzinfo=dt.UTC))
    first = _text(signed_in.get("/history"))
    assert first.count('<tr id="run-') == 25 and "page 1 of 2" in first
    assert f'id="run-{ids[-1]}"' in first and f'id="run-{ids[4]}"' not in first
    assert 'href="/history?page=2"' in first and "Newer exports" not in first
    second = _text(signed_in.get("/history?page=2"))
    assert second.count('<tr id="run-') == 5 and f'id="run-{ids[0]}"' in second
    assert 'href="/history?page=1"' in second and "1 min 30 s" in second
    assert signed_in.get("/history?page=99").status_code == 200  # past the end: the last page
    assert signed_in.get("/history?page=x").status_code == 200


def test_history_without_runs_says_what_to_do(signed_in: FlaskClient) -> None:
    page = _text(signed_in.get("/history"))
    assert "No exports yet" in page and "Export now" in page and "set a schedule" in page


def test_history_needs_sign_in_and_the_nav_marks_the_current_page(app: Flask, signed_in: FlaskClient) -> None:
    assert app.test_client().get("/history").status_code == 302
    history = signed_in.get("/history").get_data(as_text=True)
    assert re.search(r'<a href="/history" aria-current="page">History</a>', history)
    dashboard = signed_in.get("/").get_data(as_text=True)
    assert '<a href="/history">History</a>' in dashboard and 'aria-current="page">History' not in dashboard


def test_run_detail_shows_stage_timings_each_delivery_with_its_receipt_and_the_archive(
    app: Flask, db: Database, signed_in: FlaskClient, alice_user: int
) -> None:
    use_bucket(app, db, alice_user, ReceiptDelivery())
    run_id, outcome = run_now(app, db, alice_user)
    assert outcome == RunState.DELIVERED
    page = _text(signed_in.get(f"/runs/{run_id}"))
    stages = ("Starting", "Contacts", "Calendars", "Notes", "Reading the archive back", "Checking the archive")
    for stage in (*stages, "Delivering", "Done"):
        assert f'<td data-label="Stage">{stage}</td>' in page
    assert BUCKET_LABEL in page and KEY in page and VERSION in page and ETAG in page
    assert "Delivered" in page and "verified by HEAD" in page
    with db.session() as session:
        run = session.get(ExportRun, run_id)
        assert run is not None
        archive_id = run.archive_id
    assert f'href="/archives/{archive_id}/download"' in page
    with db.session() as session:
        archive = session.get(ExportRun, run_id).archive  # type: ignore[union-attr]
        assert archive is not None
        assert "Archive SHA-256" in page and archive.sha256 in page  # the receipt, for `lifeboat verify --expect`
    assert "Cancel this export" not in page  # it has ended
    assert "You pressed “Export now”" in page


def test_a_retrying_run_says_what_went_wrong_and_when_it_tries_again_in_the_users_zone(
    app: Flask, db: Database, signed_in: FlaskClient, alice_user: int
) -> None:
    refused = DeliveryError("503", permanent=False, user_message="The bucket server was busy (503).")
    use_bucket(app, db, alice_user, ReceiptDelivery(refused))
    run_id, outcome = run_now(app, db, alice_user)
    assert outcome == RunState.RETRYING
    page = _text(signed_in.get(f"/runs/{run_id}"))
    assert "The bucket server was busy (503). Lifeboat will try again in 60 seconds (attempt 1 of 5)." in page
    assert "Next attempt" in page and re.search(r"\d\d:\d\d CE[S]?T", page)  # Alice lives in Europe/Berlin
    assert "Failed; will be retried" in page and BUCKET_LABEL in page
    assert "Cancel this export" in page


def test_a_failed_run_reuses_the_lifecycles_words_for_what_to_do(
    app: Flask, db: Database, signed_in: FlaskClient, alice_user: int
) -> None:
    refused = DeliveryError("403", permanent=True, user_message="The bucket refused the key: check its policy.")
    use_bucket(app, db, alice_user, ReceiptDelivery(refused))
    run_id, outcome = run_now(app, db, alice_user)
    assert outcome == RunState.FAILED
    page = _text(signed_in.get(f"/runs/{run_id}"))
    assert "The bucket refused the key: check its policy." in page
    assert run_lifecycle.given_up(1, permanent=True) in page


def test_a_queued_run_is_cancelled_from_its_page_and_cannot_be_cancelled_twice(
    db: Database, signed_in: FlaskClient, alice_user: int
) -> None:
    run_id = _queue(db, alice_user)
    token = csrf_token(signed_in, f"/runs/{run_id}")
    assert "Cancel this export" in signed_in.get(f"/runs/{run_id}").get_data(as_text=True)
    response = signed_in.post(f"/runs/{run_id}/cancel", data={"csrf_token": token}, follow_redirects=True)
    page = _text(response)
    assert response.request.path == f"/runs/{run_id}" and "Export cancelled" in page
    assert "Cancelled" in page and "Cancel this export" not in page
    with db.session() as session:
        assert session.get(ExportRun, run_id).state == RunState.CANCELLED  # type: ignore[union-attr]
    again = signed_in.post(f"/runs/{run_id}/cancel", data={"csrf_token": token}, follow_redirects=True)
    assert "already ended (cancelled), so there was nothing to cancel" in _text(again)


def test_cancel_needs_the_forms_token_and_goes_back_only_within_the_site(
    db: Database, signed_in: FlaskClient, alice_user: int
) -> None:
    run_id = _queue(db, alice_user)
    assert signed_in.post(f"/runs/{run_id}/cancel").status_code == 400
    with db.session() as session:
        assert session.get(ExportRun, run_id).state == RunState.QUEUED  # type: ignore[union-attr]
    token = csrf_token(signed_in, "/")
    response = signed_in.post(f"/runs/{run_id}/cancel", data={"csrf_token": token, "next": "//evil.example/"})
    assert response.headers["Location"] == f"/runs/{run_id}"


def test_another_users_run_is_a_friendly_404_and_cannot_be_cancelled(
    app: Flask, db: Database, signed_in: FlaskClient, alice: Account
) -> None:
    with db.session(write=True) as session:
        mallory = replace_account(session, replace(alice, email="mallory@example.com"))
        mallory_id = mallory.id
    run_id = _queue(db, mallory_id)
    page = signed_in.get(f"/runs/{run_id}")
    assert page.status_code == 404 and "You have no export with this id" in page.get_data(as_text=True)
    assert "Back to your dashboard" in page.get_data(as_text=True)
    token = csrf_token(signed_in, "/")
    assert signed_in.post(f"/runs/{run_id}/cancel", data={"csrf_token": token}).status_code == 404
    with db.session() as session:
        assert session.get(ExportRun, run_id).state == RunState.QUEUED  # type: ignore[union-attr]
    assert f"run-{run_id}" not in signed_in.get("/history").get_data(as_text=True)
    assert signed_in.get("/runs/" + "0" * 32).status_code == 404


def test_the_dashboards_active_run_offers_cancel_and_comes_back_to_the_dashboard(
    db: Database, signed_in: FlaskClient, alice_user: int
) -> None:
    run_id = _queue(db, alice_user)
    dashboard = signed_in.get("/").get_data(as_text=True)
    assert f'action="/runs/{run_id}/cancel"' in dashboard and 'class="run-cancel"' in dashboard
    token = csrf_token(signed_in, "/")
    response = signed_in.post(f"/runs/{run_id}/cancel", data={"csrf_token": token, "next": "/"})
    assert response.status_code == 302 and response.headers["Location"] == "/"
    after = _text(signed_in.get("/"))
    assert "Export cancelled" in after and 'class="run-cancel"' not in after
    assert 'Last export</dt> <dd><span class="badge cancelled">Cancelled</span>' in after


def test_the_demos_first_archive_is_made_by_a_run_that_history_and_the_dashboard_both_show(
    app: Flask, db: Database
) -> None:
    """A bare export made the demo's archive: the dashboard read "Archive ready" while History said "No exports yet"."""
    result = app.test_cli_runner().invoke(demo_command)
    assert result.exit_code == 0, result.output
    client = app.test_client()
    assert sign_in(client, DEMO_EMAIL, DEMO_PASSWORD).status_code == 302
    with db.session() as session:
        user = session.scalar(select(User).where(User.email == DEMO_EMAIL))
        assert user is not None
        (run,) = session.scalars(select(ExportRun).where(ExportRun.user_id == user.id))
        assert run.state == "delivered" and run.archive_id is not None
        demo_id, run_id = user.id, run.id
    page = _text(client.get("/"))
    last = page[page.index("Last export") : page.index("Next export")]
    assert "Kept here" in last and f'href="/runs/{run_id}"' in last  # the demo has no destination
    history = _text(client.get("/history"))
    assert f'id="run-{run_id}"' in history and "No exports yet" not in history
    # An archive written outside any run later (`lifeboat export` at a terminal) is what the line then reads.
    later = utcnow() + dt.timedelta(minutes=1)  # times are whole seconds: a minute on, as at a terminal
    export_and_record(db, demo_id, get_context(app).files, now=later, default_vcard_version="3.0")
    page = _text(client.get("/"))
    last = page[page.index("Last export") : page.index("Next export")]
    assert "None yet" not in last and "Archive ready" in last


def test_stage_timings_follow_each_attempt_until_it_ends() -> None:
    t0 = dt.datetime(2026, 12, 6, 10, 0, tzinfo=dt.UTC)

    def at(seconds: int, kind: str, message: str = "") -> RunEvent:
        return RunEvent(kind=kind, message=message, at=t0 + dt.timedelta(seconds=seconds))

    history = [
        at(0, "queued"),
        at(1, "started"),
        at(3, "stage", "contacts"),
        at(10, "retry"),  # the first attempt ends in its contacts stage
        at(70, "started"),
        at(71, "stage", "contacts"),
        at(75, "stage", "deliver"),
        at(74, "exported"),  # written after an earlier stage line: not a stage
        at(80, "delivered"),
    ]
    timings = [(s.attempt, s.name, s.seconds) for s in stage_timings(history)]
    assert timings == [
        (1, "starting", 2.0),
        (1, "contacts", 7.0),
        (2, "starting", 1.0),
        (2, "contacts", 4.0),
        (2, "deliver", 5.0),
        (2, "done", None),
    ]
    running = stage_timings([at(0, "started"), at(2, "stage", "calendars")])
    assert [(s.name, s.seconds) for s in running] == [("starting", 2.0), ("calendars", None)]


def test_last_export_is_the_later_of_two_runs_requested_in_the_same_second(
    db: Database, signed_in: FlaskClient, alice_user: int
) -> None:
    """Times are whole seconds: a cancelled run and the export pressed right after it tie on time."""
    at = utcnow()
    with db.session(write=True) as session:
        for state in ("cancelled", "delivered"):
            session.add(ExportRun(user_id=alice_user, trigger="manual", state=state, created_at=at, finished_at=at))
            session.flush()
    page = _text(signed_in.get("/"))
    last = page[page.index("Last export") : page.index("Next export")]
    assert "Kept here" in last and "Cancelled" not in last  # delivered to no destination: kept here


def _failed_with(db: Database, user_id: int, outcomes: list[str]) -> str:
    """A failed run of `user_id` with one email destination per outcome, each attempted with that outcome."""
    run_id = _queue(db, user_id)
    with db.session(write=True) as session:
        places = [Destination(user_id=user_id, kind="email", label=f"email {n}", enabled=True) for n in outcomes]
        session.add_all(places)
        session.flush()
        run = session.get(ExportRun, run_id)
        assert run is not None
        run.state, run.error, run.finished_at = "failed", "The mail server refused old@example.com.", utcnow()
        for place, outcome in zip(places, outcomes, strict=True):
            session.add(DeliveryAttempt(run_id=run_id, destination_id=place.id, outcome=outcome, message=outcome))
    return run_id


def test_a_run_that_failed_after_some_destinations_got_their_copy_reads_partly_delivered(
    db: Database, signed_in: FlaskClient, alice_user: int
) -> None:
    """One broken destination fails the run while the others get their copy; "Failed" alone read as no copy."""
    run_id = _failed_with(db, alice_user, ["delivered", "permanent"])
    history = _text(signed_in.get("/history"))
    assert '<span class="badge partly">Partly delivered</span>' in history  # amber, not failed's red
    page = _text(signed_in.get(f"/runs/{run_id}"))
    assert "Partly delivered</span> Some of your destinations have this archive" in page
    assert "The mail server refused old@example.com." in page
    dashboard = _text(signed_in.get("/"))
    last = dashboard[dashboard.index("Last export") : dashboard.index("Next export")]
    assert "Partly delivered" in last
    status = signed_in.get(f"/runs/{run_id}.json").get_json()
    assert status["state"] == "failed" and status["state_label"] == "Partly delivered"
    assert status["label"] == "Failed: some destinations have the archive, not all."


def test_a_run_that_failed_before_any_destination_got_a_copy_still_reads_failed(
    db: Database, signed_in: FlaskClient, alice_user: int
) -> None:
    _failed_with(db, alice_user, ["permanent"])
    history = _text(signed_in.get("/history"))
    assert '<span class="badge failed">Failed</span>' in history and "Partly delivered" not in history


def test_after_its_only_archive_is_deleted_a_kept_here_run_says_archive_deleted_not_kept_here(
    db: Database, signed_in: FlaskClient, alice_user: int
) -> None:
    """A user trial: the overview said "Last export: Kept here" beside "No archives yet", and the run's
    page "Kept here — The archive is kept here only" beside "Archive: None", after the delete."""
    run_id = run_and_delete_its_archive(signed_in, db, alice_user)
    with db.session() as session:
        run = session.get(ExportRun, run_id)
        user = session.get(User, alice_user)
        assert run is not None and run.archive is not None and run.archive.deleted_at is not None and user
        deleted = local_time(run.archive.deleted_at, user.timezone)

    dashboard = _text(signed_in.get("/"))
    last = dashboard[dashboard.index("Last export") : dashboard.index("Next export")]
    assert '<span class="badge deleted">Archive deleted</span>' in last and "Kept here" not in last
    assert f"Deleted on {deleted}; Lifeboat keeps no copy of it." in last
    where = dashboard[dashboard.index("Where archives go") : dashboard.index("</dl>")]
    assert "Each new archive is kept here" in where and "Kept here, ready to download" not in where
    assert "No archives yet" in dashboard

    page = _text(signed_in.get(f"/runs/{run_id}"))
    state = page[page.index("<dt>State</dt>") : page.index("<dt>Requested by</dt>")]
    assert f"Archive deleted</span> The archive was kept here only, and was deleted on {deleted}." in state
    assert "Kept here" not in state and "is kept here only" not in state
    archive = page[page.index("<dt>Archive</dt>") : page.index("</dl>")]
    assert "Archive deleted on <time" in archive and ">None<" not in archive

    history = _text(signed_in.get("/history"))
    assert '<span class="badge deleted">Archive deleted</span>' in history and "Kept here" not in history
    status = signed_in.get(f"/runs/{run_id}.json").get_json()
    assert status["state"] == "delivered" and status["state_label"] == "Archive deleted"
    assert status["archive_deleted_at"] and status["archive_deleted"] in status["label"]
