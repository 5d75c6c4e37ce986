"""The support queue, find and the audit filters on PostgreSQL: the same answers as on SQLite.

Why here: the queue is one UNION ALL of window functions, aggregates and
casts, the kind of SQL where the two databases differ (types of NULLs and
literals in a union, timestamp comparisons); the console's tests run on SQLite.
"""

from __future__ import annotations

import datetime as dt

import pytest

from jobs.audit import Actor, record
from jobs.audit_search import AuditFilter, audit_count, audit_page, support_actions
from jobs.support_lookup import find_users
from jobs.support_queue import KINDS, queue
from store import (
    Archive,
    Database,
    DeliveryAttempt,
    Destination,
    DestinationCheck,
    ExportFidelity,
    ExportRun,
    Schedule,
    User,
)

pytestmark = pytest.mark.scale  # PostgreSQL: the scale-out run, not test-fast

NOW = dt.datetime(2026, 12, 6, 12, tzinfo=dt.UTC)
HOUR = dt.timedelta(hours=1)


def _seed(db: Database) -> dict[str, int]:
    """One user per kind, and one who is fine; returns the user id by kind."""
    ids: dict[str, int] = {}
    with db.session(write=True) as s:
        users = {name: User(email=f"{name}@pg.example", created_at=NOW - 30 * 24 * HOUR) for name in (*KINDS, "fine")}
        s.add_all(users.values())
        s.flush()
        ids = {name: user.id for name, user in users.items()}
        ok = ExportRun(
            user_id=ids["delivery_failed"], trigger="schedule", state="delivered", finished_at=NOW - 3 * HOUR
        )
        bad = ExportRun(user_id=ids["delivery_failed"], trigger="schedule", state="failed", period_key="2")
        bad.finished_at = NOW - HOUR
        s.add_all([ok, bad])
        s.flush()
        s.add(Archive(user_id=ids["delivery_failed"], filename="a.zip", relpath="a.zip", sha256="ab" * 32, size=10))
        s.add(DeliveryAttempt(run_id=ok.id, at=NOW - 3 * HOUR, outcome="delivered", message="ok"))
        s.add(DeliveryAttempt(run_id=bad.id, at=NOW - HOUR, outcome="permanent", message="Access Denied"))
        s.add(ExportRun(user_id=ids["run_failed"], trigger="schedule", state="failed", finished_at=NOW - 2 * HOUR))
        s.add(Destination(user_id=ids["destination_error"], kind="s3", label="b", status="error", status_at=NOW))
        damaged = Destination(user_id=ids["copy_damaged"], kind="s3", label="c")
        s.add(damaged)
        s.flush()
        s.add(
            DestinationCheck(
                destination_id=damaged.id, object_key="c.zip", state="missing", detail="gone", checked_at=NOW - 6 * HOUR
            )
        )
        s.add(Schedule(user_id=ids["missed_run"], frequency="weekly", enabled=True))
        s.add(ExportRun(user_id=ids["stuck_run"], trigger="manual", state="running", lease_expires_at=NOW - 4 * HOUR))
        s.add(ExportRun(user_id=ids["retrying"], trigger="manual", state="retrying", started_at=NOW - 5 * HOUR))
        drilled = ExportRun(user_id=ids["drill_differences"], trigger="manual", state="delivered")
        s.add(drilled)
        s.flush()
        s.add(
            ExportFidelity(
                run_id=drilled.id,
                items=12_000,
                differences=1_234,
                changes=0,
                detail="{}",
                checked_at=NOW - 7 * HOUR,
                difference_fields="contact emails[0].value",
            )
        )
        s.add(Schedule(user_id=ids["fine"], frequency="daily", enabled=True))
        s.add(ExportRun(user_id=ids["fine"], trigger="schedule", state="delivered", finished_at=NOW - HOUR))
    return ids


def test_the_queue_find_and_audit_filters_answer_on_postgresql(pg_db: Database) -> None:
    ids = _seed(pg_db)
    with pg_db.session() as session:
        page = queue(session, now=NOW)
        assert {(i.kind, i.user_id) for i in page.items} == {(k, ids[k]) for k in KINDS}
        assert page.total == len(KINDS)
        assert [i.kind for i in page.items][:2] == ["destination_error", "delivery_failed"]  # newest first
        assert all(i.at.tzinfo is not None for i in page.items)
        (drill,) = [i for i in page.items if i.kind == "drill_differences"]
        found = f"The fidelity drill found 1,234 differences in run {drill.run_id} (12,000 items read back)."
        assert drill.message.startswith(found)
        assert "Fields: contact emails[0].value." in drill.message
        only = queue(session, now=NOW, kinds=("stuck_run",), limit=5)
        assert [(i.kind, i.user_id) for i in only.items] == [("stuck_run", ids["stuck_run"])]
        for q in ("DELIVERY_FAILED@", "abababab", str(ids["delivery_failed"])):
            assert [h.id for h in find_users(session, q)] == [ids["delivery_failed"]], q
    with pg_db.session(write=True) as session:
        target = session.get(User, ids["fine"])
        record(session, Actor(1, "sam@support.example", "support"), "export_now", now=NOW, target=target, reason="r")
    with pg_db.session() as session:
        filters = AuditFilter(target="FINE@", since=NOW - HOUR, until=NOW + HOUR)
        assert audit_count(session, filters) == 1
        assert [e.action for e in audit_page(session, filters, limit=10, offset=0)] == ["export_now"]
        assert [a.what for a in support_actions(session, ids["fine"])] == ["Started a fresh export"]


def test_hostile_ids_and_twin_requests_are_answered_not_crashed_on_postgresql(pg_db: Database) -> None:
    """What a tester found: int4 overflow, NUL, and two requests with one key racing (each once a 500)."""
    import threading

    from jobs import support_actions
    from jobs.support_lookup import user_summary

    ids = _seed(pg_db)
    staff = Actor(None, "helper@pg.example", "support")
    with pg_db.session() as session:
        assert find_users(session, "2147483648") == [] and find_users(session, "a\ufffdb") == []
        assert user_summary(session, None, 2**31) is None  # type: ignore[arg-type]
        assert audit_count(session, AuditFilter(target="2147483648")) == 0
    with pytest.raises(support_actions.UnknownTarget):
        support_actions.pause_schedule(pg_db, staff, 2**31, reason="r", request_key=None, now=NOW)
    target, results, errors = ids["fine"], [], []

    def press() -> None:
        try:
            results.append(
                support_actions.revoke_credentials(pg_db, staff, target, reason="leak", request_key="req:twin", now=NOW)
            )
        except Exception as exc:  # the point is that none happens
            errors.append(exc)

    threads = [threading.Thread(target=press) for _ in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == [] and len(results) == 6
    assert sum(not r.repeated for r in results) == 1
    with pg_db.session() as session:
        assert audit_count(session, AuditFilter(action="credentials.revoke")) == 1
