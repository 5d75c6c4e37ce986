"""`lifeboat destination edit`: fix a wrong key in place from the command line (moto S3), id and retention kept."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskCliRunner

from account.records import Account
from store import Destination, get_db
from store.accounts import replace_account

pytestmark = pytest.mark.server


def test_a_wrong_secret_is_replaced_in_place_and_the_destination_tested_again(
    runner: FlaskCliRunner, add_s3_from_cli: Callable[..., dict[str, Any]], moto_s3_keys: dict[str, str]
) -> None:
    keys = moto_s3_keys
    row = add_s3_from_cli(keys["access_key_id"], "not-the-secret", "--keep", "3")
    failing = runner.invoke(args=["destination", "test", "alice@example.com", str(row["id"])])
    assert failing.exit_code != 0 and "Traceback" not in failing.output
    fixed = runner.invoke(
        args=["destination", "edit", "alice@example.com", str(row["id"]), "--json"],
        env={"LIFEBOAT_NEW_SECRET_ACCESS_KEY": keys["secret_access_key"]},
    )
    assert fixed.exit_code == 0, fixed.output
    edited = json.loads(fixed.output[: fixed.output.rindex("}") + 1])
    assert edited["id"] == row["id"] and edited["retention_summary"] == row["retention_summary"]
    assert "not-the-secret" not in fixed.output and keys["secret_access_key"] not in fixed.output
    assert runner.invoke(args=["destination", "test", "alice@example.com", str(row["id"])]).exit_code == 0


def test_editing_with_bad_input_says_what_is_wrong_in_one_line_and_changes_nothing(
    app: Flask, runner: FlaskCliRunner, alice: Account
) -> None:
    with get_db(app).session(write=True) as session:
        replace_account(session, alice)
    email = json.loads(runner.invoke(args=["destination", "add-email", "alice@example.com", "--json"]).output)
    refused = runner.invoke(
        args=["destination", "edit", "alice@example.com", str(email["id"]), "--to", "not an address"]
    )
    assert refused.exit_code != 0 and len(refused.output.strip().splitlines()) == 1, refused.output
    assert "Traceback" not in refused.output
    listed = json.loads(runner.invoke(args=["destination", "list", "alice@example.com", "--json"]).output)
    assert [d["label"] for d in listed] == [email["label"]]
    missing = runner.invoke(args=["destination", "edit", "alice@example.com", "987654", "--bucket", "b"])
    assert missing.exit_code != 0 and "alice@example.com has no destination 987654;" in missing.output


def test_a_test_refused_by_this_shells_endpoint_settings_is_told_to_the_operator_and_not_stored(
    app: Flask, runner: FlaskCliRunner, add_s3_from_cli: Callable[..., dict[str, Any]], moto_s3_keys: dict[str, str]
) -> None:
    """Trial 9: `destination test` from a shell without the server's LIFEBOAT_ENDPOINT_ALLOW_LIST stored
    "error" on a bucket that worked, and the user's pages said "not working" until the next delivery."""
    row = add_s3_from_cli(moto_s3_keys["access_key_id"], moto_s3_keys["secret_access_key"])
    test = ["destination", "test", "alice@example.com", str(row["id"])]
    assert runner.invoke(args=test).exit_code == 0
    (before,) = json.loads(runner.invoke(args=["destination", "list", "alice@example.com", "--json"]).output)
    assert before["status"] == "ok"
    with get_db(app).session() as session:
        stored = session.get(Destination, row["id"])
        assert stored is not None
        tested_at = stored.status_at
    app.config["ENDPOINT_ALLOW_LIST"] = []  # an operator's shell without the server's settings

    refused = runner.invoke(args=test)

    assert refused.exit_code == 1
    assert refused.output == (
        "Error: Not tested, and nothing recorded for the user: Refusing to connect to 127.0.0.1: it is a loopback "
        "address, which this process's LIFEBOAT_ENDPOINT_ALLOW_LIST does not allow. Run `lifeboat destination test "
        f"alice@example.com {row['id']}` with the server's settings (LIFEBOAT_ENDPOINT_ALLOW_LIST as the server "
        "has it).\n"
    )
    (after,) = json.loads(runner.invoke(args=["destination", "list", "alice@example.com", "--json"]).output)
    assert (after["status"], after["status_message"]) == (before["status"], before["status_message"])
    with get_db(app).session() as session:
        stored = session.get(Destination, row["id"])
        assert stored is not None and stored.status_at == tested_at
