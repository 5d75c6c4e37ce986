"""`lifeboat generate-account`: a generated account from the command line, all or nothing (user trial 9, finding 3).

Demos and support rehearsals need a large account to show a long export; it
could be made only from Python. Typical size here (heavy takes seconds per run).
"""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest
from flask.testing import FlaskCliRunner

from account.records import Account
from account.sample import TYPICAL, generate_account
from exporters.archive.counts import account_counts, counts_line
from jobs.commands import generated_account
from store import Database
from store.accounts import AccountReader, find_user


def _counts(db: Database, email: str) -> dict[str, int] | None:
    with db.session() as session:
        user = find_user(session, email)
        return AccountReader(session, user).counts().as_dict() if user is not None else None


def test_it_creates_an_account_of_typical_generated_data(runner: FlaskCliRunner, db: Database) -> None:
    result = runner.invoke(args=["generate-account", "Rehearsal@Example.com"])
    assert result.exit_code == 0, result.output
    expected = account_counts(generate_account("rehearsal@example.com", TYPICAL))
    assert _counts(db, "rehearsal@example.com") == expected
    assert expected["contacts"] == TYPICAL.contacts and expected["events"] == TYPICAL.events
    assert result.output == f"Generated rehearsal@example.com: {counts_line(expected)}.\n"


def test_scale_multiplies_the_size(runner: FlaskCliRunner, db: Database) -> None:
    result = runner.invoke(args=["generate-account", "small@example.com", "--scale", "0.1", "--seed", "7"])
    assert result.exit_code == 0, result.output
    counts = _counts(db, "small@example.com")
    assert counts is not None
    assert (counts["contacts"], counts["events"], counts["notes"]) == (20, 100, 10)


def test_it_keeps_an_account_s_data_unless_told_to_replace_it(runner: FlaskCliRunner, db: Database) -> None:
    runner.invoke(args=["import-account", "tests/data/alice.json"])
    before = _counts(db, "alice@example.com")
    assert before is not None
    refused = runner.invoke(args=["generate-account", "alice@example.com"])
    assert refused.exit_code == 1
    assert refused.output.splitlines() == [
        f"Error: alice@example.com already holds data ({counts_line(before)}): "
        "pass --replace to overwrite it with generated data."
    ]
    assert _counts(db, "alice@example.com") == before
    replaced = runner.invoke(args=["generate-account", "alice@example.com", "--replace", "--scale", "0.1"])
    assert replaced.exit_code == 0, replaced.output
    assert _counts(db, "alice@example.com") == account_counts(
        generate_account("alice@example.com", TYPICAL.scaled(0.1))
    )


@pytest.mark.parametrize(
    ("args", "said"),
    [
        (["not an address"], "Give the account's address, e.g. alice@example.com."),
        (["a@example.com", "--size", "huge"], "'huge' is not one of 'heavy', 'typical'"),
        (["a@example.com", "--scale", "0"], "0.0 is not in the range x>0"),
    ],
)
def test_a_wrong_argument_is_one_line_naming_the_fix(runner: FlaskCliRunner, args: list[str], said: str) -> None:
    result = runner.invoke(args=["generate-account", *args])
    errors = [line for line in result.output.splitlines() if line.startswith("Error:")]
    assert result.exit_code != 0 and len(errors) == 1 and said in errors[0], result.output


def test_an_account_that_cannot_all_be_stored_changes_nothing(
    runner: FlaskCliRunner, db: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    runner.invoke(args=["generate-account", "kept@example.com", "--scale", "0.1"])
    before = _counts(db, "kept@example.com")

    def with_a_bad_last_event(email: str, *args: Any, **kwargs: Any) -> Account:
        """The real generator's account, its very last event given a status no database column holds."""
        account = generate_account(email, *args, **kwargs)
        *rest, last = account.calendars
        *events, final = last.events
        bad = dataclasses.replace(final, status="X" * 100)
        calendars = (*rest, dataclasses.replace(last, events=(*events, bad)))
        return dataclasses.replace(account, calendars=calendars)

    monkeypatch.setattr(generated_account, "generate_account", with_a_bad_last_event)
    result = runner.invoke(args=["generate-account", "kept@example.com", "--replace"])
    assert result.exit_code == 1
    assert result.output.startswith("Error: The account has 1 value(s) too long to store"), result.output
    assert _counts(db, "kept@example.com") == before
