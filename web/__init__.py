"""Blueprints and the web-wide extensions (sessions, CSRF, sign-in throttling)."""

from __future__ import annotations

from flask import Flask
from flask_limiter import Limiter
from flask_limiter.util import get_remote_address
from flask_login import LoginManager
from flask_wtf.csrf import CSRFProtect

csrf = CSRFProtect()
login_manager = LoginManager()
login_manager.login_view = "auth.login"
login_manager.login_message = "Please sign in to see your data."
limiter = Limiter(key_func=get_remote_address)


def init_app(app: Flask) -> None:
    from web import (
        account_passwords,
        admin_pages,
        admin_tokens,
        api,
        archive_pages,
        archives,
        auth,
        automate,
        body_limit,
        dashboard,
        destination_confirm,
        destinations_page,
        error_pages,
        export_now,
        formatting,
        health,
        history,
        limits,
        metrics,
        response_headers,
        settings_page,
        signup,
        staff_auth,
        support_actions_page,
        support_bulk_page,
        support_console,
        well_known,
    )

    body_limit.init_app(app)  # first: before any hook reads a body (CSRF, sign-in throttling)
    response_headers.init_app(app)
    csrf.init_app(app)
    error_pages.register(app)
    formatting.register(app)
    login_manager.init_app(app)
    configure_cookies(app)
    limits.configure(app)
    limiter.init_app(app)
    for module in (
        auth,
        dashboard,
        archives,
        archive_pages,
        health,
        well_known,
        metrics,
        export_now,
        history,
        signup,
        account_passwords,
        settings_page,
        destinations_page,
        destination_confirm,
        automate,
        support_actions_page,
        staff_auth,
        admin_pages,
        admin_tokens,
        support_console,
        support_bulk_page,
    ):
        app.register_blueprint(module.bp)
    api.init_app(app)  # the JSON API and its OpenAPI document (web.api)


def configure_cookies(app: Flask) -> None:
    """Set, not `setdefault`: Flask's defaults already hold these keys (SameSite None).

    SameSite=Lax keeps the cookie off cross-site POSTs (a second line behind
    CSRF tokens); HttpOnly keeps it from scripts; Secure, on whenever
    LIFEBOAT_BASE_URL is https (or LIFEBOAT_SECURE_COOKIES says so), keeps it
    off plain HTTP. The same for the remember-me cookie, should it be used.
    """
    secure = bool(app.config["SECURE_COOKIES"])
    for prefix in ("SESSION_COOKIE", "REMEMBER_COOKIE"):
        app.config[f"{prefix}_HTTPONLY"] = True
        app.config[f"{prefix}_SAMESITE"] = "Lax"
        app.config[f"{prefix}_SECURE"] = secure
