"""Archive downloads: by the signed-in owner, or through a signed link that needs no browser session.

A link (`web.links`, `jobs.download_links`) opens, for anyone holding it, until
it expires or is revoked and as often as asked:

    /d/<token>                 the archive (Range, ETag, If-Range: curl -C -, wget -c, download managers)
    /d/<token>/SHA256SUMS      `sha256sum -c` text for the archive file and every file inside it
    /d/<token>/parts           JSON: name, size, SHA-256 and URL of every file inside the archive
    /d/<token>/parts/<name>    one file's bytes, streamed from the zip

An altered token is 403, an expired or revoked one 410, a link to an archive
that is not (or no longer) its owner's 404, like a missing one. Bytes come
from disk in constant memory (`web.ranges`); a bucket-held archive redirects to
a short presigned URL, or is relayed when ARCHIVE_BUCKET_DOWNLOADS says so.
The pages that list archives, show one and delete it are `web.archive_pages`.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import PurePosixPath

from flask import Blueprint, abort, current_app, g, redirect, render_template, request, url_for
from flask_login import current_user, login_required
from werkzeug.wrappers import Response

from delivery.sealing import SealKey
from exporters.archive.manifest import ManifestFile
from jobs import get_context
from jobs.download_links import (
    LinkRefused,
    archive_parts,
    checksums_lines,
    count_download,
    gone_words,
    member_chunks,
    open_link,
)
from jobs.sealed_links import link_seal_key, open_sealed
from store import Archive, get_session
from store.base import utcnow
from web import limiter
from web.links import LinkError, part_url, read_token
from web.ranges import Body, send

bp = Blueprint("archives", __name__)


_PRESIGNED_SECONDS = 300  # long enough to start a download, short enough that a leaked URL expires


def _send(archive: Archive, seal: SealKey | None = None) -> Response:
    files = get_context().files
    if archive.deleted_at is not None or not files.exists(archive.relpath):
        abort(410, gone_words(archive, keep_days=current_app.config["ARCHIVE_RETENTION_DAYS"]))
    if seal is not None:
        return _send_sealed(archive, seal)
    url = files.download_url(archive.relpath, filename=archive.filename, expires_in=_PRESIGNED_SECONDS)
    if url is not None:  # a bucket serves it directly (with its own Range support), to whom this view checked
        redirect_response = redirect(url, code=303)
        redirect_response.headers["Cache-Control"] = "private, no-store"
        return redirect_response
    path = files.local_path(archive.relpath)

    def relay(start: int, length: int) -> Iterator[bytes]:
        """A bucket-held archive read through: bytes before `start` are read and dropped."""
        with files.open(archive.relpath) as source:
            skip, left = start, length
            while left and (chunk := source.read(1 << 20)):
                if skip:
                    cut = min(skip, len(chunk))
                    chunk, skip = chunk[cut:], skip - cut
                chunk = chunk[:left]
                left -= len(chunk)
                if chunk:
                    yield chunk

    body = Body(
        size=archive.size,
        sha256=archive.sha256,
        mimetype="application/zip",
        filename=archive.filename,
        last_modified=archive.created_at,
        path=path,
        chunks=None if path is not None else relay,
    )
    return send(body)


def _send_sealed(archive: Archive, seal: SealKey) -> Response:
    """The archive sealed to its owner's key for this one response: ciphertext only, whole, never resumed."""
    opened, sealed = open_sealed(get_context().files, archive, seal)
    g.sealed = True  # counted against the link's limit (`SEALED_DOWNLOADS_PER_LINK`)

    def chunks(_start: int, _length: int) -> Iterator[bytes]:
        with opened:
            while chunk := opened.read(1 << 20):
                yield chunk

    body = Body(
        size=sealed.size,
        sha256=sealed.sha256,
        mimetype="application/octet-stream",
        filename=archive.filename + seal.suffix,
        last_modified=archive.created_at,
        chunks=chunks,
        resumable=False,
    )
    response = send(body)
    if request.method == "HEAD":
        opened.close()
    return response


@bp.route("/archives/<archive_id>/download")
@login_required
def download(archive_id: str) -> Response:
    archive = get_session().get(Archive, archive_id)
    # Someone else's archive answers exactly like a missing one.
    if archive is None or str(archive.user_id) != current_user.get_id():
        abort(404)
    return _send(archive)


def _refusal(title: str, message: str, status: int) -> Response:
    response = current_app.make_response((render_template("message.html", title=title, message=message), status))
    response.headers["Cache-Control"] = "no-store"
    return response


def _open(token: str) -> tuple[str, Archive, SealKey | None] | Response:
    """The link id, archive and owner's key a token opens, or the refusal page (403 altered, 410 gone, 404 not theirs).

    A link can travel (forwarded, leaked): when the owner gave a key, it serves only ciphertext.
    """
    config = current_app.config
    try:
        link_id = read_token(config["SECRET_KEY"], token, config["DOWNLOAD_LINK_MAX_AGE"])
    except LinkError as exc:
        return _refusal("Link not valid", str(exc), 410 if exc.expired else 403)
    try:
        archive = open_link(get_session(), link_id, now=utcnow())
        return link_id, archive, link_seal_key(get_session(), archive)
    except LinkRefused as exc:
        return _refusal("Link not valid" if exc.status == 410 else "Not found", str(exc), exc.status)


def _link_key() -> str:
    return "sealed-link:" + str((request.view_args or {}).get("token", ""))


# Each download of a sealed archive encrypts it whole again (`jobs.sealed_links.open_sealed`): a link, which
# anyone holding it can use, may make the server do that at most this often. Plain downloads never count.
SEALED_DOWNLOADS_PER_LINK = "30 per hour"


@bp.route("/d/<token>")
@limiter.limit(SEALED_DOWNLOADS_PER_LINK, key_func=_link_key, deduct_when=lambda _response: bool(g.get("sealed")))
def signed_download(token: str) -> Response:
    opened = _open(token)
    if isinstance(opened, Response):
        return opened
    link_id, archive, seal = opened
    response = _send(archive, seal)
    if request.method == "GET" and response.status_code in (200, 206, 303):
        with get_context().db.session(write=True) as session:
            count_download(session, link_id)
    return response


@bp.route("/d/<token>/SHA256SUMS")
def signed_checksums(token: str) -> Response:
    opened = _open(token)
    if isinstance(opened, Response):
        return opened
    _, archive, seal = opened
    parts = _parts_or_gone(archive, seal)
    text = b"".join(checksums_lines(archive, parts))
    return Response(text, content_type="text/plain; charset=utf-8", headers={"Cache-Control": "private, no-store"})


@bp.route("/d/<token>/parts")
def signed_parts(token: str) -> Response:
    opened = _open(token)
    if isinstance(opened, Response):
        return opened
    _, archive, seal = opened
    parts = _parts_or_gone(archive, seal)
    base = url_for("archives.signed_download", token=token, _external=True)

    def document() -> Iterator[bytes]:
        head = {"archive": archive.filename, "size": archive.size, "sha256": archive.sha256, "url": base}
        yield json.dumps(head, ensure_ascii=False)[:-1].encode() + b', "parts": ['
        for index, part in enumerate(parts):
            item = {"name": part.path, "size": part.size, "sha256": part.sha256, "url": part_url(base, part.path)}
            yield (b", " if index else b"") + json.dumps(item, ensure_ascii=False).encode()
        yield b"]}\n"

    return Response(document(), mimetype="application/json", headers={"Cache-Control": "private, no-store"})


@bp.route("/d/<token>/parts/<path:name>")
def signed_part(token: str, name: str) -> Response:
    opened = _open(token)
    if isinstance(opened, Response):
        return opened
    _, archive, seal = opened
    files = get_context().files
    entry = next((p for p in _parts_or_gone(archive, seal) if p.path == name), None)
    if entry is None:
        abort(404)
    body = Body(
        size=entry.size,
        sha256=entry.sha256,
        mimetype="application/octet-stream",
        filename=PurePosixPath(name).name,
        last_modified=archive.created_at,
        chunks=lambda start, length: member_chunks(files, archive, name, start=start, length=length),
    )
    return send(body)


def _parts_or_gone(archive: Archive, seal: SealKey | None) -> Iterator[ManifestFile]:
    """The archive's parts, unless it is gone (410) or sealed: a sealed archive's names and bytes stay inside."""
    files = get_context().files
    if archive.deleted_at is not None or not files.exists(archive.relpath):
        abort(410, gone_words(archive, keep_days=current_app.config["ARCHIVE_RETENTION_DAYS"]))
    if seal is not None:
        hint = seal.decrypt_hint(archive.filename + seal.suffix)
        message = (
            f"This archive is encrypted to your {seal.label}, so its files cannot be listed or fetched one by one "
            f"through a link. Download the whole archive and open it with: {hint}"
        )
        abort(_refusal("Encrypted archive", message, 403))
    return archive_parts(files, archive)
