"""A run makes a download-link row only when an email may carry it, and that emailed link works."""

from __future__ import annotations

import hashlib
import re

import pytest
from cryptography.fernet import Fernet
from flask import Flask
from sqlalchemy import func, select

import jobs
from jobs.destination_backends import Registry
from jobs.destination_setup import add_destination
from store import Database, DownloadLink, User
from tests.servers.smtp import SmtpServer
from tests.web.test_downloads import _export


def _links(db: Database) -> int:
    with db.session() as session:
        return int(session.scalar(select(func.count()).select_from(DownloadLink)) or 0)


def test_a_run_without_an_email_destination_leaves_no_link_row(app: Flask, db: Database, alice_user: int) -> None:
    _export(app, db, alice_user)
    assert _links(db) == 0


@pytest.mark.server
def test_an_archive_too_large_to_attach_is_emailed_as_a_link_that_downloads_it(
    app: Flask, db: Database, alice_user: int, smtp_server: SmtpServer
) -> None:
    app.config.update(
        ENCRYPTION_KEYS=[Fernet.generate_key().decode()],
        SMTP_HOST=smtp_server.host,
        SMTP_PORT=smtp_server.port,
        SMTP_SECURITY="none",
        EMAIL_ATTACH_LIMIT_BYTES=100,  # every archive is larger: the email carries a link instead
    )
    jobs.init_app(app)  # the job context, rebuilt from these settings (it keeps the link maker)
    with db.session(write=True) as session:
        user = session.get(User, alice_user)
        assert user is not None
        add_destination(session, Registry(dict(app.config)), user, "email", "me", {})
    archive = _export(app, db, alice_user)
    assert _links(db) == 1
    text = smtp_server.received[0].message().get_body(("plain",)).get_content()  # type: ignore[union-attr]
    base = re.escape(app.config["BASE_URL"].rstrip("/"))
    found = re.search(rf"{base}(/d/[\w.-]+)", text)
    assert found is not None, text
    download = app.test_client().get(found.group(1))  # no session: the emailed link alone
    assert download.status_code == 200 and hashlib.sha256(download.data).hexdigest() == archive.sha256
