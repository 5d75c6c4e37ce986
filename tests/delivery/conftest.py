"""Fixtures shared by the delivery tests."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from cryptography.fernet import Fernet
from flask import Flask
from flask.testing import FlaskCliRunner

import jobs
from account.records import Account
from store import get_db
from store.accounts import replace_account
from tests.servers.s3 import MotoS3
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


@pytest.fixture
def bucket_app(app: Flask) -> Iterator[Flask]:
    """The app with encryption keys (for S3 secrets) and loopback endpoints allowed, its job context made again."""
    app.config.update(ENCRYPTION_KEYS=[Fernet.generate_key().decode()], ENDPOINT_ALLOW_LIST=["127.0.0.0/8"])
    jobs.init_app(app)
    yield app


@pytest.fixture
def add_s3_from_cli(
    app: Flask, runner: FlaskCliRunner, alice: Account, moto_server: MotoS3, s3_bucket: str
) -> Callable[..., dict[str, Any]]:
    """alice stored, and `add(access_key_id, secret, *options)`: `lifeboat destination add-s3` of her bucket
    on moto from the command line, which must succeed; the destination's JSON row."""
    app.config.update(ENCRYPTION_KEYS=[Fernet.generate_key().decode()], ENDPOINT_ALLOW_LIST=["127.0.0.0/8"])
    with get_db(app).session(write=True) as session:
        replace_account(session, alice)

    def add(access_key_id: str, secret_access_key: str, *options: str) -> dict[str, Any]:
        added = runner.invoke(
            args=[
                "destination", "add-s3", "alice@example.com", "--bucket", s3_bucket, "--endpoint-url", moto_server.url,
                "--path-style", "--access-key-id", access_key_id, "--secret-access-key", secret_access_key,
                "--json", *options,
            ]
        )  # fmt: skip
        assert added.exit_code == 0, added.output
        row: dict[str, Any] = json.loads(added.output)
        return row

    return add
