"""Blueprints and the web-wide extensions (sessions, CSRF)."""

from __future__ import annotations

from flask import Flask
from flask_login import LoginManager
from flask_wtf.csrf import CSRFProtect

csrf = CSRFProtect()
login_manager = LoginManager()
login_manager.login_view = "auth.login"
login_manager.login_message = "Please sign in to see your data."


def init_app(app: Flask) -> None:
    from web import archives, auth, dashboard, health, metrics, runs

    csrf.init_app(app)
    login_manager.init_app(app)
    app.config.setdefault("SESSION_COOKIE_HTTPONLY", True)
    app.config.setdefault("SESSION_COOKIE_SAMESITE", "Lax")
    for module in (auth, dashboard, archives, health, metrics, runs):
        app.register_blueprint(module.bp)
