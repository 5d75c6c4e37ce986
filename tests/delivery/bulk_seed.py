"""Users whose deliveries failed at known times, each with a verified archive: the outage a bulk re-send repairs.

Rows are written directly (no export, no server): the bulk job reads only
attempts, destinations and archive rows, and queues runs through the real service.
"""

from __future__ import annotations

import datetime as dt

from store import Archive, Database, DeliveryAttempt, Destination, ExportRun, RunState, User

OUTAGE = dt.datetime(2026, 12, 5, 9, 0, tzinfo=dt.UTC)  # failures seeded from here, one an hour


def failed_user(
    db: Database,
    email: str,
    *,
    failed_at: dt.datetime,
    kind: str = "s3",
    endpoint: str = "",
    archive: bool = True,
    outcome: str = "transient",
) -> int:
    """A user with one enabled destination, a failed (or `outcome`) attempt at `failed_at` and a verified archive."""
    with db.session(write=True) as session:
        user = User(email=email)
        session.add(user)
        session.flush()
        settings = {"endpoint_url": endpoint, "bucket": "b"} if kind == "s3" else {"to": email}
        destination = Destination(user_id=user.id, kind=kind, label=f"{kind} of {email}")
        destination.settings = settings
        session.add(destination)
        made = failed_at - dt.timedelta(hours=1)
        if archive:
            session.add(
                Archive(
                    user_id=user.id,
                    filename=f"{email}.zip",
                    relpath=f"{user.id}/a.zip",
                    sha256="0" * 64,
                    size=2048,
                    created_at=made,
                    verified_at=made,
                )
            )
        run = ExportRun(user_id=user.id, trigger="schedule", state=RunState.FAILED, finished_at=failed_at)
        session.add(run)
        session.flush()
        session.add(
            DeliveryAttempt(
                run_id=run.id, destination_id=destination.id, at=failed_at, outcome=outcome, message="Outage"
            )
        )
        return user.id


def staff_member(db: Database, email: str = "helper@lifeboat.example", role: str = "support") -> int:
    with db.session(write=True) as session:
        user = User(email=email, display_name="Helper", role=role)
        session.add(user)
        session.flush()
        return user.id
