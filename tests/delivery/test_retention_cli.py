"""`lifeboat destination retention|prune`: choose a bucket's policy and try it (moto), from the command line."""

from __future__ import annotations

import json

import pytest
from cryptography.fernet import Fernet
from flask import Flask
from flask.testing import FlaskCliRunner

from account.records import Account
from store import get_db
from store.accounts import replace_account
from tests.servers.s3 import ADMIN_KEYS, MotoS3

pytestmark = pytest.mark.server


def test_a_policy_is_chosen_shown_and_dry_run_from_the_command_line(
    app: Flask, runner: FlaskCliRunner, alice: Account, moto_server: MotoS3, s3_bucket: str
) -> None:
    app.config.update(ENCRYPTION_KEYS=[Fernet.generate_key().decode()], ENDPOINT_ALLOW_LIST=["127.0.0.0/8"])
    with get_db(app).session(write=True) as session:
        replace_account(session, alice)
    added = runner.invoke(
        args=[
            "destination", "add-s3", "alice@example.com", "--bucket", s3_bucket, "--endpoint-url", moto_server.url,
            "--path-style", "--access-key-id", ADMIN_KEYS["aws_access_key_id"],
            "--secret-access-key", ADMIN_KEYS["aws_secret_access_key"], "--keep", "2", "--daily", "7",
        ]
    )  # fmt: skip
    assert added.exit_code == 0, added.output
    row = json.loads(added.output)
    assert row["retention_summary"] == "Keeps the last 2 and one a day for 7 days; never the newest verified archive."
    for day in (1, 2, 3):
        key = f"lifeboat/2026/02/lifeboat-alice-202602{day:02d}T030000Z.zip"
        moto_server.client().put_object(Bucket=s3_bucket, Key=key, Body=b"x")
    tried = runner.invoke(args=["destination", "prune", str(row["id"]), "--dry-run", "--keep", "1"])
    assert tried.exit_code == 0, tried.output
    why = "no verified archive yet: nothing is deleted"
    assert tried.output.splitlines() == [
        "Keeps the newest archive; never the newest verified archive.",
        *[f"keep         lifeboat/2026/02/lifeboat-alice-202602{day:02d}T030000Z.zip  {why}" for day in (3, 2, 1)],
        f"Retention: {why} (3 archive(s) in the bucket).",
    ]
    chosen = runner.invoke(args=["destination", "retention", str(row["id"]), "--monthly", "12"])
    assert chosen.output == "Keeps one a month for 12 months; never the newest verified archive.\n"
    refused = runner.invoke(args=["destination", "retention", str(row["id"]), "--weekly", "-4"])
    assert refused.exit_code != 0
    assert refused.output.splitlines() == [
        "Error: retention_weekly: Keep a whole number of weeks from 0 (off) to 10000."
    ]
    email = runner.invoke(args=["destination", "add-email", "alice@example.com"])
    email_id = json.loads(email.output)["id"]
    not_s3 = runner.invoke(args=["destination", "prune", str(email_id), "--dry-run"])
    assert not_s3.exit_code != 0 and f"No S3 destination {email_id}." in not_s3.output
