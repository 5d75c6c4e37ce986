"""The "automate your backups" page: the curl commands for the JSON API."""

from __future__ import annotations

from flask import Blueprint, current_app, render_template
from flask_login import current_user

from delivery.sealing import SealKey, decrypt_command
from jobs.archive_options import seal_state
from store import User, get_session

bp = Blueprint("automate", __name__)


@bp.route("/automate")
def automate() -> str:
    """Public: it shows commands, no data. The URL is the configured one, not the request's Host.

    Signed in with a key to encrypt to, the download recipe is the one for that key: a link then
    serves ciphertext sealed afresh for each download, checked by its own header, then opened.
    """
    seal = _signed_in_seal()
    kind = seal.kind if seal is not None else "age"
    sealed_name = "lifeboat.zip" + (seal.suffix if seal is not None else ".age")
    return render_template(
        "automate.html",
        base_url=str(current_app.config["BASE_URL"]).rstrip("/"),
        seal=seal,
        sealed_name=sealed_name,
        open_command=decrypt_command(kind, sealed_name),
    )


def _signed_in_seal() -> SealKey | None:
    if not current_user.is_authenticated or getattr(current_user, "role", "user") != "user":
        return None
    user = get_session().get(User, int(current_user.get_id()))
    return seal_state(user)[0] if user is not None else None
