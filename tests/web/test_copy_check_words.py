"""The words for each thing a later check (scrub) can find, on the overview, the destinations and archive pages.

The check rows are written here as `jobs.scrub.record` writes them (tests/delivery/test_scrub_shown.py
proves that on moto's real server for a changed copy and a deleted bucket); these cover the other
states: a bucket that refuses new archives still holds the delivered copy, and a check that could not
look says nothing about the copy.
"""

from __future__ import annotations

import re

from flask import Flask
from flask.testing import FlaskClient

from delivery.contract import Delivery
from errors import DeliveryError
from jobs import get_context, support_queue
from store import Database, DeliveryAttempt, Destination, DestinationCheck, ExportRun
from store.base import utcnow
from tests.web.run_helpers import ReceiptDelivery, run_now


def _text(client: FlaskClient, path: str) -> str:
    response = client.get(path)
    assert response.status_code == 200, path
    return re.sub(r"\s+", " ", response.get_data(as_text=True))


def _checked(app: Flask, db: Database, user_id: int, state: str, detail: str) -> tuple[int, str]:
    """A real export, its delivery to a bucket, and a later check of that copy that found `state`."""
    run_id, _ = run_now(app, db, user_id)
    with db.session(write=True) as session:
        bucket = Destination(user_id=user_id, kind="s3", label="s3://mybackup", settings_json='{"bucket": "mybackup"}')
        session.add(bucket)
        session.flush()
        key = "lifeboat/2026/12/lifeboat-alice.zip"
        session.add(DeliveryAttempt(run_id=run_id, destination_id=bucket.id, outcome="delivered", object_key=key,
                                    location=f"s3://mybackup/{key}", message="uploaded and verified"))  # fmt: skip
        bucket.status, bucket.status_message = "ok", "uploaded and verified"
        session.add(DestinationCheck(destination_id=bucket.id, object_key=key, run_id=run_id, state=state,
                                     detail=detail, checked_at=utcnow(), since=utcnow()))  # fmt: skip
        run = session.get(ExportRun, run_id)
        assert run is not None and run.archive_id is not None
        return bucket.id, run.archive_id


def test_a_bucket_that_refuses_new_archives_warns_but_its_delivered_copy_still_reads_delivered(
    app: Flask, db: Database, signed_in: FlaskClient, alice_user: int
) -> None:
    detail = "s3://mybackup/lifeboat/.lifeboat-probe could not be written: AccessDenied"
    destination_id, archive_id = _checked(app, db, alice_user, "unwritable", detail)
    overview = _text(signed_in, "/")
    assert f'id="copy-warning-{destination_id}"' in overview and "s3://mybackup: refuses new archives since" in overview
    assert "What to do:</strong> Your delivered archive is still there, but the next one cannot be" in overview
    settings = _text(signed_in, "/settings/destinations")
    assert '<span class="badge failed">Refuses new archives</span> since' in settings
    archive = _text(signed_in, f"/archives/{archive_id}")
    delivered_to = archive[archive.index("Delivered to") : archive.index("Expires")]
    assert ">Delivered</span>" in delivered_to and "checked again" in delivered_to  # the copy is still there


def test_a_check_that_could_not_look_says_so_and_raises_no_warning(
    app: Flask, db: Database, signed_in: FlaskClient, alice_user: int
) -> None:
    destination_id, archive_id = _checked(app, db, alice_user, "error", "the store did not answer in 30 s")
    assert "copy-warning-" not in _text(signed_in, "/")
    settings = _text(signed_in, "/settings/destinations")
    assert f'id="copy-problem-{destination_id}"' not in settings
    line = settings[settings.index(f'id="copy-check-{destination_id}"') :]
    assert "could not look (the store did not answer in 30 s)" in line[: line.index("</dd>")]
    archive = _text(signed_in, f"/archives/{archive_id}")
    assert ">Delivered</span>" in archive[archive.index("Delivered to") : archive.index("Expires")]


def _support_items(db: Database) -> list[tuple[str, int | None]]:
    with db.session() as session:
        items = support_queue.queue(session, now=utcnow(), kinds=("copy_damaged",)).items
    return [(i.kind, i.destination_id) for i in items]


def test_a_later_delivery_clears_a_changed_copy_for_support_as_it_does_on_the_users_pages(
    app: Flask, db: Database, signed_in: FlaskClient, alice_user: int
) -> None:
    detail = "s3://mybackup/lifeboat/2026/12/lifeboat-alice.zip has another ETag"
    destination_id, _ = _checked(app, db, alice_user, "changed", detail)
    assert f'id="copy-warning-{destination_id}"' in _text(signed_in, "/")
    assert _support_items(db) == [("copy_damaged", destination_id)]

    def deliver_with(backend: Delivery) -> None:
        get_context(app).destinations = lambda _session, _user: [(destination_id, backend)]
        run_now(app, db, alice_user)

    # A later delivery there that failed puts no fresh copy in place: the finding stands for both.
    deliver_with(ReceiptDelivery(DeliveryError("Access Denied", permanent=True)))
    assert f'id="copy-warning-{destination_id}"' in _text(signed_in, "/")
    assert ("copy_damaged", destination_id) in _support_items(db)
    # One that delivered does: the user's overview and the support queue clear together.
    deliver_with(ReceiptDelivery())
    assert 'id="copy-warning-' not in _text(signed_in, "/")
    assert _support_items(db) == []
    with db.session() as session:
        assert session.get(DestinationCheck, destination_id) is not None  # the finding is kept for the old copy
