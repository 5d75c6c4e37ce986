"""The embedded default on first use: keys generated into the instance folder, a new SQLite database migrated.

Why: a newcomer must get a working instance without making up a secret or
running `db upgrade`; what is generated must be owner-only, survive restarts
and never reach a log; and a database that already holds data keeps the
upgrade guard (`db upgrade` refuses while someone lacks a fresh archive).
"""

from __future__ import annotations

import json
import logging
import os
import stat
import threading
from pathlib import Path

import pytest
from click.testing import CliRunner
from cryptography.fernet import Fernet
from flask import Flask
from sqlalchemy import inspect

import cli
import config
from app import create_app
from delivery.secrets import SecretBox, SecretKeyError
from jobs.destination_backends import Registry
from store import Database, Destination, get_db, migrate

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(autouse=True)
def no_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in list(os.environ):
        if name.startswith(("LIFEBOAT_", "FLASK_")):
            monkeypatch.delenv(name)
    monkeypatch.setenv("FLASK_SKIP_DOTENV", "1")


def fresh_app(instance: Path, **settings: object) -> Flask:
    return create_app({"TESTING": True, "INSTANCE_PATH": str(instance), **settings})


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_it_generates_owner_only_keys_on_first_use_and_reuses_them(tmp_path: Path) -> None:
    instance = tmp_path / "instance"
    first = fresh_app(instance)
    secret_file, keys_file = instance / "secret_key", instance / "encryption_keys"
    assert mode(secret_file) == 0o600 and mode(keys_file) == 0o600
    assert mode(instance) == 0o700  # the folder it made holds keys, database and archives
    assert first.config["SECRET_KEY"] == secret_file.read_text("utf-8").strip()
    assert len(first.config["SECRET_KEY"]) >= 64
    [key] = first.config["ENCRYPTION_KEYS"]
    Fernet(key)  # a real Fernet key
    get_db(first).dispose()
    restarted = fresh_app(instance)
    assert restarted.config["SECRET_KEY"] == first.config["SECRET_KEY"]
    assert restarted.config["ENCRYPTION_KEYS"] == [key]
    get_db(restarted).dispose()


def test_a_secret_stored_before_a_restart_is_readable_after_it(tmp_path: Path) -> None:
    instance = tmp_path / "instance"
    token = Registry(dict(fresh_app(instance).config)).encrypt({"secret_access_key": "s3cr3t"})
    again = Registry(dict(fresh_app(instance).config))
    assert again.box is not None
    assert json.loads(again.box.decrypt(token)) == {"secret_access_key": "s3cr3t"}


def test_keys_given_in_settings_are_used_and_nothing_is_generated(tmp_path: Path) -> None:
    key = SecretBox.generate_key()
    app = fresh_app(tmp_path / "instance", SECRET_KEY="given", ENCRYPTION_KEYS=[key])
    assert (app.config["SECRET_KEY"], app.config["ENCRYPTION_KEYS"]) == ("given", [key])
    assert not (tmp_path / "instance" / "secret_key").exists()
    assert not (tmp_path / "instance" / "encryption_keys").exists()


def test_generated_keys_never_reach_the_logs_or_the_output(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setenv("LIFEBOAT_INSTANCE_DIR", str(tmp_path / "instance"))
    caplog.set_level(logging.DEBUG)
    runner = CliRunner()
    outputs = [
        runner.invoke(cli.main, ["import-account", str(ROOT / "tests" / "data" / "alice.json")]).output,
        runner.invoke(
            cli.main, ["destination", "add-s3", "alice@example.com", "--bucket", "b", "--access-key-id", "AKIA"]
        ).output,
        runner.invoke(cli.main, ["destination", "list", "alice@example.com"]).output,
    ]
    secret = (tmp_path / "instance" / "secret_key").read_text("utf-8").strip()
    key = (tmp_path / "instance" / "encryption_keys").read_text("utf-8").strip()
    assert "encryption_keys on first use" in caplog.text  # the logs were captured, and say where
    for text in (caplog.text, *outputs):
        assert secret not in text and key not in text


def test_add_s3_on_the_embedded_default_stores_the_credentials_encrypted(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("LIFEBOAT_INSTANCE_DIR", str(tmp_path / "instance"))
    monkeypatch.setenv("LIFEBOAT_NEW_SECRET_ACCESS_KEY", "wJalrXUtnFEMI-example-secret")
    runner = CliRunner()
    assert runner.invoke(cli.main, ["import-account", str(ROOT / "tests" / "data" / "alice.json")]).exit_code == 0
    result = runner.invoke(
        cli.main,
        ["destination", "add-s3", "alice@example.com", "--bucket", "my-bucket", "--access-key-id", "AKIAX", "--json"],
    )
    assert result.exit_code == 0, result.output
    assert json.loads(result.output)["has_secret"] is True
    app = fresh_app(tmp_path / "instance")
    with get_db(app).session() as session:
        [row] = session.query(Destination).all()
        assert row.secret_token and "wJalrXUtnFEMI" not in row.secret_token
        assert Registry(dict(app.config)).decrypt(row)["secret_access_key"] == "wJalrXUtnFEMI-example-secret"


def test_a_shared_database_gets_no_made_up_encryption_key(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    # A key invented on one host would leave what it encrypted unreadable on the others. A server refuses
    # to start so (tests/unit/test_startup_refusal.py); a command may run, and storing a secret is refused
    # in neutral words, the operator's instructions going to the log.
    app = create_app(
        {"TESTING": True, "INSTANCE_PATH": str(tmp_path / "instance"), "DATABASE_URL": SHARED}, command_line=True
    )
    assert app.config["ENCRYPTION_KEYS"] == []
    assert not (tmp_path / "instance" / "encryption_keys").exists()
    with caplog.at_level(logging.ERROR, logger="lifeboat.delivery"), pytest.raises(SecretKeyError) as refused:
        Registry(dict(app.config)).encrypt({"secret_access_key": "x"})
    assert str(refused.value) == "Saving or using stored credentials is unavailable right now; try again later."
    assert [r.getMessage() for r in caplog.records if "LIFEBOAT_ENCRYPTION_KEYS is not set" in r.getMessage()]


SHARED = "postgresql+psycopg://lifeboat@db.invalid/lifeboat"


def test_processes_starting_together_agree_on_one_key(tmp_path: Path) -> None:
    barrier = threading.Barrier(8)
    results: list[str] = []

    def start(n: int) -> None:
        barrier.wait()
        results.append(config.instance_secret(tmp_path, "secret_key", lambda: f"key-{n}"))

    threads = [threading.Thread(target=start, args=(n,)) for n in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(set(results)) == 1 and results[0] == (tmp_path / "secret_key").read_text("utf-8").strip()
    assert [p.name for p in tmp_path.iterdir()] == ["secret_key"]  # no temporary file left


def test_an_empty_key_file_is_refused_rather_than_replaced(tmp_path: Path) -> None:
    (tmp_path / "encryption_keys").write_text("\n", "utf-8")
    with pytest.raises(config.ConfigError, match="is empty: restore it from a backup"):
        config.instance_secret(tmp_path, "encryption_keys", SecretBox.generate_key)


def test_a_new_sqlite_database_gets_the_newest_schema_on_first_use(tmp_path: Path) -> None:
    app = fresh_app(tmp_path / "instance")
    database = get_db(app)
    assert migrate.current_revision(database) == migrate.head_revision(database)
    assert "users" in inspect(database.engine).get_table_names()
    database.dispose()


def test_schema_creation_runs_once_when_processes_start_together(tmp_path: Path) -> None:
    # Several rounds: the losers of the race to open a brand-new file used to fail at once
    # with "database is locked" in about one round in ten.
    for round_ in range(6):
        url = f"sqlite:///{tmp_path / f'lifeboat-{round_}.sqlite3'}"
        barrier = threading.Barrier(8)
        created: list[bool] = []
        errors: list[BaseException] = []

        def start(
            url: str = url,
            barrier: threading.Barrier = barrier,
            created: list[bool] = created,
            errors: list[BaseException] = errors,
        ) -> None:
            database = Database(url)
            try:
                barrier.wait()
                created.append(migrate.create_schema_if_new(database))
            except BaseException as exc:
                errors.append(exc)
            finally:
                database.dispose()

        threads = [threading.Thread(target=start) for _ in range(8)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert not errors, errors
        assert sorted(created) == [False] * 7 + [True]


def test_an_older_schema_is_left_to_db_upgrade_and_commands_say_so(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    instance = tmp_path / "instance"
    instance.mkdir()
    database = Database(f"sqlite:///{instance / 'lifeboat.sqlite3'}")
    migrate.upgrade(database, "0003")
    monkeypatch.setenv("LIFEBOAT_INSTANCE_DIR", str(instance))
    result = CliRunner().invoke(cli.main, ["export", "alice@example.com"])
    assert result.exit_code == 1
    assert result.output.splitlines()[-1] == (
        "Error: The database schema is at revision 0003, this Lifeboat needs "
        f"{migrate.head_revision(database)}: run `lifeboat export-all`, then `lifeboat db upgrade`."
    )
    assert migrate.current_revision(database) == "0003"  # first use never migrates existing data
    database.dispose()
