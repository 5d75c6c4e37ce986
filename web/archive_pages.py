"""The Archives pages: every archive with where it went and expiry, one's manifest and changes, delete.

Why pages apart from `web.archives` (which serves the bytes): these only
show and change rows, each view calling one service: `jobs.archive_catalog`
for what to list, `jobs.download_links` (through `web.links`) for links, and
`jobs.archive_removal` to delete. Someone else's archive, and one that does
not exist, both answer the same friendly 404.

Every POST carries the page's CSRF token (`csrf_token()` in the templates),
checked by CSRFProtect before a view runs: an expired form gets the
friendly "This form expired" page and changes nothing.

A link's URL is shown on the archive's own page, signed afresh at each view
(the token names only the row, which still decides expiry and revocation),
with the curl and `sha256sum -c` commands that use it headlessly.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from itertools import islice
from typing import Any, TypeVar

from flask import Blueprint, abort, current_app, flash, make_response, redirect, render_template, request, url_for
from flask_login import current_user, login_required
from sqlalchemy.orm import Session
from werkzeug.wrappers import Response

from exporters.archive.counts import KIND_COUNTS, KINDS
from exporters.archive.manifest import CHECKSUMS_NAME, MANIFEST_NAME, ArchiveError, Manifest
from jobs import get_context
from jobs.archive_catalog import archive_page, deliveries, expires_at, newest_verified_at, own_archive
from jobs.archive_changes import change_page, changes_summary
from jobs.archive_options import seal_state
from jobs.archive_removal import remove_archive
from jobs.download_links import LinkRefused, active_links, archive_manifest, gone_words, links_for, revoke_link
from store import Archive, User, get_db, get_session
from store.archive_files import ArchiveFiles, ArchiveFilesError
from store.base import utcnow
from web.formatting import local_time
from web.links import link_urls, new_link
from web.run_detail import archive_fidelity

bp = Blueprint("archive_pages", __name__)
T = TypeVar("T")

FILES_PER_PAGE = 100
_UNREADABLE = "This archive can no longer be read. Export again to get a fresh one."
# Manifest meta that is not an option of the format (who, what it counts, the folder plan).
_NOT_OPTIONS = frozenset({"user", "email", "display_name", "counts", "layout", "changes"})
_OPTION_WORDS = {"vcard_version": "vCard version", "timezone": "Time zone for calendars"}


def _user(session: Session) -> User:
    user = session.get(User, int(current_user.get_id()))
    if user is None:
        abort(404)
    return user


def _own(session: Session, archive_id: str, *, deleted_ok: bool = False) -> Archive:
    archive = own_archive(session, archive_id, int(current_user.get_id()))
    if archive is None:
        abort(404, "You have no archive at this address. It may belong to another account, or the link is incomplete.")
    if archive.deleted_at is not None and not deleted_ok:
        abort(410, gone_words(archive, keep_days=current_app.config["ARCHIVE_RETENTION_DAYS"]))
    return archive


def _page_number(name: str = "page") -> int:
    """`?page=` from 1 (callers show the last page for one past it); anything not a whole number is 1.

    Why `type=int` rather than `isdigit()`: `"²".isdigit()` is true and `int("²")` raises, a 500 on
    every paged archive page (user trial). A long number is one past the last too, as in the API.
    """
    return max(request.args.get(name, 1, type=int), 1)


def _no_store(html: str) -> Response:
    """Pages that show signed URLs are not kept by caches: a URL there opens the archive."""
    response = make_response(html)
    response.headers["Cache-Control"] = "no-store"
    return response


@bp.route("/archives")
@login_required
def index() -> Response:
    session = get_session()
    user = _user(session)
    listing = archive_page(session, user.id, page=_page_number())
    ids = [a.id for a in listing.archives]
    newest = newest_verified_at(session, user.id)
    keep_days = current_app.config["ARCHIVE_RETENTION_DAYS"]
    return _no_store(
        render_template(
            "archives.html",
            user=user,
            listing=listing,
            delivered=deliveries(session, ids),
            links=links_for(session, ids, user.id, now=utcnow()),
            expiry={a.id: expires_at(a, newest, keep_days) for a in listing.archives},
        )
    )


def _read_or_gone(archive: Archive, read: Callable[[ArchiveFiles], T]) -> T:
    """`read(files)` of the stored archive; 410 when its file is gone or cannot be read."""
    files = get_context().files
    if not files.exists(archive.relpath):
        abort(410, gone_words(archive, keep_days=current_app.config["ARCHIVE_RETENTION_DAYS"]))
    try:
        return read(files)
    except (ArchiveError, ArchiveFilesError, KeyError, OSError):
        abort(410, _UNREADABLE)


def _manifest_or_gone(archive: Archive) -> Manifest:
    return _read_or_gone(archive, lambda files: archive_manifest(files, archive))


def _options(manifest: Manifest) -> list[tuple[str, str]]:
    """The format options the manifest records, in words: vCard version, time zone, format version."""
    shown = [
        (_OPTION_WORDS.get(key, key.replace("_", " ").capitalize()), str(value))
        for key, value in manifest.meta.items()
        if key not in _NOT_OPTIONS and isinstance(value, str | int | float) and not isinstance(value, bool)
    ]
    return [*shown, ("Archive format version", str(manifest.format_version)), ("Written by", manifest.generator)]


def _counts(manifest: Manifest, archive: Archive) -> Mapping[str, int]:
    counts = {k: v for k, v in manifest.counts.items() if isinstance(v, int)}
    return counts or archive.counts


def _left_out_keys(manifest: Manifest) -> set[str]:
    """The figures of the kinds the archive left out ("calendars", "events", ...): "not included", never 0."""
    kinds = manifest.meta.get("kinds")
    if not isinstance(kinds, list):
        return set()  # made before the option: every kind
    return {key for kind in KINDS if kind not in kinds for key in KIND_COUNTS[kind]}


@bp.route("/archives/<archive_id>")
@login_required
def detail(archive_id: str) -> Response:
    session = get_session()
    user = _user(session)
    archive = _own(session, archive_id)
    manifest = _manifest_or_gone(archive)
    # One page of the list, read lazily: a large account's manifest lists 150,000 files.
    listed = [i for i, f in enumerate(manifest.files) if f.path in (MANIFEST_NAME, CHECKSUMS_NAME)]
    file_count = len(manifest.files) - len(listed)
    pages = max(1, -(-file_count // FILES_PER_PAGE))
    page = min(_page_number(), pages)
    shown = (f for f in manifest.files if f.path not in (MANIFEST_NAME, CHECKSUMS_NAME))
    links = active_links(session, archive.id, user.id, now=utcnow())
    urls = {link.id: link_urls(current_app.config, link.id) for link in links}
    newest = newest_verified_at(session, user.id)
    values: dict[str, Any] = {
        "user": user,
        "archive": archive,
        "manifest": manifest,
        "counts": _counts(manifest, archive),
        "left_out": _left_out_keys(manifest),
        "options": _options(manifest),
        "files": list(islice(shown, (page - 1) * FILES_PER_PAGE, page * FILES_PER_PAGE)),
        "file_count": file_count,
        "page": page,
        "pages": pages,
        "delivered": deliveries(session, [archive.id]).get(archive.id, []),
        "expires": expires_at(archive, newest, current_app.config["ARCHIVE_RETENTION_DAYS"]),
        "links": links,
        "urls": urls,
        "recipe": urls[links[0].id] if links else None,
        "seal": seal_state(user)[0],
        "readback": archive_fidelity(session, archive.id),
        "changes": changes_summary(manifest.meta),  # (count or None, in words)
    }
    return _no_store(render_template("archive.html", **values))


@bp.route("/archives/<archive_id>/changes")
@login_required
def changes(archive_id: str) -> str:
    """Every item the export had to change to fit every system, with its reason: a page at a time."""
    session = get_session()
    user = _user(session)
    archive = _own(session, archive_id)
    listing = _read_or_gone(archive, lambda files: change_page(files, archive, _page_number()))
    return render_template("archive_changes.html", user=user, archive=archive, listing=listing)


def _back(archive_id: str) -> Response:
    """Back to the page the button was on: the list (`back=list`) or the archive's own page."""
    if request.form.get("back") == "list":
        return redirect(url_for("archive_pages.index", page=request.form.get("page") or None))
    return redirect(url_for("archive_pages.detail", archive_id=archive_id, _anchor="links"))


@bp.route("/archives/<archive_id>/links", methods=["POST"])
@login_required
def create_link(archive_id: str) -> Response:
    with get_db().session(write=True) as session:
        try:
            link = new_link(current_app.config, session, archive_id, int(current_user.get_id()))
        except LinkRefused as exc:
            abort(exc.status, str(exc) if exc.status == 410 else None)
        until = link.expires_at
    zone = _user(get_session()).timezone
    flash(
        f"Download link created. It works without signing in until {local_time(until, zone)}; "
        "its address and the commands to fetch and check the archive are below.",
        "info",
    )
    return redirect(url_for("archive_pages.detail", archive_id=archive_id, _anchor="links"))


@bp.route("/archives/<archive_id>/links/<link_id>/revoke", methods=["POST"])
@login_required
def revoke(archive_id: str, link_id: str) -> Response:
    _own(get_session(), archive_id, deleted_ok=True)
    with get_db().session(write=True) as session:
        done = revoke_link(session, link_id, int(current_user.get_id()), now=utcnow())
    if not done:
        abort(404)
    flash("Download link revoked: it stops working at once.", "info")
    return _back(archive_id)


@bp.route("/archives/<archive_id>/delete", methods=["GET", "POST"])
@login_required
def delete(archive_id: str) -> Response:
    """GET: the confirmation page. POST (from it): delete, then back to the list."""
    session = get_session()
    user = _user(session)
    archive = _own(session, archive_id, deleted_ok=request.method == "POST")
    if request.method == "GET":
        return _no_store(
            render_template(
                "archive_delete.html",
                user=user,
                archive=archive,
                links=len(active_links(session, archive.id, user.id, now=utcnow())),
            )
        )
    removed = remove_archive(get_db(), get_context().files, archive_id, user.id, now=utcnow())
    if removed is None:
        abort(404)
    flash(f"Archive {removed.filename} deleted; its download links no longer work.", "info")
    return redirect(url_for("archive_pages.index"))
