"""`lifeboat destination edit|test|policy|retention|prune EMAIL ID`: the account first, as `list` and `add-*` take it.

A user trial typed `destination test demo@lifeboat.example 2` as the README's
line suggests and got "'demo@lifeboat.example' is not a valid integer".
"""

from __future__ import annotations

import json

import pytest
from click.testing import Result
from flask.testing import FlaskCliRunner

from store import Database, User


def _error_line(result: Result) -> str:
    """The one "Error: ..." line a refusal prints (and that there is exactly one)."""
    assert result.exit_code != 0 and "Traceback" not in result.output, result.output
    [line] = [line for line in result.output.splitlines() if line.startswith("Error:")]
    return line


@pytest.fixture
def destinations(runner: FlaskCliRunner, db: Database) -> dict[str, int]:
    """alice's S3 destination, as `add-s3` made it; bob has an account and no destination."""
    assert runner.invoke(args=["import-account", "tests/data/alice.json"]).exit_code == 0
    with db.session(write=True) as session:
        session.add(User(email="bob@example.com"))
    made = runner.invoke(
        args=[
            "destination",
            "add-s3",
            "alice@example.com",
            "--bucket",
            "my-bucket",
            "--access-key-id",
            "AKIA",
            "--json",
        ],
        env={"LIFEBOAT_NEW_SECRET_ACCESS_KEY": "example-secret"},
    )
    assert made.exit_code == 0, made.output
    return {"s3": json.loads(made.output)["id"]}


def test_a_command_on_one_destination_takes_the_email_then_the_id(
    runner: FlaskCliRunner, destinations: dict[str, int]
) -> None:
    policy = runner.invoke(args=["destination", "policy", "alice@example.com", str(destinations["s3"])])
    assert policy.exit_code == 0, policy.output
    assert '"s3:PutObject"' in policy.output


def test_the_id_alone_gets_one_line_naming_the_order(runner: FlaskCliRunner, destinations: dict[str, int]) -> None:
    s3 = destinations["s3"]
    line = _error_line(runner.invoke(args=["destination", "test", str(s3)]))
    assert line == f"Error: Give the account's email before the id: `lifeboat destination test EMAIL {s3}`."


def test_the_email_alone_gets_one_line_naming_the_list_command(
    runner: FlaskCliRunner, destinations: dict[str, int]
) -> None:
    line = _error_line(runner.invoke(args=["destination", "policy", "alice@example.com"]))
    assert line == (
        "Error: Give the destination's id after the email: `lifeboat destination policy alice@example.com ID`; "
        "`lifeboat destination list alice@example.com` shows the ids."
    )


def test_the_arguments_swapped_get_one_line_naming_the_order(
    runner: FlaskCliRunner, destinations: dict[str, int]
) -> None:
    line = _error_line(runner.invoke(args=["destination", "test", str(destinations["s3"]), "alice@example.com"]))
    assert line == (
        "Error: 'alice@example.com' is not a destination id: the command takes the account's email, then the id "
        "(`lifeboat destination test EMAIL ID`); `lifeboat destination list EMAIL` shows the ids."
    )


def test_another_accounts_destination_is_not_found_under_this_email(
    runner: FlaskCliRunner, destinations: dict[str, int]
) -> None:
    s3 = destinations["s3"]
    for command in (["edit", "bob@example.com", str(s3), "--bucket", "c"], ["test", "bob@example.com", str(s3)]):
        line = _error_line(runner.invoke(args=["destination", *command]))
        assert line == (
            f"Error: bob@example.com has no destination {s3}; `lifeboat destination list bob@example.com` shows theirs."
        )
    line = _error_line(runner.invoke(args=["destination", "prune", "nobody@example.com", str(s3), "--dry-run"]))
    assert line == "Error: No user 'nobody@example.com'."
