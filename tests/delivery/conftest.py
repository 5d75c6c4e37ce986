"""Fixtures shared by the delivery tests."""

from __future__ import annotations

import pytest
from cryptography.fernet import Fernet
from flask import Flask

import jobs
from tests.servers.smtp import SmtpServer


@pytest.fixture
def delivery_app(app: Flask, smtp_server: SmtpServer) -> Flask:
    """The app with keys, the loopback mail server and loopback S3 endpoints allowed; its job context rebuilt."""
    app.config.update(
        ENCRYPTION_KEYS=[Fernet.generate_key().decode()],
        SMTP_HOST=smtp_server.host,
        SMTP_PORT=smtp_server.port,
        SMTP_SECURITY="none",
        MAIL_FROM="lifeboat@example.com",
        ENDPOINT_ALLOW_LIST=["127.0.0.0/8"],
    )
    jobs.init_app(app)
    return app


@pytest.fixture
def quiet_delivery_app(delivery_app: Flask) -> Flask:
    """`delivery_app` whose failed runs email nobody (the tests that fail runs on purpose)."""
    jobs.get_context(delivery_app).notify_failure = lambda _user, _run: None
    return delivery_app
