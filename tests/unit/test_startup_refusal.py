"""A server on a shared database without LIFEBOAT_ENCRYPTION_KEYS refuses to start, in one line.

The trial: on PostgreSQL without the key the service started anyway, and users
met operator instructions ("set it … python -c …") in a form error when they
saved a bucket. The WSGI app (`gunicorn 'app:create_app()'`), Celery workers
(`make_celery`), `lifeboat serve` and `lifeboat scheduler` now refuse to start
with one line and no traceback; the embedded SQLite default still needs no
secret set by hand (its key is generated into the instance folder).
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

import cli
import config
from app import create_app

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
SHARED = "postgresql+psycopg://lifeboat@db.invalid/lifeboat"  # never reached: the refusal comes first
LINE = config.startup_refusal({"DATABASE_URL": SHARED})


@pytest.fixture(autouse=True)
def no_settings(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    for name in list(os.environ):
        if name.startswith(("LIFEBOAT_", "FLASK_")):
            monkeypatch.delenv(name)
    monkeypatch.setenv("FLASK_SKIP_DOTENV", "1")
    monkeypatch.setenv("LIFEBOAT_INSTANCE_DIR", str(tmp_path / "instance"))


def test_the_refusal_names_the_setting_and_how_to_make_a_key_in_one_line() -> None:
    assert LINE is not None and "\n" not in LINE
    assert LINE.startswith("LIFEBOAT_ENCRYPTION_KEYS is not set") and "Fernet.generate_key()" in LINE
    assert config.startup_refusal({"DATABASE_URL": SHARED, "ENCRYPTION_KEYS": ["k"]}) is None
    assert config.startup_refusal({"DATABASE_URL": "sqlite:///x.sqlite3", "ENCRYPTION_KEYS": []}) is None


def test_the_app_factory_stops_with_the_line_and_gunicorns_app_load_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as stopped:
        create_app({"TESTING": True, "INSTANCE_PATH": str(tmp_path / "instance"), "DATABASE_URL": SHARED})
    assert stopped.value.code == 4  # gunicorn's master stops on it ("App failed to load") instead of respawning
    assert capsys.readouterr().err == f"Error: {LINE}\n"
    assert not (tmp_path / "instance" / "encryption_keys").exists()  # no key made up for a shared database


def test_the_embedded_sqlite_default_starts_without_any_secret_set(tmp_path: Path) -> None:
    app = create_app({"TESTING": True, "INSTANCE_PATH": str(tmp_path / "instance")})
    assert app.config["ENCRYPTION_KEYS"] and (tmp_path / "instance" / "encryption_keys").exists()


@pytest.mark.parametrize("args", [["serve", "--port", "0"], ["scheduler", "--once"]])
def test_serve_and_the_scheduler_refuse_in_one_line(monkeypatch: pytest.MonkeyPatch, args: list[str]) -> None:
    monkeypatch.setenv("LIFEBOAT_DATABASE_URL", SHARED)
    result = CliRunner().invoke(cli.main, args)
    assert result.exit_code == 1
    # The last line; before it may come the start's own warnings (archives unsigned without SIGNING_KEYS).
    assert result.output.splitlines()[-1] == f"Error: {LINE}" and "Traceback" not in result.output


@pytest.mark.server
@pytest.mark.parametrize(
    "command",
    [
        [str(BIN / "gunicorn"), "-b", "127.0.0.1:0", "app:create_app()"],
        [str(BIN / "celery"), "-A", "make_celery", "worker", "--pool=threads", "-c", "1"],
    ],
    ids=["gunicorn", "celery"],
)
def test_the_wsgi_app_and_a_celery_worker_exit_with_the_line_and_no_traceback(
    tmp_path: Path, command: list[str]
) -> None:
    env = {**os.environ, "LIFEBOAT_DATABASE_URL": SHARED}
    done = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=120, check=False)
    output = done.stdout + done.stderr
    assert done.returncode == 4, output  # celery and python exit with it; gunicorn's master passes it on
    assert f"Error: {LINE}\n" in output and "Traceback" not in output, output
