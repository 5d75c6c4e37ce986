"""The support console's pages: the queue, find, one user's page, and (admins) the audit log.

Why read-only and metadata only: support answers "what happened?" without
ever reading a user's contacts, calendars or notes, so these pages show
states, times, receipts, checksums and masked credentials, and link to no
download. Actions (re-send, pause, …) are POST routes of their own; the user
page includes their buttons from `support/_actions.html`.

Each view of a user's page is written to the audit log (`view_user`): one
short write, and the user can then see in their history that support looked
at their account's status.
"""

from __future__ import annotations

import csv
import io
import json
import math
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from flask import (
    Blueprint,
    Response,
    abort,
    current_app,
    redirect,
    render_template,
    request,
    stream_with_context,
    url_for,
)
from flask_login import current_user
from werkzeug.wrappers import Response as BaseResponse

from errors import InvalidInput
from jobs.audit import Actor, record
from jobs.audit_search import (
    AuditFilter,
    audit_actions,
    audit_count,
    audit_page,
    audit_rows,
    known_actions,
    parse_filter,
)
from jobs.destination_backends import Registry
from jobs.support_lookup import UserSummary, find_users, next_run_at, user_summary
from jobs.support_queue import KIND_WORDS, KINDS, queue
from store import Archive, AuditEvent, ExportRun, User, get_db, get_session
from store.base import utcnow
from web.run_detail import AttemptView, StaffReadback, StageTiming, attempt_views, staff_readback, stage_timings
from web.run_view import RunView, run_views
from web.staff_access import staff_required

bp = Blueprint("support", __name__, url_prefix="/support")
PER_PAGE = 50
ZONE = "UTC"  # staff compare times with logs and with each other: one zone for all
AUDIT_COLUMNS = (
    "id",
    "at",
    "actor_id",
    "actor_email",
    "actor_role",
    "action",
    "target_user_id",
    "target_email",
    "reason",
    "address",
    "outcome",
    "detail",
)


# Far past any real queue, and small enough that its offset fits the database's 64-bit integers.
MAX_QUEUE_PAGE = 10**9


def _page_number(pages: int) -> int:
    return min(max(request.args.get("page", 1, type=int) or 1, 1), max(pages, 1))


def _last_page(endpoint: str, page: int, pages: int, args: dict[str, str]) -> BaseResponse | None:
    """A redirect to the last page when `page` is past it, else None.

    Why: a page past the end (an old link, the queue shrank since) showed the
    total ("27 items") above the empty state ("Nothing needs attention"),
    which contradict each other; the last page shows the items that exist.
    """
    if page <= pages:
        return None
    values: dict[str, Any] = {**args, "page": pages if pages > 1 else None}
    return redirect(url_for(endpoint, **values))


@bp.route("")
@staff_required()
def queue_page() -> str | BaseResponse:
    """What needs attention, newest first; `?kind=` keeps one kind."""
    kind = request.args.get("kind") or ""
    kinds = (kind,) if kind in KINDS else KINDS
    unknown = _unknown_kind(kind) if kind and kind not in KINDS else None
    page = _page_number(MAX_QUEUE_PAGE)  # the total is not known before the query: bound the offset instead
    found = queue(get_session(), now=utcnow(), kinds=kinds, limit=PER_PAGE, offset=(page - 1) * PER_PAGE)
    pages = max(1, math.ceil(found.total / PER_PAGE))
    if (back := _last_page("support.queue_page", page, pages, {"kind": kind} if kind in KINDS else {})) is not None:
        return back
    return render_template(
        "support/queue.html",
        items=found.items,
        total=found.total,
        kind=kind if kind in KINDS else "",
        kind_words=KIND_WORDS,
        unknown=unknown,
        page=page,
        pages=pages,
        zone=ZONE,
    )


def _unknown_kind(kind: str) -> str:
    """What to say of `?kind=` naming no kind: that everything is shown, and the kind it likely meant.

    Why: `?kind=missed` (for `missed_run`) silently showed everything (user trial).
    """
    text = kind.strip().lower()
    guesses = [k for k in KINDS if k.startswith(text) or text in KIND_WORDS[k].lower()] if text else []
    said = f"“{kind[:40]}” is not a kind of item, so everything is shown"
    if len(guesses) == 1:
        return f"{said}. Did you mean {KIND_WORDS[guesses[0]]} (kind={guesses[0]})?"
    return f"{said}: choose one under “Show”."


@bp.route("/find")
@staff_required()
def find() -> str:
    """Users by email prefix, user id, run id or archive SHA-256 (or its first 8+ digits)."""
    query = (request.args.get("q") or "").strip()[:320]
    hits = find_users(get_session(), query) if query else []
    return render_template("support/find.html", q=query, hits=hits, searched=bool(query))


@dataclass(frozen=True)
class RunRow:
    """One run on the user page: its state in words, stage timings, deliveries with receipts, archive metadata."""

    run: RunView
    stages: list[StageTiming]
    attempts: list[AttemptView]
    archive: Archive | None
    readback: StaffReadback | None  # the fidelity drill in counts and field names (`web.run_detail.staff_readback`)


def run_rows(session: Any, runs: list[ExportRun]) -> list[RunRow]:
    """The runs as the console and the staff API show them (small queries per run: deliveries, read-back)."""
    views = run_views(session, runs, ZONE, now=utcnow())  # "Kept here", not "Delivered", as the user reads it
    return [
        RunRow(
            view,
            stage_timings(r.history),
            attempt_views(session, r.id),
            r.archive,
            staff_readback(session, r.id),
        )
        for view, r in zip(views, runs, strict=True)
    ]


def registry() -> Registry:
    return Registry(dict(current_app.config))


def summary_or_404(user_id: int) -> UserSummary:
    summary = user_summary(get_session(), registry(), user_id)
    if summary is None or summary.user.role != "user":
        # Staff accounts hold no user data: the console has nothing to show of them.
        abort(404, "There is no user with this id. Find users by email, run id or archive checksum.")
    return summary


def record_view(staff_id: int, user_id: int, *, via: str) -> None:
    """One `view_user` audit row: the user can see that support looked (at metadata only)."""
    with get_db().session(write=True) as session:
        staff = session.get(User, staff_id)
        target = session.get(User, user_id)
        if staff is not None and target is not None:
            actor = Actor.of(staff, request.remote_addr)
            record(session, actor, "view_user", now=utcnow(), target=target, detail={"via": via})


@bp.route("/users/<int:user_id>")
@staff_required()
def user_page(user_id: int) -> str:
    summary = summary_or_404(user_id)
    record_view(int(current_user.get_id()), user_id, via="console")
    return render_template(
        "support/user.html",
        s=summary,
        # The target and what support can act on, for the actions partial (support/_actions.html).
        user=summary.user,
        archives=summary.archives,
        destinations=summary.destinations,
        schedule=summary.schedule,
        next_run=next_run_at(summary),
        runs=run_rows(get_session(), summary.runs),
        zone=ZONE,
    )


def _filters() -> tuple[AuditFilter, str | None]:
    try:
        return parse_filter(request.args, known_actions(get_session())), None
    except InvalidInput as exc:
        return AuditFilter(), "; ".join(message for _where, message in exc.problems) or str(exc)


@bp.route("/audit")
@staff_required("admin")
def audit() -> str | BaseResponse:
    """The audit log (admins): filter by actor, target user, action and days; export the same rows."""
    filters, problem = _filters()
    session = get_session()
    total = audit_count(session, filters)
    pages = max(1, math.ceil(total / PER_PAGE))
    args = {k: v for k, v in request.args.items() if k in ("actor", "target", "action", "since", "until") and v}
    if (back := _last_page("support.audit", _page_number(MAX_QUEUE_PAGE), pages, args)) is not None:
        return back
    page = _page_number(pages)
    rows = audit_page(session, filters, limit=PER_PAGE, offset=(page - 1) * PER_PAGE)
    return render_template(
        "support/audit.html",
        rows=rows,
        total=total,
        page=page,
        pages=pages,
        args=args,
        actions=audit_actions(session),
        problem=problem,
        zone=ZONE,
    )


def audit_dict(row: AuditEvent) -> dict[str, Any]:
    """One audit row for the exports and the API (the detail as a JSON object)."""
    values = {name: getattr(row, name) for name in AUDIT_COLUMNS}
    try:
        values["detail"] = json.loads(row.detail or "{}")
    except ValueError:
        values["detail"] = {"text": row.detail}
    return values


def _safe_cell(value: Any) -> Any:
    """Keep a spreadsheet from running a cell as a formula (a reason typed as `=HYPERLINK(…)`)."""
    if isinstance(value, str) and value[:1] in ("=", "+", "-", "@", "\t", "\r"):
        return "'" + value
    return value


def _export(kind: str) -> Response:
    filters, problem = _filters()
    if problem:
        abort(400, problem)
    session = get_session()

    def csv_lines() -> Iterator[str]:
        out = io.StringIO()
        writer = csv.writer(out)
        writer.writerow(AUDIT_COLUMNS)
        for row in audit_rows(session, filters):
            values = audit_dict(row)
            values["detail"] = json.dumps(values["detail"], sort_keys=True)
            values["at"] = row.at.isoformat()
            writer.writerow([_safe_cell(values[name]) for name in AUDIT_COLUMNS])
            yield out.getvalue()
            out.seek(0)
            out.truncate()
        yield out.getvalue()

    def json_lines() -> Iterator[str]:
        yield "["
        for at, row in enumerate(audit_rows(session, filters)):
            values = {**audit_dict(row), "at": row.at.isoformat()}
            yield ("," if at else "") + "\n" + json.dumps(values, sort_keys=True)
        yield "\n]\n"

    stamp = utcnow().strftime("%Y%m%dT%H%M%SZ")
    body, mimetype = (csv_lines(), "text/csv") if kind == "csv" else (json_lines(), "application/json")
    response = Response(stream_with_context(body), mimetype=mimetype)
    response.headers["Content-Disposition"] = f'attachment; filename="lifeboat-audit-{stamp}.{kind}"'
    response.headers["Cache-Control"] = "no-store"
    return response


@bp.route("/audit.csv")
@staff_required("admin")
def audit_csv() -> Response:
    return _export("csv")


@bp.route("/audit.json")
@staff_required("admin")
def audit_json() -> Response:
    return _export("json")
