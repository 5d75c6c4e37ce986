"""Every command of the `lifeboat` CLI, on a fresh instance nobody has set up: answers, never tracebacks.

Why a walk rather than a test per command: the commands are enumerated from
the click group itself (subcommands included), so a command added later is
walked too, with no arguments unless `REALISTIC` gives it better ones. Each
run must either succeed or refuse with exactly one "Error: ..." line and a
non-zero exit; no traceback may appear in the output or in the logs.
"""

from __future__ import annotations

import io
import logging
import os
import socket
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import click
import pytest
from click.testing import CliRunner, Result

import cli
from logs import JsonFormatter

# Each test starts the console script in fresh processes, many times over.
pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[2]
ALICE = ROOT / "tests" / "data" / "alice.json"

# Realistic arguments per command path: what a newcomer might type, mostly wrong.
# Placeholders in braces are filled in by `_fill`. Commands missing here run with none.
REALISTIC: dict[str, list[list[str]]] = {
    "db downgrade": [[], ["no-such-revision"]],
    "import-account": [["{missing}.json"], ["{not_json}"]],
    "generate-account": [["not an address"], ["nobody@example.com", "--size", "huge"]],
    "export": [
        ["nobody@example.com"],
        ["nobody@example.com", "--out", "{not_a_folder}"],
        ["nobody@example.com", "--deliver"],
    ],
    "archive-options": [["nobody@example.com"], ["nobody@example.com", "--vcard-version", "4.0"]],
    "verify": [["{missing}.zip"], ["{not_json}"]],
    "restore": [["{missing}.zip", "--email", "nobody@example.com"], ["{not_json}", "--email", "nobody@example.com"]],
    "schedule": [["nobody@example.com"], ["nobody@example.com", "--every", "daily", "--at", "25:99"]],
    "scheduler": [["--once"]],  # without it the dispatcher runs until stopped
    "destination add-s3": [["nobody@example.com", "--bucket", "my-bucket"]],
    "destination add-email": [["nobody@example.com"], ["nobody@example.com", "--to", "not an address"]],
    "destination edit": [["nobody@example.com", "999", "--bucket", "b"], ["nobody@example.com", "not-a-number"]],
    "destination list": [["nobody@example.com"]],
    "destination remove": [["nobody@example.com", "999"], ["999"], ["nobody@example.com", "not-a-number"]],
    "destination test": [["nobody@example.com", "999"], ["999"], ["nobody@example.com", "not-a-number"]],
    "destination policy": [["nobody@example.com", "999"]],
    "destination retention": [
        ["nobody@example.com", "999", "--keep", "3"],
        ["nobody@example.com", "999", "--daily", "-1"],
    ],
    "destination prune": [
        ["nobody@example.com", "999", "--dry-run"],
        ["nobody@example.com", "999", "--monthly", "10001", "--dry-run"],
    ],
    "users create": [["not an address", "--role", "support", "--password-stdin"], ["a@example.com", "--role", "admin"]],
    "users set-role": [["nobody@example.com", "--role", "admin", "--reason", "promotion"]],
    "serve": [["--port", "{busy_port}"]],  # a free port would serve forever
    # Flask-Limiter's plugin: an operator lifting a sign-in lockout (without -y it asks first).
    "limiter clear": [["--key", "nobody@example.com", "-y"]],
}

SETTINGS = {
    "no settings": {},
    "only LIFEBOAT_SMTP_HOST": {"LIFEBOAT_SMTP_HOST": "mail.example.net"},
}


def command_paths(group: click.Group, ctx: click.Context, prefix: str = "") -> Iterator[str]:
    """Every leaf command's path ("db upgrade", "export", ...), as the group itself lists them."""
    for name in group.list_commands(ctx):
        command = group.get_command(ctx, name)
        assert command is not None, name
        path = f"{prefix}{name}"
        if isinstance(command, click.Group):
            yield from command_paths(command, ctx, f"{path} ")
        else:
            yield path


@pytest.fixture(autouse=True)
def log_stream() -> Iterator[io.StringIO]:
    """Lifeboat's JSON log lines, captured here.

    `logs.configure` then leaves the logger alone instead of binding a handler to
    the stderr of one CliRunner call that outlives it.
    """
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonFormatter())
    logger = logging.getLogger("lifeboat")
    logger.addHandler(handler)
    yield stream
    logger.removeHandler(handler)


@pytest.fixture
def busy_port() -> Iterator[int]:
    with socket.create_server(("127.0.0.1", 0)) as listener:
        yield listener.getsockname()[1]


def assert_answer(result: Result, what: str) -> None:
    """Success, or one "Error: ..." line and a non-zero exit; never a traceback."""
    output = result.output
    assert result.exc_info is None or result.exc_info[0] is SystemExit, f"{what} raised:\n{output}"
    assert "Traceback" not in output and 'File "' not in output, f"{what} printed a traceback:\n{output}"
    if result.exit_code != 0:
        errors = [line for line in output.splitlines() if line.startswith("Error:")]
        assert len(errors) == 1, f"{what} exited {result.exit_code} without one Error line:\n{output}"
        assert len(errors[0]) > len("Error: ") + 10, f"{what}: {errors[0]!r} says nothing"


def _fill(args: list[str], values: dict[str, str]) -> list[str]:
    return [arg.format(**values) for arg in args]


@pytest.mark.parametrize("settings", SETTINGS.values(), ids=SETTINGS.keys())
def test_every_command_answers_on_a_fresh_instance(
    settings: dict[str, str],
    fresh_env: dict[str, str],
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    log_stream: io.StringIO,
    busy_port: int,
) -> None:
    for name, value in settings.items():
        monkeypatch.setenv(name, value)
    not_json = tmp_path / "notes.txt"
    not_json.write_text("this is not an account or an archive\n", "utf-8")
    (tmp_path / "a-file").write_text("", "utf-8")
    values = {
        "missing": str(tmp_path / "no-such-file"),
        "not_json": str(not_json),
        "not_a_folder": str(tmp_path / "a-file" / "out"),
        "busy_port": str(busy_port),
    }
    with cli.main.make_context("lifeboat", [], resilient_parsing=True) as ctx:
        paths = list(command_paths(cli.main, ctx))
    # The walk must see the commands README promises, or it proves nothing.
    assert {"db upgrade", "import-account", "export", "schedule", "destination list", "serve"} <= set(paths)
    runner = CliRunner()
    for path in paths:
        for args in REALISTIC.get(path, [[]]):
            argv = [*path.split(), *_fill(args, values)]
            result = runner.invoke(cli.main, argv, input="")
            assert_answer(result, f"lifeboat {' '.join(argv)}")
    logs = log_stream.getvalue()
    assert "Traceback" not in logs, logs


def test_commands_that_used_to_crash_now_answer_in_one_line(fresh_env: dict[str, str], log_stream: io.StringIO) -> None:
    runner = CliRunner()
    result = runner.invoke(cli.main, ["export", "nobody@example.com"])
    assert result.exit_code == 1
    assert result.output.startswith("Error: No user 'nobody@example.com'.")
    result = runner.invoke(cli.main, ["import-account", str(ALICE)])
    assert result.exit_code == 0, result.output
    result = runner.invoke(cli.main, ["schedule", "alice@example.com", "--every", "daily", "--at", "02:00"])
    assert result.exit_code == 0, result.output
    result = runner.invoke(cli.main, ["destination", "list", "alice@example.com"])
    assert result.exit_code == 0, result.output
    assert result.output.startswith("alice@example.com has no destinations; add one with")


def test_a_broken_setting_is_one_line_naming_it(fresh_env: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> None:
    runner = CliRunner()
    for settings, expected in [
        ({"LIFEBOAT_SMTP_HOST": "mail.test", "LIFEBOAT_MAIL_FROM": "root@localhost"}, "LIFEBOAT_MAIL_FROM"),
        ({"LIFEBOAT_RUN_LEASE_SECONDS": "soon"}, "LIFEBOAT_RUN_LEASE_SECONDS must be a whole number"),
        ({"LIFEBOAT_ENCRYPTION_KEYS": "not-a-key"}, "Key 1 in LIFEBOAT_ENCRYPTION_KEYS is not a Fernet key"),
        ({"LIFEBOAT_DATABASE_URL": "postgres://db/lifeboat"}, "LIFEBOAT_DATABASE_URL is not a usable database URL"),
        ({"LIFEBOAT_DATABASE_URL": "mysql://db/lifeboat"}, "its driver (MySQLdb) is not installed"),
    ]:
        with monkeypatch.context() as patch:
            for name, value in settings.items():
                patch.setenv(name, value)
            result = runner.invoke(cli.main, ["export", "nobody@example.com"])
        assert result.exit_code == 1, result.output
        assert result.output.count("\n") == 1 and result.output.startswith("Error: "), result.output
        assert expected in result.output
        assert "not-a-key" not in result.output  # a key, even a broken one, is never echoed


def test_serve_on_a_busy_port_refuses_before_starting_any_export_thread(
    fresh_env: dict[str, str], busy_port: int
) -> None:
    result = CliRunner().invoke(cli.main, ["serve", "--port", str(busy_port)])
    assert result.exit_code == 1
    assert result.output.startswith(f"Error: Cannot listen on 127.0.0.1:{busy_port}")
    embedded = [t.name for t in threading.enumerate() if t.name == "APScheduler" or t.name.startswith("lifeboat-")]
    assert embedded == []


def test_the_console_script_works_from_another_folder(tmp_path: Path) -> None:
    script = Path(sys.executable).parent / "lifeboat"
    assert script.exists(), "the console script is missing: run `.venv/bin/pip install -e .`"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("LIFEBOAT_", "FLASK_"))}
    env.update(FLASK_SKIP_DOTENV="1", LIFEBOAT_INSTANCE_DIR=str(tmp_path / "instance"), LIFEBOAT_SMTP_HOST="mail.test")
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()

    def lifeboat(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [str(script), *args], cwd=elsewhere, env=env, capture_output=True, text=True, timeout=120, check=False
        )

    missing = lifeboat("export", "alice@example.com")
    assert missing.returncode == 1
    # First use: one note that a key was generated (to back up), then the answer.
    first_use, answer = missing.stderr.strip().splitlines()
    assert "encryption_keys on first use; back it up" in first_use
    assert answer.startswith("Error: No user 'alice@example.com'.")
    assert "Traceback" not in missing.stderr
    imported = lifeboat("import-account", str(ALICE))
    assert imported.returncode == 0, imported.stderr
    exported = lifeboat("export", "alice@example.com", "--out", "backups")
    assert exported.returncode == 0, exported.stderr
    archive = elsewhere / exported.stdout.splitlines()[0]
    assert archive.parent == elsewhere / "backups"  # --out is relative to where the user is
    verified = lifeboat("verify", str(archive))
    assert verified.returncode == 0 and ": OK" in verified.stdout, verified.stderr
    # The state lives in the instance folder, not in the folder the command ran from.
    assert (tmp_path / "instance" / "lifeboat.sqlite3").exists()
    assert sorted(p.name for p in elsewhere.iterdir()) == ["backups"]


def test_flask_app_still_works_from_the_checkout(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("LIFEBOAT_", "FLASK_"))}
    env.update(FLASK_SKIP_DOTENV="1", LIFEBOAT_INSTANCE_DIR=str(tmp_path / "instance"))
    flask = Path(sys.executable).parent / "flask"
    done = subprocess.run(
        [str(flask), "--app", "app", "schedule", "nobody@example.com"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 1
    assert done.stderr.splitlines()[-1].startswith("Error: No user 'nobody@example.com'."), done.stderr
    assert "Traceback" not in done.stderr
