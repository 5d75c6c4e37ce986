"""A bulk re-send picks the users an outage hit, shows them first, then re-sends to each exactly once.

The re-send itself is `support_actions.resend_archive` (tested against real
servers in test_support_actions.py); here: who is selected, that a dry run
changes nothing, that a restarted or repeated job re-sends nobody twice, and
that a pause stops it between users.
"""

from __future__ import annotations

import datetime as dt
import json

import pytest
from flask import Flask
from flask.testing import FlaskCliRunner
from sqlalchemy import select

from errors import InvalidInput
from jobs import bulk_resend, get_context
from jobs.audit import Actor
from jobs.scheduler_loop import Dispatcher
from store import AuditEvent, BulkResendRunner, Database, DeliveryAttempt, ExportRun, RunState, User
from store.base import utcnow
from tests.delivery.bulk_seed import OUTAGE, failed_user, staff_member

HOUR = dt.timedelta(hours=1)


@pytest.fixture
def staff(db: Database) -> Actor:
    return Actor(staff_member(db), "helper@lifeboat.example", "support", "192.0.2.7")


@pytest.fixture
def outage(db: Database) -> dict[str, int]:
    """Five users hit (three on one MinIO host, one on AWS, one by email) and three who must not be picked."""
    return {
        "minio1": failed_user(db, "m1@example.com", failed_at=OUTAGE, endpoint="https://MinIO.example:9000"),
        "minio2": failed_user(db, "m2@example.com", failed_at=OUTAGE + HOUR, endpoint="https://minio.example:9000"),
        "minio3": failed_user(db, "m3@example.com", failed_at=OUTAGE + 2 * HOUR, endpoint="https://minio.example"),
        "aws": failed_user(db, "aws@example.com", failed_at=OUTAGE + HOUR),
        "mail": failed_user(db, "mail@example.com", failed_at=OUTAGE + HOUR, kind="email"),
        "before": failed_user(db, "early@example.com", failed_at=OUTAGE - 5 * HOUR, endpoint="https://minio.example"),
        "ok": failed_user(db, "fine@example.com", failed_at=OUTAGE + HOUR, outcome="delivered"),
        "no_archive": failed_user(db, "none@example.com", failed_at=OUTAGE + HOUR, archive=False),
    }


def window(**kw: str) -> bulk_resend.BulkFilter:
    return bulk_resend.parse_filter(OUTAGE.isoformat(), (OUTAGE + 3 * HOUR).isoformat(), **kw)


def emails(db: Database, flt: bulk_resend.BulkFilter) -> list[str]:
    with db.session() as session:
        return [c.email for c in bulk_resend.select_users(session, flt)]


def resend_runs(db: Database) -> list[int]:
    with db.session() as session:
        return sorted(session.scalars(select(ExportRun.user_id).where(ExportRun.trigger == "support")))


def audit_actions(db: Database) -> list[str]:
    with db.session() as session:
        return list(session.scalars(select(AuditEvent.action).order_by(AuditEvent.id)))


def test_selection_keeps_failures_inside_the_window_with_a_verified_archive(
    db: Database, outage: dict[str, int]
) -> None:
    assert emails(db, window()) == [
        "m1@example.com",
        "m2@example.com",
        "m3@example.com",
        "aws@example.com",
        "mail@example.com",
    ]


def test_selection_narrows_to_one_kind_or_one_endpoint_host(db: Database, outage: dict[str, int]) -> None:
    assert emails(db, window(kind="email")) == ["mail@example.com"]
    assert emails(db, window(host="minio.example")) == ["m1@example.com", "m2@example.com", "m3@example.com"]
    assert emails(db, window(host="aws")) == ["aws@example.com"]
    assert window(host="MinIO.example").kind == "s3"


@pytest.mark.parametrize(
    ("since", "until", "kind", "host", "problem"),
    [
        ("yesterday", "2026-12-06", None, None, "is not a time"),
        ("2026-12-06", "2026-12-05", None, None, "must come before the end"),
        ("2026-12-05", "2026-12-06", "ftp", None, "not 'ftp'"),
        ("2026-12-05", "2026-12-06", "email", "minio.example", "filters S3 endpoints"),
    ],
)
def test_a_bad_filter_is_refused_in_one_line_naming_the_problem(
    since: str, until: str, kind: str | None, host: str | None, problem: str
) -> None:
    with pytest.raises(InvalidInput) as raised:
        bulk_resend.parse_filter(since, until, kind, host)
    assert problem in str(raised.value).splitlines()[0]


def test_a_dry_run_shows_count_and_sample_and_writes_only_its_audit_row(
    db: Database, outage: dict[str, int], staff: Actor
) -> None:
    result = bulk_resend.dry_run(db, staff, window(host="minio.example"), reason="Outage of Dec 5", now=utcnow())
    assert result.count == 3
    first = result.sample[0]
    assert (first.email, first.failed_at, first.destination, first.archive_size) == (
        "m1@example.com",
        OUTAGE,
        "s3 (minio.example)",
        2048,
    )
    assert resend_runs(db) == []
    assert audit_actions(db) == ["bulk_resend_dry_run"]
    with db.session() as session:
        row = session.scalars(select(AuditEvent)).one()
        assert (row.reason, json.loads(row.detail)["count"]) == ("Outage of Dec 5", 3)


def test_a_real_run_re_sends_each_selected_user_once_and_running_it_again_sends_nobody_twice(
    db: Database, outage: dict[str, int], staff: Actor
) -> None:
    job = bulk_resend.start(db, staff, window(), reason="Outage of Dec 5", per_minute=None, now=utcnow())
    done = bulk_resend.run(db, job, now=utcnow)
    expected = sorted(outage[k] for k in ("minio1", "minio2", "minio3", "aws", "mail"))
    assert resend_runs(db) == expected
    assert (done.done, done.count, done.sent, done.state) == (5, 5, 5, "finished")
    again = bulk_resend.run(db, job, now=utcnow)
    assert resend_runs(db) == expected and again.describe() == done.describe()
    with db.session() as session:
        rows = list(session.scalars(select(AuditEvent).where(AuditEvent.action == "archive.resend")))
    assert {r.reason for r in rows} == {f"Outage of Dec 5 (bulk re-send {job})"}
    assert {r.actor_email for r in rows} == {"helper@lifeboat.example"}


def test_a_job_interrupted_after_some_users_finishes_the_rest_when_restarted(
    db: Database, outage: dict[str, int], staff: Actor
) -> None:
    job = bulk_resend.start(db, staff, window(), reason="Outage", per_minute=None, now=utcnow())
    partial = bulk_resend.run(db, job, now=utcnow, stop_after=2)
    assert (partial.done, partial.state) == (2, "running")
    assert len(resend_runs(db)) == 2
    finished = bulk_resend.run(db, job, now=utcnow, take_over=True)  # what `--job ID` and Continue do
    assert finished.done == 5 and len(resend_runs(db)) == len(set(resend_runs(db))) == 5


# -- a job whose runner died goes on by itself ------------------------------------------------


def runners(db: Database) -> list[tuple[str, str]]:
    with db.session() as session:
        return [(r.job_id, r.owner) for r in session.scalars(select(BulkResendRunner))]


def test_while_a_runner_holds_the_job_a_second_runner_starts_nothing(
    db: Database, outage: dict[str, int], staff: Actor
) -> None:
    job = bulk_resend.start(db, staff, window(), reason="Outage", per_minute=None, now=utcnow())
    bulk_resend.run(db, job, now=utcnow, stop_after=2, owner="web-1")  # then the process "dies", lease held
    assert bulk_resend.unattended(db, now=utcnow()) == []
    second = bulk_resend.run(db, job, now=utcnow, owner="scheduler-1")
    assert second.done == 2 and len(resend_runs(db)) == 2
    assert runners(db) == [(job, "web-1")]


def test_once_the_runners_lease_expires_the_next_dispatch_tick_finishes_the_job_sending_each_user_once(
    app: Flask, db: Database, outage: dict[str, int], staff: Actor
) -> None:
    job = bulk_resend.start(db, staff, window(), reason="Outage", per_minute=None, now=utcnow())
    bulk_resend.run(db, job, now=utcnow, stop_after=2, owner="web-1", lease=dt.timedelta(minutes=2))
    app.extensions[bulk_resend.INLINE] = True
    later = utcnow() + dt.timedelta(minutes=3)
    ctx = get_context(app)
    ctx.clock = lambda: later
    assert bulk_resend.unattended(db, now=later) == [job]
    Dispatcher(app).tick_once()  # the standalone dispatcher's tick; the embedded runtime calls the same
    assert bulk_resend.current_status(db, job).state == "finished"
    assert len(resend_runs(db)) == len(set(resend_runs(db))) == 5
    assert runners(db) == []  # a finished job leaves no runner row behind
    assert bulk_resend.continue_unattended(app) == []


def test_a_paused_job_is_not_continued_by_the_tick_however_old_its_lease(
    app: Flask, db: Database, outage: dict[str, int], staff: Actor
) -> None:
    job = bulk_resend.start(db, staff, window(), reason="Outage", per_minute=None, now=utcnow())
    bulk_resend.pause(db, staff, job, now=utcnow())
    assert bulk_resend.run(db, job, now=utcnow).done == 0
    assert bulk_resend.unattended(db, now=utcnow() + dt.timedelta(days=1)) == []
    bulk_resend.resume(db, staff, job, now=utcnow())
    assert bulk_resend.unattended(db, now=utcnow() + dt.timedelta(seconds=1)) == [job]


def test_continue_takes_the_job_from_a_live_runner_which_stops_before_its_next_user(
    db: Database, outage: dict[str, int], staff: Actor
) -> None:
    job = bulk_resend.start(db, staff, window(), reason="Outage", per_minute=600, now=utcnow())

    def someone_presses_continue(_seconds: float) -> None:
        assert bulk_resend.claim(db, job, "web-2", now=utcnow(), lease=dt.timedelta(minutes=2), take_over=True)

    first = bulk_resend.run(db, job, now=utcnow, sleep=someone_presses_continue, owner="web-1")
    assert first.done == 1 and runners(db) == [(job, "web-2")]
    rest = bulk_resend.run(db, job, now=utcnow, sleep=lambda _s: None, owner="web-2")
    assert rest.state == "finished" and len(resend_runs(db)) == len(set(resend_runs(db))) == 5


def test_a_user_whose_account_refuses_the_re_send_is_counted_skipped_and_not_retried(
    db: Database, outage: dict[str, int], staff: Actor
) -> None:
    from store import Destination

    with db.session(write=True) as session:
        for row in session.scalars(select(Destination).where(Destination.user_id == outage["aws"])):
            row.enabled = False
    job = bulk_resend.start(db, staff, window(), reason="Outage", per_minute=None, now=utcnow())
    done = bulk_resend.run(db, job, now=utcnow)
    assert (done.sent, done.skipped, done.state) == (4, 1, "finished")
    assert outage["aws"] not in resend_runs(db)


def test_a_paused_job_stops_between_users_and_resumes_where_it_stopped(
    db: Database, outage: dict[str, int], staff: Actor
) -> None:
    job = bulk_resend.start(db, staff, window(), reason="Outage", per_minute=30, now=utcnow())
    waits: list[float] = []

    def pause_after_the_second(seconds: float) -> None:
        waits.append(seconds)
        if len(waits) == 2:
            bulk_resend.pause(db, staff, job, now=utcnow())

    paused = bulk_resend.run(db, job, now=utcnow, sleep=pause_after_the_second)
    assert (paused.done, paused.state) == (2, "paused") and waits == [2.0, 2.0]
    assert bulk_resend.run(db, job, now=utcnow).done == 2  # still paused: nobody more
    assert bulk_resend.resume(db, staff, job, now=utcnow()).state == "running"
    assert bulk_resend.run(db, job, now=utcnow, sleep=lambda _s: None).state == "finished"
    assert len(resend_runs(db)) == 5
    assert audit_actions(db).count("bulk_resend_paused") == 1


def test_an_unknown_or_malformed_job_id_is_refused(db: Database) -> None:
    with db.session() as session:
        for job in ("0123456789abcdef", "%", "../x"):
            with pytest.raises(bulk_resend.UnknownJob):
                bulk_resend.status(session, job)


# -- the command line ---------------------------------------------------------------------------


def cli_args(*extra: str, staff: str = "helper@lifeboat.example") -> list[str]:
    since, until = OUTAGE.isoformat(), (OUTAGE + 3 * HOUR).isoformat()
    return ["support", "bulk-resend", "--since", since, "--until", until, "--as", staff, *extra]


def test_the_command_prints_a_dry_run_sample_then_runs_and_resumes_a_job_by_id(
    runner: FlaskCliRunner, db: Database, outage: dict[str, int], staff: Actor
) -> None:
    dry = runner.invoke(args=cli_args("--host", "minio.example", "--reason", "Outage", "--dry-run"))
    assert dry.exit_code == 0, dry.output
    assert dry.output.splitlines()[0].startswith("Dry run: 3 users would get their latest archive again")
    assert "  m1@example.com  failed 2026-12-05 09:00  s3 (minio.example)" in dry.output
    assert resend_runs(db) == []
    real = runner.invoke(args=cli_args("--host", "minio.example", "--reason", "Outage", "--per-minute", "6000"))
    assert real.exit_code == 0, real.output
    assert real.output.splitlines()[-1].endswith("3 of 3 users done (3 re-sent, 0 skipped), finished.")
    job = real.output.split()[3].rstrip(".")
    again = runner.invoke(args=["support", "bulk-resend", "--job", job, "--as", "helper@lifeboat.example"])
    assert again.exit_code == 0 and "3 of 3 users done" in again.output
    assert len(resend_runs(db)) == 3


@pytest.mark.parametrize(
    ("args", "problem"),
    [
        (cli_args("--reason", "x", "--dry-run", staff="nobody@example.com"), "not an active"),
        (cli_args("--dry-run"), "Give a reason"),
        (["support", "bulk-resend", "--job", "feedfeedfeedfeed", "--as", "helper@lifeboat.example"], "no bulk re-send"),
    ],
)
def test_the_command_refuses_in_one_line(runner: FlaskCliRunner, staff: Actor, args: list[str], problem: str) -> None:
    result = runner.invoke(args=args)
    assert result.exit_code == 1
    assert result.output.startswith("Error: ") and problem in result.output and len(result.output.splitlines()) == 1


def test_the_longest_reason_still_fits_each_users_audit_row(db: Database, outage: dict[str, int], staff: Actor) -> None:
    job = bulk_resend.start(db, staff, window(kind="email"), reason="x" * 500, per_minute=None, now=utcnow())
    assert bulk_resend.run(db, job, now=utcnow).sent == 1
    with db.session() as session:
        row = session.scalars(select(AuditEvent).where(AuditEvent.action == "archive.resend")).one()
    assert len(row.reason) == 500 and row.reason.endswith(f"(bulk re-send {job})")


# -- what a tester found ------------------------------------------------------------------------


def test_users_who_had_a_good_delivery_since_and_staff_accounts_are_not_selected(
    db: Database, outage: dict[str, int]
) -> None:
    recovered = failed_user(db, "back@example.com", failed_at=OUTAGE + HOUR)
    with db.session(write=True) as session:
        run = ExportRun(user_id=recovered, trigger="schedule", state=RunState.DELIVERED, finished_at=OUTAGE + 5 * HOUR)
        session.add(run)
        session.flush()
        session.add(
            DeliveryAttempt(run_id=run.id, destination_id=None, at=OUTAGE + 5 * HOUR, outcome="delivered", message="ok")
        )
    staff_with_failure = failed_user(db, "ops@example.com", failed_at=OUTAGE + HOUR)
    with db.session(write=True) as session:
        user = session.get(User, staff_with_failure)
        assert user is not None
        user.role = "support"
    picked = emails(db, window())
    assert "back@example.com" not in picked and "ops@example.com" not in picked
    assert "aws@example.com" in picked


def test_a_job_that_would_select_nobody_is_refused_in_one_line_and_not_created(db: Database, staff: Actor) -> None:
    with pytest.raises(InvalidInput, match="Nobody to re-send to") as refused:
        bulk_resend.start(db, staff, window(), reason="Outage", per_minute=None, now=utcnow())
    assert "Widen the window" in str(refused.value).splitlines()[0]  # what the pages and the CLI show
    assert audit_actions(db) == []


@pytest.mark.parametrize(
    ("since", "until"), [("0001-01-01T00:00+14:00", "2026-12-01"), ("2026-12-01", "9999-12-31T23:59-14:00")]
)
def test_a_time_past_the_ends_of_the_calendar_is_refused_in_words(since: str, until: str) -> None:
    with pytest.raises(InvalidInput, match="years 1 to 9999"):
        bulk_resend.parse_filter(since, until)


def test_a_runner_taking_the_job_over_waits_out_the_rate_before_its_first_user(
    db: Database, outage: dict[str, int], staff: Actor
) -> None:
    job = bulk_resend.start(db, staff, window(), reason="Outage", per_minute=6, now=utcnow())
    bulk_resend.run(db, job, now=utcnow, stop_after=1, owner="web-1", sleep=lambda _s: None)
    waits: list[float] = []
    bulk_resend.run(db, job, now=utcnow, owner="web-2", take_over=True, stop_after=1, sleep=waits.append)
    assert waits and 5 <= waits[0] <= 10  # the gap at 6 a minute, less the moments that passed


def test_a_window_from_the_first_year_reads_with_four_digit_years() -> None:
    """strftime's %Y wrote the year 1 as "1" on this libc, so the job page said "from 1-01-01" (trial 14)."""
    flt = bulk_resend.parse_filter("0001-01-01T00:00", "9999-12-31T23:59")
    assert flt.describe() == "deliveries that failed from 0001-01-01 00:00 to 9999-12-31 23:59 UTC"
