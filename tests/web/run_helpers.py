"""Runs for the history tests: a destination that answers with a known receipt, and finished runs in bulk.

Why a fixed receipt here: the pages and the API only show what `jobs.execute`
stored; that the receipts themselves are what real servers returned is proved
in `tests/delivery/test_receipts.py`.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence

from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy.orm import Session

from delivery.contract import Delivery, Payload, Receipt
from errors import DeliveryError
from jobs import get_context, run_lifecycle
from jobs.execute import execute_run
from store import Database, Destination, ExportRun, RunState, User
from store.base import utcnow
from tests.web.conftest import csrf_token

KEY = "lifeboat/2026/12/lifeboat-alice-20261206T100000Z.zip"
VERSION = "3HL4kqtJlcpXroDTDmJ-rmSpXd3dIbrHY"
ETAG = "d41d8cd98f00b204e9800998ecf8427e-2"
BUCKET_LABEL = "My bucket at home"


class ReceiptDelivery(Delivery):
    """Delivers nowhere; fails first with `errors`, then answers with a receipt naming KEY, VERSION and ETAG."""

    kind = "memory"

    def __init__(self, *errors: DeliveryError) -> None:
        self.errors = list(errors)

    def deliver(self, payload: Payload) -> Receipt:
        if self.errors:
            raise self.errors.pop(0)
        return Receipt(
            location=f"s3://backups/{KEY}",
            detail="verified by HEAD: size and SHA-256 match",
            object_key=KEY,
            version_id=VERSION,
            etag=ETAG,
        )


def use_bucket(app: Flask, db: Database, user_id: int, backend: Delivery) -> int:
    """Give the user one destination row (for its label) that `backend` stands in for; returns its id."""
    with db.session(write=True) as session:
        row = Destination(user_id=user_id, kind="s3", label=BUCKET_LABEL)
        session.add(row)
        session.flush()
        key = row.id

    def destinations(_session: Session, _user: User) -> Sequence[tuple[int | None, Delivery]]:
        return [(key, backend)]

    get_context(app).destinations = destinations
    return key


def run_now(app: Flask, db: Database, user_id: int, trigger: str = "manual") -> tuple[str, str]:
    """Queue a run for the user and execute it here; (run id, outcome)."""
    with db.session(write=True) as session:
        run, _ = run_lifecycle.request_run(session, user_id, trigger, now=utcnow())
        run_id = run.id
    return run_id, execute_run(get_context(app), run_id, "test-worker")


def run_and_delete_its_archive(client: FlaskClient, db: Database, user_id: int) -> str:
    """A manual run delivered (kept here), then its only archive deleted as the user would: the run's id."""
    run_id, outcome = run_now(client.application, db, user_id)
    assert outcome == RunState.DELIVERED
    with db.session() as session:
        run = session.get(ExportRun, run_id)
        assert run is not None and run.archive_id is not None
        archive_id = run.archive_id
    token = csrf_token(client, f"/archives/{archive_id}/delete")
    assert client.post(f"/archives/{archive_id}/delete", data={"csrf_token": token}).status_code == 302
    return run_id


def finished_runs(db: Database, user_id: int, count: int, *, start: dt.datetime) -> list[str]:
    """`count` delivered runs, one an hour from `start`, without exporting (for paging)."""
    ids = []
    with db.session(write=True) as session:
        for n in range(count):
            at = start + dt.timedelta(hours=n)
            run = ExportRun(
                user_id=user_id,
                trigger="schedule",
                period_key=f"test:{n}",
                state="delivered",
                stage="done",
                progress=100,
                attempt=1,
                not_before=at,
                created_at=at,
                started_at=at,
                finished_at=at + dt.timedelta(seconds=90),
            )
            session.add(run)
            session.flush()
            ids.append(run.id)
    return ids
