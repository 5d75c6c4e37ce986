"""`lifeboat destination retention|prune`: choose a bucket's policy and try it (moto), from the command line."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest
from flask.testing import FlaskCliRunner

from tests.servers.s3 import ADMIN_KEYS, MotoS3

pytestmark = pytest.mark.server


def test_a_policy_is_chosen_shown_and_dry_run_from_the_command_line(
    runner: FlaskCliRunner, moto_server: MotoS3, s3_bucket: str, add_s3_from_cli: Callable[..., dict[str, Any]]
) -> None:
    keys = (ADMIN_KEYS["aws_access_key_id"], ADMIN_KEYS["aws_secret_access_key"])
    row = add_s3_from_cli(*keys, "--keep", "2", "--daily", "7")
    assert row["retention_summary"] == "Keeps the last 2 and one a day for 7 days; never the newest verified archive."
    for day in (1, 2, 3):
        key = f"lifeboat/2026/02/lifeboat-alice-202602{day:02d}T030000Z.zip"
        moto_server.client().put_object(Bucket=s3_bucket, Key=key, Body=b"x")
    tried = runner.invoke(
        args=["destination", "prune", "alice@example.com", str(row["id"]), "--dry-run", "--keep", "1"]
    )
    assert tried.exit_code == 0, tried.output
    why = "no verified archive yet: nothing is deleted"
    assert tried.output.splitlines() == [
        "Keeps the newest archive; never the newest verified archive.",
        *[f"keep         lifeboat/2026/02/lifeboat-alice-202602{day:02d}T030000Z.zip  {why}" for day in (3, 2, 1)],
        f"Retention: {why} (3 archive(s) in the bucket).",
    ]
    chosen = runner.invoke(args=["destination", "retention", "alice@example.com", str(row["id"]), "--monthly", "12"])
    assert chosen.output == "Keeps one a month for 12 months; never the newest verified archive.\n"
    refused = runner.invoke(args=["destination", "retention", "alice@example.com", str(row["id"]), "--weekly", "-4"])
    assert refused.exit_code != 0
    assert refused.output.splitlines() == [
        "Error: retention_weekly: Keep a whole number of weeks from 0 (off) to 10000."
    ]
    email = runner.invoke(args=["destination", "add-email", "alice@example.com", "--json"])
    email_id = json.loads(email.output)["id"]
    not_s3 = runner.invoke(args=["destination", "prune", "alice@example.com", str(email_id), "--dry-run"])
    assert not_s3.exit_code != 0 and f"alice@example.com has no S3 destination {email_id};" in not_s3.output
