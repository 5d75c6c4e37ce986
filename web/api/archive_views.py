"""API: delete an archive, and make, list and revoke its signed download links.

Why apart from `web.api.run_views` (which lists archives and reads one's
manifest): these change things, and each calls one service,
`jobs.archive_removal` or `jobs.download_links` through `web.links`, the same
ones the archives pages use. A link's URL works with a plain HTTP client:
no cookie, no token. Someone else's archive or link answers 404, like a
missing one; a deleted archive gets no new link (410).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from typing import Any

from apispec import APISpec
from flask import current_app

from errors import InvalidInput
from jobs import get_context
from jobs.archive_catalog import own_archive
from jobs.archive_removal import remove_archive
from jobs.download_links import LinkRefused, active_links, revoke_link
from store import DownloadLink, User, get_db, get_session
from store.base import utcnow
from web.api.blueprint import bp, fail, user_id
from web.api.link_schemas import LinkInSchema, LinkSchema
from web.links import link_urls, new_link

_NO_ARCHIVE = "You have no archive with this id."


def document_limits(spec: APISpec, config: Mapping[str, Any]) -> None:
    """Write this server's longest link lifetime into the document as `expires_in_days`' maximum.

    Why after registration: the limit is a setting (DOWNLOAD_LINK_MAX_AGE), and a
    schema is a class; a document that promised more than the server grants
    would make valid-looking requests fail (schemathesis rightly calls that a bug).
    """
    days = dt.timedelta(seconds=config["DOWNLOAD_LINK_MAX_AGE"]).days
    spec.components.schemas["LinkIn"]["properties"]["expires_in_days"]["maximum"] = days


def link_view(link: DownloadLink) -> dict[str, Any]:
    """A link as the API shows it; a sealed archive's link has no checksums or parts URLs (they are refused)."""
    urls = link_urls(current_app.config, link.id)
    user = get_session().get(User, link.user_id)
    sealed = user is not None and bool(user.seal_key)
    return {
        "id": link.id,
        "archive_id": link.archive_id,
        "url": urls.url,
        "sealed": sealed,
        "sha256sums_url": None if sealed else urls.checksums,
        "parts_url": None if sealed else urls.parts,
        "created_at": link.created_at,
        "expires_at": link.expires_at,
        "downloads": link.downloads,
    }


@bp.route("/archives/<archive_id>", methods=["DELETE"])
@bp.response(204)
def delete_archive(archive_id: str) -> None:
    """Delete an archive: its file is removed and every link to it stops (410). Deleting twice is fine."""
    removed = remove_archive(get_db(), get_context().files, archive_id, user_id(), now=utcnow())
    if removed is None:
        fail(404, "not_found", _NO_ARCHIVE)


@bp.route("/archives/<archive_id>/links", methods=["POST"])
@bp.arguments(LinkInSchema, required=False)  # no body: the longest lifetime
@bp.response(201, LinkSchema)
def create_archive_link(body: dict[str, Any], archive_id: str) -> dict[str, Any]:
    """A new signed link to the archive, for curl, wget or a download manager; `SHA256SUMS` and `parts` beside it."""
    with get_db().session(write=True) as session:
        try:
            link = new_link(current_app.config, session, archive_id, user_id(), days=body.get("expires_in_days"))
        except LinkRefused as exc:
            if exc.status == 404:
                fail(404, "not_found", _NO_ARCHIVE)
            fail(410, "archive_gone", str(exc))
        except InvalidInput as exc:
            fail(422, "invalid_input", str(exc).splitlines()[0], exc.problems)
        return link_view(link)


@bp.route("/archives/<archive_id>/links")
@bp.response(200, LinkSchema(many=True))
def list_archive_links(archive_id: str) -> list[dict[str, Any]]:
    """The archive's links that still work (not revoked, not expired), newest first."""
    session = get_session()
    archive = own_archive(session, archive_id, user_id())
    if archive is None:
        fail(404, "not_found", _NO_ARCHIVE)
    if archive.deleted_at is not None:
        return []
    return [link_view(link) for link in active_links(session, archive.id, user_id(), now=utcnow())]


@bp.route("/links/<link_id>", methods=["DELETE"])
@bp.response(204)
def delete_link(link_id: str) -> None:
    """Revoke a download link at once: it answers 410 from the next request on. Revoking twice is fine."""
    with get_db().session(write=True) as session:
        if len(link_id) > 32 or not revoke_link(session, link_id, user_id(), now=utcnow()):
            fail(404, "not_found", "You have no download link with this id.")
