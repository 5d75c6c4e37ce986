"""Users never see operator instructions when credentials cannot be stored or read.

The trial: a form error told an end user "LIFEBOAT_ENCRYPTION_KEYS is not set,
so delivery credentials cannot be stored: set it … python -c …". Servers now
refuse to start without the key on a shared database (tests/unit/test_startup_refusal.py);
should it still happen (keys removed under a running command), the page and the
API say it neutrally and the operator's instructions go to the log.
"""

from __future__ import annotations

import logging

import pytest
from flask import Flask
from flask.testing import FlaskClient

from store import Database
from tests.api.conftest import make_token
from tests.web.conftest import csrf_token

PAGE = "/settings/destinations"
NEUTRAL = "Saving or using stored credentials is unavailable right now; try again later."
OPERATOR_WORDS = ("LIFEBOAT_ENCRYPTION_KEYS", "python -c", "Fernet")


def test_a_bucket_that_cannot_be_saved_says_try_later_and_the_log_says_what_to_set(
    app: Flask, signed_in: FlaskClient, caplog: pytest.LogCaptureFixture
) -> None:
    app.config["ENCRYPTION_KEYS"] = []
    form = {
        "region": "us-east-1",
        "bucket": "my-archives",
        "prefix": "lifeboat",
        "auth": "keys",
        "access_key_id": "AKIAEXAMPLEKEY12WXYZ",
        "secret_access_key": "wJalrXUtnFEMI/K7MDENG",
        "csrf_token": csrf_token(signed_in, PAGE),
    }
    with caplog.at_level(logging.ERROR, logger="lifeboat.delivery"):
        refused = signed_in.post(PAGE + "/s3", data=form)
    page = refused.get_data(as_text=True)
    assert refused.status_code == 409 and NEUTRAL in page
    assert not [word for word in OPERATOR_WORDS if word in page]
    assert any("LIFEBOAT_ENCRYPTION_KEYS is not set" in r.getMessage() for r in caplog.records)


def test_the_api_says_the_same_neutral_words(app: Flask, db: Database, alice_user: int) -> None:
    app.config["ENCRYPTION_KEYS"] = []
    headers = {"Authorization": f"Bearer {make_token(db, alice_user)}"}
    body = {"kind": "s3", "bucket": "my-archives", "access_key_id": "AKIAEXAMPLE1", "secret_access_key": "s"}
    answer = app.test_client().post("/api/v1/destinations", json=body, headers=headers)
    assert answer.status_code == 409 and answer.get_json()["message"] == NEUTRAL
    assert not [word for word in OPERATOR_WORDS if word in answer.get_data(as_text=True)]
