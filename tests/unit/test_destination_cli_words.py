"""`lifeboat destination add-*|edit|list` answer in words (JSON behind `--json`), and `destination remove EMAIL ID`.

The trial: `add-email` and `list` printed forty lines of JSON where the other commands
print a sentence, and a destination could be removed on the page and through the API
but not from the command line.
"""

from __future__ import annotations

import json

import pytest
from click.testing import Result
from flask import Flask
from flask.testing import FlaskCliRunner
from sqlalchemy import select

from jobs.destination_setup import remove_destination
from store import Database, DeliveryAttempt, Destination, ExportRun, User
from store.base import utcnow

ALICE = "alice@example.com"


def _error_line(result: Result) -> str:
    assert result.exit_code != 0 and "Traceback" not in result.output, result.output
    [line] = [line for line in result.output.splitlines() if line.startswith("Error:")]
    return line


@pytest.fixture
def alice_email(runner: FlaskCliRunner, db: Database) -> int:
    """alice imported with her own address as a destination; bob has an account and none. Its id."""
    assert runner.invoke(args=["import-account", "tests/data/alice.json"]).exit_code == 0
    with db.session(write=True) as session:
        session.add(User(email="bob@example.com"))
    added = runner.invoke(args=["destination", "add-email", ALICE, "--json"])
    assert added.exit_code == 0, added.output
    return int(json.loads(added.stdout)["id"])


def test_add_email_says_what_it_added_in_one_sentence(runner: FlaskCliRunner, alice_email: int) -> None:
    other = runner.invoke(args=["destination", "add-email", ALICE, "--to", "friend@example.net"])
    assert other.exit_code == 0, other.output
    [said] = other.stdout.splitlines()
    assert said.startswith(f"Added email destination {alice_email + 1} (email friend@example.net) for {ALICE}; ")
    assert "status waiting: " in said and "{" not in other.stdout


def test_list_is_a_table_at_80_columns_and_json_on_request(
    app: Flask, runner: FlaskCliRunner, db: Database, alice_email: int
) -> None:
    with db.session(write=True) as session:
        row = session.get(Destination, alice_email)
        assert row is not None
        row.label = "Old\r\nBcc: evil@x.com " + "x" * 60  # stored before labels were checked
        user = session.get(User, row.user_id)
        assert user is not None
        run = ExportRun(user_id=user.id, trigger="cli")
        session.add(run)
        session.flush()
        session.add(
            DeliveryAttempt(
                run_id=run.id, destination_id=row.id, at=utcnow(), outcome="delivered", message="sent", location="x"
            )
        )
    listed = runner.invoke(args=["destination", "list", ALICE])
    assert listed.exit_code == 0, listed.output
    lines = listed.stdout.splitlines()
    assert lines[0].split() == ["ID", "NAME", "KIND", "STATUS", "LAST", "DELIVERY"]
    assert lines[1].split()[0] == str(alice_email) and " email " in lines[1] and " delivered 20" in lines[1]
    assert "Old\\u000d\\u000aBcc" in lines[1] and "\r" not in listed.stdout and "…" in lines[1]
    assert lines[-1] == "Times are UTC."
    assert all(len(line) <= 80 for line in lines), lines
    as_json = json.loads(runner.invoke(args=["destination", "list", ALICE, "--json"]).stdout)
    assert [shown["id"] for shown in as_json] == [alice_email]


def test_remove_deletes_the_destination_and_says_so_in_one_line(
    runner: FlaskCliRunner, db: Database, alice_email: int
) -> None:
    removed = runner.invoke(args=["destination", "remove", ALICE, str(alice_email)])
    assert removed.exit_code == 0, removed.output
    assert removed.stdout.splitlines() == [
        f"Removed destination {alice_email} (email {ALICE}) from {ALICE}. "
        "Archives already delivered there stay where they are."
    ]
    with db.session() as session:
        assert session.scalars(select(Destination)).all() == []
    listed = runner.invoke(args=["destination", "list", ALICE])
    assert listed.stdout.startswith(f"{ALICE} has no destinations")
    again = _error_line(runner.invoke(args=["destination", "remove", ALICE, str(alice_email)]))
    assert (
        again == f"Error: {ALICE} has no destination {alice_email}; `lifeboat destination list {ALICE}` shows theirs."
    )


@pytest.mark.parametrize(
    ("arguments", "expected"),
    [
        (["bob@example.com", "{id}"], "Error: bob@example.com has no destination {id}; "),
        ([ALICE, "987654"], f"Error: {ALICE} has no destination 987654; "),
        (["nobody@example.com", "{id}"], "Error: No user 'nobody@example.com'."),
        (["{id}", ALICE], f"Error: {ALICE!r} is not a destination id: "),
        (["{id}"], "Error: Give the account's email before the id: "),
    ],
)
def test_remove_refuses_a_wrong_id_another_accounts_or_an_unknown_email_and_keeps_it(
    runner: FlaskCliRunner, db: Database, alice_email: int, arguments: list[str], expected: str
) -> None:
    args = [a.replace("{id}", str(alice_email)) for a in arguments]
    line = _error_line(runner.invoke(args=["destination", "remove", *args]))
    assert line.startswith(expected.replace("{id}", str(alice_email))), line
    with db.session() as session:
        assert [row.id for row in session.scalars(select(Destination))] == [alice_email]


def test_the_job_finds_only_the_accounts_own_destination(db: Database, alice_email: int) -> None:
    """`remove_destination` (the page, the API and `destination remove` call it): only the account's own."""
    with db.session(write=True) as session:
        bob = session.scalars(select(User).where(User.email == "bob@example.com")).one()
        assert remove_destination(session, bob.id, alice_email) is None
        assert remove_destination(session, bob.id, 10**30) is None  # not a row id at all
    with db.session() as session:
        assert [row.id for row in session.scalars(select(Destination))] == [alice_email]
