"""Addresses asked for by name, no sign-in needed: the signing keys, and `/favicon.ico`.

`/.well-known/lifeboat-signing-keys.json` publishes the service's signing keys.

Why public and cacheable: anyone holding an archive (its owner years later, or
someone they gave it to) checks its `manifest.json.sig` against these keys
(`lifeboat verify ARCHIVE --keys FILE`); retired keys stay listed so archives
they signed still verify. The keys change only when the operator rotates them,
so an hour of caching costs nothing.
"""

from __future__ import annotations

from flask import Blueprint, current_app, jsonify, send_from_directory
from werkzeug.wrappers import Response

from jobs import get_context
from jobs.signing_keys import published_keys

bp = Blueprint("well_known", __name__)
WELL_KNOWN = "/.well-known/lifeboat-signing-keys.json"


@bp.route(WELL_KNOWN)
def signing_keys() -> Response:
    response = jsonify(published_keys(get_context().signing_key))
    response.headers["Cache-Control"] = "public, max-age=3600"
    response.headers["Access-Control-Allow-Origin"] = "*"
    return response


@bp.route("/favicon.ico")
def favicon() -> Response:
    """The brand mark as an icon.

    Why served here as well as linked from every page (`templates/base.html`):
    browsers still ask for /favicon.ico for what is not a page (a download, a
    JSON document), and each ask was a 404 in the logs (user trial).
    """
    folder = current_app.static_folder
    assert folder is not None  # Flask's default static folder, set in create_app
    return send_from_directory(folder, "favicon.ico", mimetype="image/vnd.microsoft.icon", max_age=86_400)
