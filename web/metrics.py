"""Prometheus metrics at /metrics, computed from the database at scrape time.

Why from the database: runs execute in other processes (Celery workers, other
web processes), so in-process counters would each see only a slice. The
database holds the truth for every process; a scrape costs a few indexed queries.

Why protected: the figures say how many users and runs there are and when
exports fail, which is nobody else's business. With LIFEBOAT_METRICS_TOKEN set,
a scraper sends `Authorization: Bearer <token>`; without one, only clients on
this machine may scrape, and a request that came through a proxy (it carries
forwarding headers) does not count as one, since a proxy on the same machine
would otherwise make every visitor look local.
"""

from __future__ import annotations

import datetime as dt
import hmac
import ipaddress

from flask import Blueprint, Response, current_app, request
from prometheus_client import CollectorRegistry, Gauge, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST
from sqlalchemy import func, select

from jobs.dispatch import oldest_due_lag
from jobs.scrub import STATES as SCRUB_STATES
from store import DestinationCheck, ExportRun, RunState, get_db, get_session
from store.base import utcnow

bp = Blueprint("metrics", __name__)


_FORWARDING_HEADERS = ("Forwarded", "X-Forwarded-For", "X-Real-IP")


def _refusal() -> Response | None:
    """None if this request may read the metrics, else the 401/403 answer."""
    token = current_app.config["METRICS_TOKEN"]
    if token:
        scheme, _, given = request.headers.get("Authorization", "").partition(" ")
        if scheme.lower() == "bearer" and hmac.compare_digest(given.strip().encode(), str(token).encode()):
            return None
        return Response(
            "A bearer token is required (LIFEBOAT_METRICS_TOKEN).\n",
            401,
            {"WWW-Authenticate": 'Bearer realm="metrics"'},
            mimetype="text/plain",
        )
    if _is_local_client():
        return None
    return Response(
        "Metrics are only served to this machine; set LIFEBOAT_METRICS_TOKEN to scrape from elsewhere.\n",
        403,
        mimetype="text/plain",
    )


def _scrub_gauges(registry: CollectorRegistry) -> None:
    """Delivered copies by what their latest later check found (`jobs.scrub`), and the oldest such check."""
    session = get_session()
    by_state = Gauge(
        "lifeboat_scrubbed_destinations",
        "Destinations by what the latest check of their newest delivered archive found",
        ["state"],
        registry=registry,
    )
    counts = dict(session.execute(select(DestinationCheck.state, func.count()).group_by(DestinationCheck.state)).all())
    for state in (*SCRUB_STATES, *counts):
        by_state.labels(state=state).set(counts.get(state, 0))
    oldest = session.scalar(select(func.min(DestinationCheck.checked_at)))
    Gauge("lifeboat_scrub_oldest_check_age_seconds", "Age of the least recent scrub check", registry=registry).set(
        (utcnow() - oldest).total_seconds() if oldest else 0
    )


def _is_local_client() -> bool:
    if any(name in request.headers for name in _FORWARDING_HEADERS):
        return False
    try:
        address = ipaddress.ip_address((request.remote_addr or "").split("%", 1)[0])
    except ValueError:
        return False
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped.is_loopback
    return address.is_loopback


@bp.route("/metrics")
def metrics() -> Response:
    refusal = _refusal()
    if refusal is not None:
        return refusal
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
    _scrub_gauges(registry)
    return Response(generate_latest(registry), mimetype=CONTENT_TYPE_LATEST)
