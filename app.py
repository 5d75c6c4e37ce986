"""The application factory: wire the layers together, nothing else of weight."""

from __future__ import annotations

import os
import secrets
from collections.abc import Mapping
from typing import Any

from flask import Flask

import config


def create_app(test_config: Mapping[str, Any] | None = None) -> Flask:
    root = os.path.dirname(os.path.abspath(__file__))
    app = Flask(
        __name__,
        instance_relative_config=True,
        template_folder=os.path.join(root, "templates"),
        static_folder=os.path.join(root, "static"),
    )
    app.config.from_mapping(config.load(app.instance_path))
    if test_config is not None:
        app.config.from_mapping(test_config)
    if not app.config.get("SECRET_KEY"):
        # Embedded default: a per-instance key kept beside the database, so sessions and
        # signed links survive restarts without any setup.
        app.config["SECRET_KEY"] = _instance_secret(app.instance_path)
    os.makedirs(app.instance_path, exist_ok=True)
    os.makedirs(app.config["ARCHIVE_DIR"], exist_ok=True)

    import cli
    import jobs
    import logs
    import store
    import web

    if not app.testing:
        logs.configure(app.config.get("LOG_LEVEL", "INFO"))
    store.init_app(app)
    jobs.init_app(app)
    web.init_app(app)
    cli.init_app(app)
    if app.config["RUN_SCHEDULER"] and not app.testing:
        jobs.start_embedded(app)
    return app


def _instance_secret(instance_path: str) -> str:
    path = os.path.join(instance_path, "secret_key")
    os.makedirs(instance_path, exist_ok=True)
    try:
        with open(path, encoding="utf-8") as handle:
            return handle.read().strip()
    except FileNotFoundError:
        key = secrets.token_urlsafe(48)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(key)
        return key
