"""What the command line tells an operator is true and says what to type next."""

from __future__ import annotations

import pytest
from flask import Flask
from flask.testing import FlaskCliRunner

from jobs.commands import DEMO_EMAIL, where_to_open
from store import Database, User
from tests.unit.test_staff_cli import _one_error_line


def test_a_token_for_a_user_account_says_to_give_it_a_role_with_set_role(runner: FlaskCliRunner, db: Database) -> None:
    with db.session(write=True) as session:
        session.add(User(email="demo@lifeboat.example"))
    answer = runner.invoke(args=["users", "token", "demo@lifeboat.example", "--name", "x", "--reason", "y"])
    line = _one_error_line(answer)
    assert "demo@lifeboat.example is a user account" in line
    assert "`users set-role demo@lifeboat.example --role support --reason …`" in line
    assert "users create" not in line  # creating it again would be refused: it exists


def test_demo_says_where_to_find_the_address_when_none_is_configured(runner: FlaskCliRunner) -> None:
    answer = runner.invoke(args=["demo"])
    assert answer.exit_code == 0, answer.output
    assert "5000" not in answer.output  # the port `serve` really uses is not known here
    assert "`lifeboat serve` prints" in answer.output and DEMO_EMAIL in answer.output


def test_demo_names_the_configured_address(app: Flask, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(app.config, "BASE_URL", "https://backup.example.org/")
    with app.app_context():
        assert where_to_open() == "Open https://backup.example.org/"
