"""The application factory: wire the parts together, nothing else of weight.

Why here and nowhere else: the parts (store, exporters, delivery, jobs, web)
import one way only (see [tool.importlinter] in pyproject.toml); the one module
that may know all of them builds the app from them, hands `cli` the parts'
commands, and reads settings from the schema in `config`.
"""

from __future__ import annotations

import datetime as dt
import logging
import os
import secrets
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn

from flask import Flask

import config

if TYPE_CHECKING:
    import cli

ROOT = Path(__file__).resolve().parent
log = logging.getLogger("lifeboat.app")


def create_app(test_config: Mapping[str, Any] | None = None, *, command_line: bool = False) -> Flask:
    """Build the app: defaults, then the environment, then `test_config`.

    The embedded default (SQLite under the instance folder) needs no setup at
    all: missing keys are generated into the instance folder and a brand-new
    SQLite database gets its schema, both on first use. Settings a server
    cannot run with (`config.startup_refusal`) stop it here with one line,
    unless `command_line` (the `lifeboat` commands, of which `serve` and
    `scheduler` check for themselves and the others may mend the settings).
    """
    test_config = dict(test_config or {})
    instance = test_config.pop("INSTANCE_PATH", None) or config.instance_dir(default_instance_dir())
    app = Flask(
        __name__,
        instance_path=str(instance),
        instance_relative_config=True,
        template_folder=str(ROOT / "templates"),
        static_folder=str(ROOT / "static"),
    )
    app.config.from_mapping(config.load(app.instance_path))
    app.config.from_mapping(test_config)
    refusal = config.startup_refusal(app.config)
    if refusal is not None and not command_line:
        refuse_to_start(refusal)
    # Owner-only when we create it: it holds the keys, the database and everyone's archives.
    os.makedirs(app.instance_path, mode=0o700, exist_ok=True)
    os.makedirs(app.config["ARCHIVE_DIR"], exist_ok=True)

    import cli
    import jobs
    import store
    import web
    from store import migrate
    from web import links

    if not app.testing:
        cli.configure_logs(app.config["LOG_LEVEL"])  # plain lines for a command a person runs, else JSON
    _generate_missing_keys(app, warn_unsigned=not command_line or cli.makes_archives())
    store.init_app(app)
    if migrate.create_schema_if_new(store.get_db(app)):
        log.debug("created the database schema (first use)")
    jobs.init_app(app, download_link=links.link_maker(app), app_factory=create_app)
    web.init_app(app)
    cli.init_app(
        app,
        commands=cli_commands(),
        hooks=cli.Hooks(
            start_background=jobs.start_embedded,
            schema_advice=lambda: migrate.schema_advice(store.get_db()),
            close=lambda done: store.get_db(done).dispose(),
        ),
    )
    if app.config["RUN_SCHEDULER"] and not app.testing:
        jobs.start_embedded(app)
    return app


def refuse_to_start(message: str) -> NoReturn:
    """Stop the process with `message` as one line and no traceback (the WSGI app and Celery workers).

    Exit status 4 is what gunicorn's master reads as "App failed to load" and
    stops on, instead of starting the worker again and again; any other caller
    (celery, python) exits with it too.
    """
    # One write, line end included: `print` writes the text and its line end apart, and gunicorn's
    # master, writing to the same stderr, once landed its own line between the two (CI, 2026-12-08).
    sys.stderr.write(f"Error: {message}\n")
    sys.stderr.flush()
    raise SystemExit(APP_LOAD_ERROR)


APP_LOAD_ERROR = 4  # gunicorn.arbiter.Arbiter.APP_LOAD_ERROR


def cli_commands() -> cli.Commands:
    """The parts' commands for the CLI, gathered without building an app.

    Why apart from `create_app`: `lifeboat --help`, `lifeboat COMMAND --help` and a
    mistyped command need only the commands, and building the app creates the
    instance folder, its keys and a database (a user trial found `--help` doing so).
    """
    import cli
    from jobs.commands import COMMANDS as JOB_COMMANDS
    from jobs.commands import db_upgrade_command
    from store.schema_commands import SCHEMA_COMMANDS
    from web.api import CLI_COMMANDS as WEB_COMMANDS

    return cli.Commands(commands=[*JOB_COMMANDS, *WEB_COMMANDS], db=[db_upgrade_command, *SCHEMA_COMMANDS])


def default_instance_dir() -> Path:
    """Where settings-free state lives when LIFEBOAT_INSTANCE_DIR is not set.

    A source checkout (the one `make run` and the README use) keeps it in its own
    `instance/` whatever folder a command runs from, so `lifeboat` run from
    elsewhere finds the same database; an installed copy has no checkout to
    write into and uses the per-user data folder instead.
    """
    if (ROOT / "pyproject.toml").is_file():
        return ROOT / "instance"
    data_home = os.environ.get("XDG_DATA_HOME") or os.path.join(os.path.expanduser("~"), ".local", "share")
    return Path(data_home) / "lifeboat"


def _generate_missing_keys(app: Flask, *, warn_unsigned: bool = True) -> None:
    """Fill in the session, encryption and signing keys the operator did not set.

    The session key is always safe to keep per instance folder. The encryption
    keys only on SQLite: a database shared between hosts (PostgreSQL) needs the
    same keys on every host, and a key made up on one host would leave the
    secrets it encrypted unreadable on the others, so there the operator sets
    LIFEBOAT_ENCRYPTION_KEYS and storing a secret without it is refused. The
    manifest signing keys likewise: every host must sign with the key the web
    hosts publish, so on PostgreSQL archives are unsigned until the operator
    sets LIFEBOAT_SIGNING_KEYS, and said so by every process that makes archives (`warn_unsigned`;
    not by `signing-key new`, which makes the key, nor by `db upgrade`: `cli.makes_archives`).
    """
    instance = Path(app.instance_path)
    if not app.config["SECRET_KEY"]:
        app.config["SECRET_KEY"] = config.instance_secret(instance, "secret_key", lambda: secrets.token_urlsafe(48))
    if not app.config["ENCRYPTION_KEYS"] and str(app.config["DATABASE_URL"]).startswith("sqlite"):
        from delivery.secrets import SecretBox

        # Said once at INFO: without this file the stored destination credentials are lost.
        keys = config.instance_secret(instance, "encryption_keys", SecretBox.generate_key, level=logging.INFO)
        app.config["ENCRYPTION_KEYS"] = config.split_keys(keys)
        app.config["ENCRYPTION_KEYS_SOURCE"] = str(instance / "encryption_keys")
    app.config["SIGNING_KEYS_SOURCE"] = None
    if not app.config["SIGNING_KEYS"] and str(app.config["DATABASE_URL"]).startswith("sqlite"):
        from exporters.archive.signature import new_signing_keys

        # Every archive's manifest is signed with it; losing it only means new archives get a new key.
        keys = config.instance_secret(instance, "signing_keys", lambda: new_signing_keys(dt.date.today()))
        app.config["SIGNING_KEYS"] = keys
        app.config["SIGNING_KEYS_SOURCE"] = str(instance / "signing_keys")
    elif not app.config["SIGNING_KEYS"] and warn_unsigned:
        # Said on every start: nothing else shows that archives go out unsigned (verify calls them "unsigned").
        log.warning(
            "archives are not signed: set LIFEBOAT_SIGNING_KEYS (the same on every host; "
            "`lifeboat signing-key new` prints one) so that verify can tell an edited archive"
        )
