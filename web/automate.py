"""The "automate your backups" page: the curl commands for the JSON API."""

from __future__ import annotations

from flask import Blueprint, current_app, render_template

bp = Blueprint("automate", __name__)


@bp.route("/automate")
def automate() -> str:
    """Public: it shows commands, no data. The URL is the configured one, not the request's Host."""
    return render_template("automate.html", base_url=str(current_app.config["BASE_URL"]).rstrip("/"))
