"""Prometheus metrics at /metrics, computed from the database at scrape time.

Why from the database: runs execute in other processes (Celery workers, other
web processes), so in-process counters would each see only a slice. The
database holds the truth for every process; a scrape costs a few indexed queries.
"""

from __future__ import annotations

import datetime as dt

from flask import Blueprint, Response
from prometheus_client import CollectorRegistry, Gauge, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST
from sqlalchemy import func, select

from jobs.dispatch import oldest_due_lag
from store import ExportRun, RunState, get_db, get_session
from store.base import utcnow

bp = Blueprint("metrics", __name__)


@bp.route("/metrics")
def metrics() -> Response:
    registry = CollectorRegistry()
    session = get_session()
    by_state = Gauge("lifeboat_runs", "Export runs by state (outcome)", ["state"], registry=registry)
    counts = dict(session.execute(select(ExportRun.state, func.count()).group_by(ExportRun.state)).all())
    for state in RunState:
        by_state.labels(state=state.value).set(counts.get(state.value, 0))
    Gauge("lifeboat_queue_depth", "Runs waiting to start (queued or retrying)", registry=registry).set(
        counts.get(RunState.QUEUED.value, 0) + counts.get(RunState.RETRYING.value, 0)
    )
    duration = Gauge(
        "lifeboat_run_duration_seconds",
        "Duration of finished runs over the last day",
        ["quantile"],
        registry=registry,
    )
    since = utcnow() - dt.timedelta(days=1)
    finished = session.execute(
        select(ExportRun.started_at, ExportRun.finished_at)
        .where(ExportRun.finished_at.is_not(None), ExportRun.finished_at >= since)
        .limit(10_000)
    ).all()
    seconds = sorted((f - s).total_seconds() for s, f in finished if s and f)
    for quantile in (0.5, 0.9, 0.99):
        duration.labels(quantile=str(quantile)).set(seconds[int(quantile * (len(seconds) - 1))] if seconds else 0)
    Gauge("lifeboat_oldest_due_schedule_lag_seconds", "How late the most overdue schedule is", registry=registry).set(
        oldest_due_lag(get_db(), now=utcnow())
    )
    return Response(generate_latest(registry), mimetype=CONTENT_TYPE_LATEST)
