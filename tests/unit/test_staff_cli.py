"""`users create` and `users set-role`: staff accounts from the command line, refusals in one line, audited."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import Result
from flask import Flask
from flask.testing import FlaskCliRunner
from sqlalchemy import select

from jobs.commands.staff_members import UNANSWERED
from store import AuditEvent, Database, User
from store.accounts import find_user
from store.passwords import check_password

GOOD = "a long enough passphrase"


def _one_error_line(result: Result) -> str:
    assert result.exit_code != 0, result.output
    assert "Traceback" not in result.output
    errors = [line for line in result.output.splitlines() if line.startswith("Error:")]
    assert len(errors) == 1, result.output
    return errors[0]


def _create(runner: FlaskCliRunner, email: str, role: str = "support", password: str = GOOD) -> Result:
    return runner.invoke(args=["users", "create", email, "--role", role, "--password-stdin"], input=password + "\n")


def test_create_makes_a_staff_account_with_the_password_and_an_audit_row(runner: FlaskCliRunner, db: Database) -> None:
    result = _create(runner, "Helper@Example.com", "admin")
    assert result.exit_code == 0, result.output
    assert "Created admin account helper@example.com" in result.output
    with db.session() as session:
        user = find_user(session, "helper@example.com")
        assert user is not None and user.role == "admin" and user.totp_confirmed_at is None
        assert check_password(user, GOOD)
        [row] = session.scalars(select(AuditEvent)).all()
        assert (row.action, row.target_email, row.actor_role) == ("create_staff", "helper@example.com", "operator")


def test_create_asks_for_the_password_twice_hidden(runner: FlaskCliRunner, db: Database) -> None:
    result = runner.invoke(args=["users", "create", "p@example.com", "--role", "support"], input=f"{GOOD}\n{GOOD}\n")
    assert result.exit_code == 0, result.output
    assert GOOD not in result.output  # hidden
    mismatch = runner.invoke(
        args=["users", "create", "q@example.com", "--role", "support"], input=f"{GOOD}\nother one\n"
    )
    assert mismatch.exit_code != 0
    with db.session() as session:
        assert find_user(session, "q@example.com") is None


@pytest.mark.parametrize(
    ("args", "stdin", "says"),
    [
        (["not an address", "--role", "support", "--password-stdin"], GOOD, "is not one email address"),
        (["a@example.com", "--role", "support", "--password-stdin"], "short", "at least 10 characters"),
        (["a@example.com", "--role", "support", "--password-stdin"], "", "--password-stdin read no password"),
        (["a@example.com", "--role", "support"], "", "No password given"),
        (["a@example.com", "--role", "root", "--password-stdin"], GOOD, "'root' is not one of"),
        (["a@example.com", "--password-stdin"], GOOD, "Missing option '--role'"),
    ],
)
def test_create_refuses_bad_input_in_one_line(
    runner: FlaskCliRunner, db: Database, args: list[str], stdin: str, says: str
) -> None:
    line = _one_error_line(runner.invoke(args=["users", "create", *args], input=stdin + "\n" if stdin else ""))
    assert says in line
    with db.session() as session:
        assert session.scalars(select(User)).all() == []


def test_create_refuses_an_existing_address_without_changing_its_role(runner: FlaskCliRunner, db: Database) -> None:
    assert runner.invoke(args=["import-account", "tests/data/alice.json"]).exit_code == 0
    line = _one_error_line(_create(runner, "alice@example.com", "admin"))
    assert "already has an account (role user)" in line and "users set-role" in line
    with db.session() as session:
        user = find_user(session, "alice@example.com")
        assert user is not None and user.role == "user"


def test_set_role_changes_it_deliberately_with_a_reason_in_the_audit_log(runner: FlaskCliRunner, db: Database) -> None:
    assert _create(runner, "helper@example.com").exit_code == 0
    unexplained = runner.invoke(args=["users", "set-role", "helper@example.com", "--role", "admin"])
    assert "--reason" in _one_error_line(unexplained)
    result = runner.invoke(args=["users", "set-role", "helper@example.com", "--role", "admin", "--reason", "team lead"])
    assert result.exit_code == 0 and "is now admin" in result.output
    missing = runner.invoke(args=["users", "set-role", "nobody@example.com", "--role", "admin", "--reason", "x"])
    assert "No account 'nobody@example.com'" in _one_error_line(missing)
    with db.session() as session:
        row = session.scalars(select(AuditEvent).where(AuditEvent.action == "set_role")).one()
        assert (row.reason, json.loads(row.detail)) == (
            "team lead",
            {"from": "support", "to": "admin", "api_tokens_revoked": 0},
        )


def test_staff_hold_no_data_so_import_and_demo_for_them_are_refused(
    runner: FlaskCliRunner, db: Database, tmp_path: Path
) -> None:
    assert _create(runner, "alice@example.com").exit_code == 0
    line = _one_error_line(runner.invoke(args=["import-account", "tests/data/alice.json"]))
    assert "alice@example.com is a support account" in line
    assert _create(runner, "demo@lifeboat.example").exit_code == 0
    assert "staff accounts hold no contacts" in _one_error_line(runner.invoke(args=["demo"]))
    with db.session() as session:
        user = find_user(session, "alice@example.com")
        assert user is not None and user.data_updated_at is None


def test_a_staff_token_from_the_command_line_opens_the_support_api_only_and_is_audited(
    runner: FlaskCliRunner, db: Database, app: Flask
) -> None:
    assert _create(runner, "sam@support.example").exit_code == 0
    made = runner.invoke(args=["users", "token", "sam@support.example", "--name", "outage script", "--reason", "INC-7"])
    assert made.exit_code == 0, made.output
    secret = made.stdout.strip().splitlines()[0]
    client = app.test_client()
    auth = {"Authorization": f"Bearer {secret}"}
    assert client.get("/api/v1/support/queue", headers=auth).status_code == 200
    refused = client.get("/api/v1/me", headers=auth)
    assert refused.status_code == 403 and refused.get_json()["code"] == "staff_forbidden"
    with db.session() as session:
        row = session.scalars(select(AuditEvent).where(AuditEvent.action == "staff_token.create")).one()
        assert row.reason == "INC-7" and row.target_email == "sam@support.example" and secret not in row.detail
    plain = runner.invoke(args=["users", "token", "nobody@example.com", "--name", "x", "--reason", "y"])
    assert "There is no account nobody@example.com: create it with `users create" in _one_error_line(plain)


def test_create_refuses_in_one_line_when_the_server_could_not_keep_a_second_factor(
    app: Flask, runner: FlaskCliRunner, db: Database
) -> None:
    app.config["ENCRYPTION_KEYS"] = []  # e.g. PostgreSQL deployed without LIFEBOAT_ENCRYPTION_KEYS
    line = _one_error_line(_create(runner, "helper@example.com"))
    assert "LIFEBOAT_ENCRYPTION_KEYS" in line
    with db.session() as session:
        assert find_user(session, "helper@example.com") is None


def test_create_without_a_terminal_or_password_stdin_says_one_line_and_no_getpass_warning(tmp_path: Path) -> None:
    """A user trial ran it from a script: Python's GetPassWarning (three lines) came before the one-line error."""
    root = Path(__file__).resolve().parents[2]
    env = {k: v for k, v in os.environ.items() if not k.startswith(("LIFEBOAT_", "FLASK_"))}
    env.update(FLASK_SKIP_DOTENV="1", LIFEBOAT_INSTANCE_DIR=str(tmp_path / "instance"), PYTHONPATH=str(root))
    lifeboat = [sys.executable, "-c", "import cli; cli.main(prog_name='lifeboat')"]
    done = subprocess.run(
        [*lifeboat, "users", "create", "a@example.com", "--role", "support"],
        cwd=tmp_path,
        env=env,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        start_new_session=True,  # no controlling terminal: /dev/tty cannot be opened, as under cron
    )
    assert done.returncode == 1
    assert done.stderr.splitlines()[-1] == f"Error: {UNANSWERED}"
    assert "Warning" not in done.stderr and "getpass" not in done.stderr, done.stderr
