"""The service's published signing keys: `/.well-known/lifeboat-signing-keys.json`, no sign-in needed.

Why public and cacheable: anyone holding an archive (its owner years later, or
someone they gave it to) checks its `manifest.json.sig` against these keys
(`lifeboat verify ARCHIVE --keys FILE`); retired keys stay listed so archives
they signed still verify. The keys change only when the operator rotates them,
so an hour of caching costs nothing.
"""

from __future__ import annotations

from flask import Blueprint, jsonify
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
