"""`lifeboat --help`, a command's help and a mistyped command create nothing.

Why: a user trial ran `lifeboat --help` to see what Lifeboat is and found an
instance folder with a database and generated keys in its wake. Only a
command that runs may build the app (and so the instance folder).
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner
from flask import Flask

import cli

ROOT = Path(__file__).resolve().parents[2]

ASKED_FOR_HELP = [
    [],
    ["--help"],
    ["export", "--help"],
    ["db", "--help"],
    ["db", "upgrade", "--help"],
    ["destination", "--help"],
    ["destination", "add-s3", "--help"],
    ["openapi", "--help"],
    ["shell", "--help"],
]
MISTYPED = [
    ["expot", "alice@example.com"],
    ["destination", "lst", "alice@example.com"],
    ["export"],  # its EMAIL missing
    ["export", "alice@example.com", "--bogus"],
    ["schedule", "alice@example.com", "--every", "hourly"],
]


@pytest.mark.parametrize("args", ASKED_FOR_HELP, ids=lambda a: " ".join(a) or "no arguments")
def test_help_creates_no_instance_folder(args: list[str], fresh_env: dict[str, str]) -> None:
    result = CliRunner().invoke(cli.main, args)
    assert result.exit_code in (0, 2), result.output  # a group without a command shows its help, exit 2
    assert "Usage: lifeboat" in result.output
    assert not Path(fresh_env["LIFEBOAT_INSTANCE_DIR"]).exists()


@pytest.mark.parametrize("args", MISTYPED, ids=" ".join)
def test_a_usage_error_creates_no_instance_folder(args: list[str], fresh_env: dict[str, str]) -> None:
    result = CliRunner().invoke(cli.main, args)
    assert result.exit_code == 2, result.output
    assert "Error: " in result.output and "Traceback" not in result.output
    assert not Path(fresh_env["LIFEBOAT_INSTANCE_DIR"]).exists()


@pytest.mark.slow  # real gpg keys or real processes: CI's whole suite, not test-fast
def test_the_console_script_help_creates_nothing(fresh_env: dict[str, str], tmp_path: Path) -> None:
    script = Path(sys.executable).parent / "lifeboat"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("LIFEBOAT_", "FLASK_"))} | fresh_env
    env["PYTHONPATH"] = str(ROOT)  # this checkout's code, whichever checkout the script was installed from
    for args in (["--help"], ["export", "--help"], ["expot"]):
        done = subprocess.run(
            [str(script), *args], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120, check=False
        )
        assert done.returncode in (0, 2) and "Traceback" not in done.stderr, done.stderr
    assert not Path(fresh_env["LIFEBOAT_INSTANCE_DIR"]).exists()
    assert [p.name for p in tmp_path.iterdir()] == []  # nor anything where it ran


def test_a_command_that_runs_still_builds_the_instance(fresh_env: dict[str, str]) -> None:
    result = CliRunner().invoke(cli.main, ["schedule", "nobody@example.com"])
    assert "Error: No user 'nobody@example.com'." in result.output, result.output
    assert (Path(fresh_env["LIFEBOAT_INSTANCE_DIR"]) / "lifeboat.sqlite3").exists()


def test_the_cli_offers_every_command_the_app_registers(app: Flask) -> None:
    # The console script finds commands without building the app: it must know all the app would have.
    with cli.main.make_context("lifeboat", [], resilient_parsing=True) as ctx:
        offered = set(cli.main.list_commands(ctx))
    assert set(app.cli.list_commands(ctx)) <= offered
