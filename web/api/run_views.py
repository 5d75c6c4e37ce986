"""API: export now, follow and cancel runs, list archives and read one's manifest and changes.

Someone else's run or archive answers exactly like one that does not exist
(404): every query is scoped to the token's user.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import asdict
from typing import Any, NoReturn

from flask import current_app, url_for
from marshmallow import RAISE
from sqlalchemy import select
from sqlalchemy.sql import Select

import jobs
from delivery.sealing import SealKey
from exporters.archive.manifest import MANIFEST_NAME, ArchiveError, parse_manifest
from exporters.archive.reader import read_member
from jobs import get_context, run_lifecycle
from jobs.archive_changes import change_page
from jobs.archive_options import seal_state
from jobs.delivery_places import delivered_places
from jobs.download_links import gone_words
from store import Archive, ExportRun, RunState, User, get_db, get_session
from store.archive_files import ArchiveFiles, ArchiveFilesError
from store.base import utcnow
from web.api import schemas
from web.api.blueprint import bp, fail, user_id
from web.run_detail import attempt_views, fidelity_view, owner_events, stage_timings

_NOT_FOUND = "You have no {} with this id."


def run_fields(run: ExportRun, delivered_to: list[str] | None = None) -> dict[str, Any]:
    """A run as the API shows it, to its user here and to support (web/api/support_read_views.py).

    `delivered_to`: where it arrived (`jobs.delivery_places`), read here when not given. Why beside
    `state`: a run that failed on one destination while others got their copy said only "failed"
    (user trial); `state` keeps its values, `partly_delivered` and `delivered_to` tell the rest.
    """
    if delivered_to is None:
        delivered_to = delivered_places(get_session(), [run.id]).get(run.id, [])
    return {
        "id": run.id,
        "trigger": run.trigger,
        "state": run.state,
        "stage": run.stage,
        "progress": run.progress,
        "attempt": run.attempt,
        "max_attempts": run.max_attempts,
        "created_at": run.created_at,
        "started_at": run.started_at,
        "finished_at": run.finished_at,
        "next_attempt_at": run.not_before if run.state == RunState.RETRYING else None,
        "error": run.error,
        "archive_id": run.archive_id,
        "delivered_to": delivered_to,
        "partly_delivered": run.state == RunState.FAILED and bool(delivered_to),
    }


def _page(query: Select[Any], column: Any, args: dict[str, Any]) -> tuple[list[Any], str | None]:
    """One page, newest first, by id (ids sort by creation time); the cursor is the last id shown."""
    if args.get("cursor"):
        query = query.where(column < args["cursor"])
    rows = list(get_session().scalars(query.order_by(column.desc()).limit(args["limit"] + 1)))
    more = len(rows) > args["limit"]
    rows = rows[: args["limit"]]
    return rows, (rows[-1].id if more and rows else None)


def _own_run(run_id: str) -> ExportRun:
    run = get_session().get(ExportRun, run_id)
    if run is None or run.user_id != user_id():
        fail(404, "not_found", _NOT_FOUND.format("export run"))
    return run


@bp.route("/exports", methods=["POST"])
@bp.response(202, schemas.RunSchema, headers={"Location": {"schema": {"type": "string"}}})
def export_now() -> tuple[dict[str, Any], int, dict[str, str]]:
    """Export now. While a run is active, calling again returns that same run (202 either way)."""
    with get_db().session(write=True) as session:
        run, created = run_lifecycle.request_run(session, user_id(), "api", now=utcnow())
        view = run_fields(run)
    if created:
        jobs.kick()
    return view, 202, {"Location": url_for("api.get_run", run_id=view["id"])}


@bp.route("/runs")
@bp.arguments(schemas.PageArgsSchema, location="query", unknown=RAISE)  # a typo (?limt=) is told
@bp.response(200, schemas.RunPageSchema)
def list_runs(args: dict[str, Any]) -> dict[str, Any]:
    """Your export runs, newest first."""
    rows, cursor = _page(select(ExportRun).where(ExportRun.user_id == user_id()), ExportRun.id, args)
    places = delivered_places(get_session(), [r.id for r in rows])  # one query for the page
    return {"items": [run_fields(r, places.get(r.id, [])) for r in rows], "next_cursor": cursor}


@bp.route("/runs/<run_id>")
@bp.response(200, schemas.RunDetailSchema)
def get_run(run_id: str) -> dict[str, Any]:
    """One run: state, stage, progress, attempts, next retry, what went wrong, each delivery and its receipt."""
    run = _own_run(run_id)
    return {
        **run_fields(run),
        "stages": [
            {"attempt": s.attempt, "name": s.name, "started_at": s.started_at, "seconds": s.seconds}
            for s in stage_timings(run.history)
        ],
        "attempts": [asdict(a) for a in attempt_views(get_session(), run.id)],
        "history": [asdict(e) for e in owner_events(run, stages=True)],
        "fidelity": asdict(view) if (view := fidelity_view(get_session(), run.id)) is not None else None,
    }


@bp.route("/runs/<run_id>/cancel", methods=["POST"])
@bp.response(202, schemas.RunSchema)
def cancel_run(run_id: str) -> dict[str, Any]:
    """Cancel a queued, retrying or running export; a running one stops at its next progress report."""
    state = run_lifecycle.cancel(get_db(), run_id, user_id(), now=utcnow())
    if state is None:
        fail(404, "not_found", _NOT_FOUND.format("export run"))
    if state != RunState.CANCELLED:
        fail(409, "run_finished", f"This export already ended ({state}); there is nothing to cancel.")
    with get_db().session() as session:
        run = session.get(ExportRun, run_id)
        assert run is not None
        return run_fields(run)


def _archive_view(archive: Archive, seal: SealKey | None) -> dict[str, Any]:
    """An archive as the API shows it; `seal`, its owner's key, says how a download link serves it."""
    sealed = None
    if seal is not None:
        filename = archive.filename + seal.suffix
        sealed = {
            "kind": seal.kind,
            "sealed_to": seal.label,
            "filename": filename,
            "sha256_is_of": "plaintext",
            "download_sha256_header": "X-Content-SHA256",
            "decrypt_command": seal.decrypt_hint(filename),
        }
    return {
        "id": archive.id,
        "filename": archive.filename,
        "created_at": archive.created_at,
        "size": archive.size,
        "sha256": archive.sha256,
        "sealed_download": sealed,
        "counts": archive.counts,
        "verified_at": archive.verified_at,
        "expires_at": archive.expires_at,
    }


def _seal() -> SealKey | None:
    """The key the token's user's links seal to (None: plain zips; a key that no longer parses: links refuse)."""
    user = get_session().get(User, user_id())
    return seal_state(user)[0] if user is not None else None


@bp.route("/archives")
@bp.arguments(schemas.PageArgsSchema, location="query", unknown=RAISE)  # a typo (?limt=) is told
@bp.response(200, schemas.ArchivePageSchema)
def list_archives(args: dict[str, Any]) -> dict[str, Any]:
    """Your archives that still exist, newest first."""
    query = select(Archive).where(Archive.user_id == user_id(), Archive.deleted_at.is_(None))
    rows, cursor = _page(query, Archive.id, args)
    seal = _seal() if rows else None  # parsed once: an OpenPGP key is checked by encrypting to it
    return {"items": [_archive_view(a, seal) for a in rows], "next_cursor": cursor}


def _stored_archive(archive_id: str) -> tuple[Archive, ArchiveFiles]:
    """The user's archive whose file is still stored; 404 if not theirs (or none), 410 if deleted."""
    archive = get_session().get(Archive, archive_id)
    if archive is None or archive.user_id != user_id():
        fail(404, "not_found", _NOT_FOUND.format("archive"))
    files = get_context().files
    if archive.deleted_at is not None or not files.exists(archive.relpath):
        fail(410, "archive_gone", gone_words(archive, keep_days=current_app.config["ARCHIVE_RETENTION_DAYS"]))
    return archive, files


def _unreadable() -> NoReturn:
    fail(410, "archive_unreadable", "This archive can no longer be read. Export again to get a fresh one.")


@bp.route("/archives/<archive_id>")
@bp.response(200, schemas.ArchiveDetailSchema)
def get_archive(archive_id: str) -> dict[str, Any]:
    """One archive and a summary of its manifest (read from the archive itself)."""
    archive, files = _stored_archive(archive_id)
    try:
        with files.open(archive.relpath) as f:
            manifest = parse_manifest(read_member(f, MANIFEST_NAME))
    except (ArchiveError, ArchiveFilesError, OSError):
        _unreadable()
    folders = Counter(f.path.split("/", 1)[0] if "/" in f.path else "." for f in manifest.files)
    version = manifest.meta.get("vcard_version")
    return {
        **_archive_view(archive, _seal()),
        "manifest": {
            "format_version": manifest.format_version,
            "created_at": manifest.created_at,
            "files": len(manifest.files),
            "total_size": sum(f.size for f in manifest.files),
            "folders": dict(folders),
            "vcard_version": version if isinstance(version, str) else None,
        },
    }


@bp.route("/archives/<archive_id>/changes")
@bp.arguments(schemas.ChangePageArgsSchema, location="query", unknown=RAISE)
@bp.response(200, schemas.ChangePageSchema)
def get_archive_changes(args: dict[str, Any], archive_id: str) -> dict[str, Any]:
    """Every item the export had to change to fit every system, with its reason, read from the archive's manifest."""
    archive, files = _stored_archive(archive_id)
    try:
        listing = change_page(files, archive, args["page"])
    except (ArchiveError, ArchiveFilesError, KeyError, OSError):
        _unreadable()
    return {
        "count": listing.count,
        "summary": listing.summary,
        "page": listing.page,
        "pages": listing.pages,
        "items": [asdict(change) for change in listing.items],
    }
