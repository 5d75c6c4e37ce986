"""An email address waiting for its owner's confirmation is named as waiting, never as a place archives go.

The trial: with one destination, friend@example.net not yet confirmed, the run
page said "Add a destination to have a copy elsewhere" and "No destination is
set", the overview listed the address among "Where archives go", and settings
"Each archive also goes to 1 place: email friend@example.net".
"""

from __future__ import annotations

import re

from flask.testing import FlaskClient

from store import Database, Destination, RunState
from tests.web.run_helpers import BUCKET_LABEL, ReceiptDelivery, run_and_delete_its_archive, run_now, use_bucket

FRIEND = "email friend@example.net"
WAITING = f"{FRIEND} — waiting for its owner to confirm"


def _text(response: object) -> str:
    return re.sub(r"\s+", " ", response.get_data(as_text=True))  # type: ignore[attr-defined]


def _waiting_friend(db: Database, user_id: int) -> None:
    with db.session(write=True) as session:
        destination = Destination(user_id=user_id, kind="email", label=FRIEND, enabled=True)
        destination.settings = {"to": "friend@example.net"}
        session.add(destination)


def _between(page: str, start: str, end: str) -> str:
    return page[page.index(start) : page.index(end, page.index(start))]


def test_the_overview_and_settings_name_a_waiting_address_as_waiting_not_as_a_place(
    db: Database, signed_in: FlaskClient, alice_user: int
) -> None:
    _waiting_friend(db, alice_user)
    where = _between(_text(signed_in.get("/")), "Where archives go", "</dd>")
    assert where.endswith(f"ready to download; {WAITING}"), where
    settings = _between(_text(signed_in.get("/settings")), 'id="destinations-title"', "Manage destinations")
    assert "also goes to" not in settings and "Download only: your archives stay in Lifeboat" in settings
    assert f"Nothing goes yet to: {WAITING}." in settings


def test_a_run_that_skipped_a_waiting_address_names_it_instead_of_saying_no_destination_is_set(
    db: Database, signed_in: FlaskClient, alice_user: int
) -> None:
    _waiting_friend(db, alice_user)
    run_id, outcome = run_now(signed_in.application, db, alice_user)
    assert outcome == RunState.DELIVERED
    page = _text(signed_in.get(f"/runs/{run_id}"))
    state = _between(page, "<dt>State</dt>", "<dt>Requested by</dt>")
    assert f"The archive is kept here only. Not sent to {WAITING}." in state
    assert "Add a destination" not in state
    deliveries = _between(page, 'id="deliveries-title"', "</section>")
    assert f"Not sent to {WAITING}. The archive is kept here only." in deliveries
    assert "No destination" not in deliveries


def test_a_run_that_delivered_to_a_bucket_also_names_the_waiting_address_it_skipped(
    db: Database, signed_in: FlaskClient, alice_user: int
) -> None:
    use_bucket(signed_in.application, db, alice_user, ReceiptDelivery())
    _waiting_friend(db, alice_user)
    run_id, outcome = run_now(signed_in.application, db, alice_user)
    assert outcome == RunState.DELIVERED
    deliveries = _between(_text(signed_in.get(f"/runs/{run_id}")), 'id="deliveries-title"', "</section>")
    assert BUCKET_LABEL in deliveries and f"Not sent to {WAITING}." in deliveries
    where = _between(_text(signed_in.get("/")), "Where archives go", "</dd>")
    assert where.endswith(f"; {BUCKET_LABEL}; {WAITING}"), where


def test_after_the_only_archive_is_deleted_the_deliveries_say_it_was_deleted_not_ready_to_download(
    db: Database, signed_in: FlaskClient, alice_user: int
) -> None:
    run_id = run_and_delete_its_archive(signed_in, db, alice_user)
    deliveries = _between(_text(signed_in.get(f"/runs/{run_id}")), 'id="deliveries-title"', "</section>")
    assert "No destination was set, so the archive was kept here only, and was deleted on " in deliveries
    assert "ready to download" not in deliveries
