"""Archive downloads: by the signed-in owner, or through a signed expiring link."""

from __future__ import annotations

from pathlib import Path
from typing import BinaryIO

from flask import Blueprint, abort, current_app, redirect, render_template, send_file
from flask_login import current_user, login_required
from werkzeug.wrappers import Response

from jobs import get_context
from store import Archive, get_session
from web.links import LinkError, read_token

bp = Blueprint("archives", __name__)


_PRESIGNED_SECONDS = 300  # long enough to start a download, short enough that a leaked URL expires


def _send(archive: Archive) -> Response:
    files = get_context().files
    if archive.deleted_at is not None or not files.exists(archive.relpath):
        abort(410, "This archive has expired and was deleted. Export again to get a fresh one.")
    url = files.download_url(archive.relpath, filename=archive.filename, expires_in=_PRESIGNED_SECONDS)
    if url is not None:  # a bucket serves it directly, to the owner this view just checked
        redirect_response = redirect(url, code=303)
        redirect_response.headers["Cache-Control"] = "private, no-store"
        return redirect_response
    source: Path | BinaryIO = files.local_path(archive.relpath) or files.open(archive.relpath)
    response = send_file(source, mimetype="application/zip", as_attachment=True, download_name=archive.filename)
    response.headers["X-Content-SHA256"] = archive.sha256
    response.headers["Cache-Control"] = "private, no-store"
    return response


@bp.route("/archives/<archive_id>/download")
@login_required
def download(archive_id: str) -> Response:
    archive = get_session().get(Archive, archive_id)
    # Someone else's archive answers exactly like a missing one.
    if archive is None or str(archive.user_id) != current_user.get_id():
        abort(404)
    return _send(archive)


@bp.route("/d/<token>")
def signed_download(token: str) -> Response | tuple[str, int]:
    try:
        grant = read_token(current_app.config["SECRET_KEY"], token, current_app.config["DOWNLOAD_LINK_MAX_AGE"])
    except LinkError as exc:
        return render_template("message.html", title="Link not valid", message=str(exc)), 403
    archive = get_session().get(Archive, grant.archive_id)
    if archive is None or archive.user_id != grant.user_id:
        abort(404)
    return _send(archive)
