"""`lifeboat verify` checks a file without creating an instance, and commands log for people, not in JSON.

Why: a user trial ran `verify some.zip` on a checkout without an instance folder and found a
database, generated keys and a JSON log line telling them to back up an encryption key; and
`scrub`'s sentences came with JSON log lines mixed in. Servers (`serve`, `scheduler`) keep
their JSON lines for a log collector. The same holds for the same commands run as
`flask --app app COMMAND`, which printed JSON lines until the decision moved to one place
(`cli.configure_logs`).
"""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner
from flask import Flask
from flask.cli import cli as flask_cli

import cli
from jobs import get_context
from jobs.commands import NO_INSTANCE
from logs import JsonFormatter, PlainFormatter

ALICE = Path(__file__).resolve().parents[1] / "data" / "alice.json"
ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(autouse=True)
def lifeboat_logger() -> Iterator[logging.Logger]:
    """The "lifeboat" logger as each test found it: what a command configured does not outlive the test."""
    logger = logging.getLogger("lifeboat")
    handlers, level = list(logger.handlers), logger.level
    for handler in handlers:
        logger.removeHandler(handler)
    yield logger
    for handler in list(logger.handlers):
        logger.removeHandler(handler)
    for handler in handlers:
        logger.addHandler(handler)
    logger.setLevel(level)


@pytest.fixture
def nowhere(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """No LIFEBOAT_* setting, and an instance folder that does not exist (apart from the `app` fixture's)."""
    for name in list(os.environ):
        if name.startswith(("LIFEBOAT_", "FLASK_")):
            monkeypatch.delenv(name)
    monkeypatch.setenv("FLASK_SKIP_DOTENV", "1")
    folder = tmp_path / "elsewhere" / "instance"
    monkeypatch.setenv("LIFEBOAT_INSTANCE_DIR", str(folder))
    return folder


@pytest.fixture
def signed_archive(app: Flask, tmp_path: Path) -> tuple[Path, Path]:
    """A signed archive made by another instance (the `app` fixture's), and its published key set saved to a file."""
    runner = app.test_cli_runner()
    assert runner.invoke(args=["import-account", str(ALICE)]).exit_code == 0
    exported = runner.invoke(args=["export", "alice@example.com", "--out", str(tmp_path / "out")])
    assert exported.exit_code == 0, exported.output
    ring = get_context(app).signing_keys
    assert ring is not None
    keys = tmp_path / "lifeboat-signing-keys.json"
    keys.write_text(json.dumps(ring.as_json()), "utf-8")
    return Path(exported.output.splitlines()[0]), keys


def test_verify_without_an_instance_creates_nothing_and_says_it_checked_without_the_services_key(
    signed_archive: tuple[Path, Path], nowhere: Path
) -> None:
    archive, _ = signed_archive
    result = CliRunner().invoke(cli.main, ["verify", str(archive)])
    assert result.exit_code == 0, result.output
    assert result.stdout.startswith(f"{archive}: OK (signature not checked)\n")
    assert f"  {NO_INSTANCE}\n" in result.stdout
    assert "signature not checked" in result.stdout and "3 contacts" in result.stdout
    assert result.stderr == ""  # no log line, JSON or other
    assert not nowhere.exists() and not nowhere.parent.exists()


def test_verify_without_an_instance_checks_the_signature_with_the_keys_given(
    signed_archive: tuple[Path, Path], nowhere: Path
) -> None:
    archive, keys = signed_archive
    result = CliRunner().invoke(cli.main, ["verify", str(archive), "--keys", str(keys), "--require-signature"])
    assert result.exit_code == 0, result.output
    assert "signed: manifest.json is what the service signed" in result.stdout and NO_INSTANCE not in result.stdout
    refused = CliRunner().invoke(cli.main, ["verify", str(archive), "--require-signature"])
    assert refused.exit_code == 1 and "NOT OK" in refused.output and "no valid signature" in refused.output
    assert not nowhere.parent.exists()


def test_verify_over_an_existing_instance_uses_its_key_and_remembers_what_it_parsed(
    nowhere: Path, tmp_path: Path
) -> None:
    runner = CliRunner()
    assert runner.invoke(cli.main, ["import-account", str(ALICE)]).exit_code == 0  # this builds the instance
    exported = runner.invoke(cli.main, ["export", "alice@example.com", "--out", str(tmp_path / "out")])
    assert exported.exit_code == 0, exported.output
    archive = exported.stdout.splitlines()[0]
    result = runner.invoke(cli.main, ["verify", archive])
    assert result.exit_code == 0, result.output
    assert "signed: manifest.json is what the service signed" in result.stdout and NO_INSTANCE not in result.stdout
    assert (nowhere / "verify-memo").is_dir()


def test_a_command_logs_plain_lines_on_stderr_and_a_server_keeps_json(
    nowhere: Path, lifeboat_logger: logging.Logger
) -> None:
    first = CliRunner().invoke(cli.main, ["import-account", str(ALICE)])
    assert first.exit_code == 0, first.output
    assert first.stdout.startswith("Imported alice@example.com")
    # A new instance's key is the one notice below WARNING a person still gets: it must be backed up.
    assert first.stderr == f"info: generated {nowhere / 'encryption_keys'} on first use; back it up with the database\n"
    exported = CliRunner().invoke(cli.main, ["export", "alice@example.com"])
    assert exported.exit_code == 0 and exported.stderr == ""  # "run started" and the like are not for people
    assert [type(h.formatter) for h in lifeboat_logger.handlers] == [PlainFormatter]
    record = logging.makeLogRecord(
        {"name": "lifeboat.scrub", "msg": "scrub found a problem", "levelname": "WARNING", "destination_id": 4}
    )
    assert PlainFormatter().format(record) == "warning: scrub found a problem (destination_id=4)"

    for handler in list(lifeboat_logger.handlers):
        lifeboat_logger.removeHandler(handler)
    ticked = CliRunner().invoke(cli.main, ["scheduler", "--once"])
    assert ticked.exit_code == 0, ticked.output
    assert [type(h.formatter) for h in lifeboat_logger.handlers] == [JsonFormatter]


def _flask_app(*args: str) -> subprocess.CompletedProcess[str]:
    """`flask --app app ARGS` from the checkout, in a process of its own, as an operator types it."""
    flask = Path(sys.executable).parent / "flask"
    return subprocess.run(
        [str(flask), "--app", "app", *args], cwd=ROOT, capture_output=True, text=True, timeout=120, check=False
    )


def test_a_command_through_flask_app_logs_the_same_plain_lines_as_the_console_script(
    nowhere: Path, tmp_path: Path
) -> None:
    # It printed JSON lines ({"level": "info", "logger": "lifeboat.config", ...}, "run started") among its sentences.
    imported = _flask_app("import-account", str(ALICE))
    assert imported.returncode == 0, imported.stderr
    assert imported.stdout.startswith("Imported alice@example.com")
    assert (
        imported.stderr == f"info: generated {nowhere / 'encryption_keys'} on first use; back it up with the database\n"
    )
    exported = _flask_app("export", "alice@example.com", "--out", str(tmp_path / "out"))
    assert exported.returncode == 0, exported.stderr
    assert exported.stderr == ""  # "run started" and the like are not for people, as with `lifeboat export`


def test_a_server_command_through_flask_app_keeps_json_lines(
    nowhere: Path, lifeboat_logger: logging.Logger, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Flask builds the app while it looks `scheduler` up, before it is known to be a server: plain first, then JSON.
    monkeypatch.setenv("FLASK_RUN_FROM_CLI", "")  # Flask's group sets it for the process; put back afterwards
    ticked = CliRunner().invoke(flask_cli, ["--app", "app", "scheduler", "--once"])
    assert ticked.exit_code == 0, ticked.output
    assert [type(h.formatter) for h in lifeboat_logger.handlers] == [JsonFormatter]

    for handler in list(lifeboat_logger.handlers):
        lifeboat_logger.removeHandler(handler)
    imported = CliRunner().invoke(flask_cli, ["--app", "app", "import-account", str(ALICE)])
    assert imported.exit_code == 0, imported.output
    assert [type(h.formatter) for h in lifeboat_logger.handlers] == [PlainFormatter]
