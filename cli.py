"""Command-line entry points: the `lifeboat` console script and `flask --app app ...`.

Why one error mechanism here rather than try/except in each command: a
command that cannot proceed (a setting it cannot start with, a database
without tables, a file it may not write) must print one line saying what to
do and exit non-zero, and a command added next year must get that for free.
`one_line_errors` decides which exceptions are such refusals; `LifeboatGroup`
(the console script) applies it to loading the app and to every command, and
`init_app` applies it to the commands `flask --app app` finds on `app.cli`.
Anything else is a bug and keeps its traceback.

Why this module imports none of the parts: `app.py` is the one place that
wires parts together, so it hands `init_app` the parts' commands and the few
calls this module needs (`Hooks`); the parts never learn about the CLI's shape.
"""

from __future__ import annotations

import sys
from pathlib import Path

import errors

# The console script (`.venv/bin/lifeboat`) imports this module first: take SIGTERM/SIGINT
# before importing Flask, SQLAlchemy and Alembic (most of a second), or a stop then ends
# the process silently (user trial). Only there: tests and `flask --app app` import it too.
CONSOLE_SCRIPT = Path(sys.argv[0]).name == "lifeboat"
if CONSOLE_SCRIPT:
    errors.exit_on_signals_until_started()

import copy
import functools
import signal
import socket
import threading
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import click
from alembic.util import CommandError
from flask import Flask, current_app
from flask.cli import FlaskGroup, ScriptInfo, routes_command, shell_command, with_appcontext
from sqlalchemy.exc import ArgumentError, DBAPIError, NoSuchTableError

import logs
from config import BY_NAME, ConfigError, instance_dir, is_set, startup_refusal
from errors import DeliveryError, LifeboatError, UserError, command_finished, stop_on_signals

EXTENSION = "lifeboat.cli"


@dataclass(frozen=True)
class Hooks:
    """What the CLI needs from the parts, handed over by `app.py`."""

    start_background: Callable[[Flask], None]  # `serve`: the embedded scheduler and export pool
    schema_advice: Callable[[], str | None]  # a database error's advice (`db upgrade`) in an app context
    close: Callable[[Flask], None]  # a command ended: release the database pool


# Already one clear line (click prints "Error: ..."), or not an error at all.
_CLICK_OWN = (click.ClickException, click.exceptions.Exit, click.Abort)


def refusal(exc: BaseException) -> str | None:
    """The line to print for an error that stops a command, or None for a bug (keep its traceback)."""
    if isinstance(exc, DeliveryError):
        return exc.user_message
    if isinstance(exc, UserError):
        return str(exc)  # safe to show and already says what to fix, problem list included
    if isinstance(exc, ConfigError | LifeboatError):
        return _one_line(str(exc))
    if isinstance(exc, DBAPIError | NoSuchTableError):
        return _database_refusal(exc)
    if isinstance(exc, ArgumentError):  # create_engine refusing the URL (which is never echoed: passwords)
        return f"LIFEBOAT_DATABASE_URL is not a usable database URL: {_one_line(str(exc))}"
    if isinstance(exc, CommandError):  # Alembic: an unknown revision and the like
        return f"Migration: {_one_line(str(exc))}"
    if isinstance(exc, OSError):
        where = f"{exc.filename}: " if exc.filename else ""
        return f"{where}{exc.strerror or exc}"
    return None


def _database_refusal(exc: BaseException) -> str:
    """Name the fix (`db upgrade`) when the schema is missing or old, else the driver's first line."""
    if current_app and EXTENSION in current_app.extensions:
        advice = current_app.extensions[EXTENSION].schema_advice()
        if advice:
            return advice
    original = getattr(exc, "orig", None) or exc
    return f"Database error: {_one_line(str(original))} (check LIFEBOAT_DATABASE_URL)"


def _one_line(text: str) -> str:
    lines = [line.strip() for line in text.strip().splitlines() if line.strip()]
    return lines[0] if lines else "unknown error"


@contextmanager
def one_line_errors() -> Iterator[None]:
    """Turn refusals (see `refusal`) into a ClickException: "Error: <one line>", exit status 1."""
    try:
        yield
    except _CLICK_OWN:
        raise
    except Exception as exc:
        message = refusal(exc)
        if message is None:
            raise
        raise click.ClickException(message) from None


def guarded(command: click.Command) -> click.Command:
    """A copy of `command` (and of its subcommands) whose callbacks run under `one_line_errors`.

    A copy, so the module-level command objects stay untouched however many
    apps register them (the tests build hundreds).
    """
    result = copy.copy(command)
    if command.callback is not None:
        result.callback = _guard_callback(command.callback)
    if isinstance(result, click.Group):  # a copy of a group is a group
        result.commands = {name: guarded(sub) for name, sub in result.commands.items()}
    return result


def _guard_callback(callback: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(callback)
    def run(*args: Any, **kwargs: Any) -> Any:
        # A stop signal is one line too (`flask --app app` has no `LifeboatGroup.main` around it).
        # A command that writes nothing (`errors.stopped_says`) says so of a stop while its app loads too.
        with stop_on_signals(again=getattr(callback, "stopped_again", None)), one_line_errors():
            _json_for_a_server()
            if getattr(callback, "instance_if_any", False):
                _app_context_if_instance()
            result = callback(*args, **kwargs)
            command_finished()  # a stop signal from here on meets a finished command
        return result

    return run


def _app_context_if_instance() -> None:
    """Push the app's context for the running command only where its instance folder exists (or the app is given).

    For commands that can do without the app (`verify`: a file and, if there is one, the service's
    keys), marked `instance_if_any` (`errors.instance_if_any`). Building the app creates the instance folder,
    its keys and a database, and `verify` on a checkout without one did so (user trial).
    """
    if current_app:
        return
    ctx = click.get_current_context()
    info = ctx.ensure_object(ScriptInfo)
    # Ours to build (the console script, `flask --app app`): only over an existing instance folder.
    # A test's runner hands its app over ready-made.
    if info.create_app in (None, _create_app):
        from app import default_instance_dir

        if not instance_dir(default_instance_dir()).exists():
            return
    ctx.with_resource(info.load_app().app_context())


@click.command("serve")
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=5000, show_default=True, help="0 picks a free port.")
@click.option("--threads", default=32, show_default=True, help="Requests served at once (a download holds one).")
@with_appcontext
def serve_command(host: str, port: int, threads: int) -> None:
    """Serve the web app and run the scheduler and exports in this one process (embedded).

    Why gunicorn with one worker process of many threads: it sends archives with
    `sendfile` (werkzeug's development server copied them 8 KiB at a time, at
    0.15x `cp`) and serves pages several times faster, while the embedded
    scheduler and export pool, started in that one worker once it runs, still
    exist exactly once. gunicorn's master only watches the worker and starts a
    new one (with its own scheduler) if it dies. The scale-out deployment runs
    `gunicorn 'app:create_app()'` without a scheduler (docs/deployment.md).
    """
    from gunicorn.app.base import BaseApplication  # type: ignore[import-untyped]  # gunicorn ships no type hints

    app: Flask = current_app._get_current_object()  # type: ignore[attr-defined]  # flask types the proxy as Flask
    if (refusal := startup_refusal(app.config)) is not None:
        raise click.ClickException(refusal)  # one line for the operator, before anything listens or starts
    hooks: Hooks = app.extensions[EXTENSION]
    # Listen before anything starts, so a busy port is one clear line and leaves no threads behind.
    try:
        listener = socket.create_server((host, port), backlog=2048)
    except OSError as exc:
        raise click.ClickException(
            f"Cannot listen on {host}:{port}: {exc.strerror or exc}. Stop whatever uses it or pass another --port."
        ) from None
    listener.set_inheritable(True)
    bound_port = listener.getsockname()[1]
    follow_listener(app, host, bound_port)
    # The worker is a fork of this process: it must open its own database connections.
    hooks.close(app)
    workers = app.config["EMBEDDED_WORKERS"]
    forks = [0]  # counted in the master before each fork; a worker sees the count it was forked at

    def worker_ready(_worker: object) -> None:
        hooks.start_background(app)
        if forks[0] == 1:  # the first worker says where it serves; a replacement starts quietly
            click.echo(f"Lifeboat on http://{host}:{bound_port}/ (scheduler and {workers} export workers)")

    def count_fork(_server: object, _worker: object) -> None:
        forks[0] += 1

    class Embedded(BaseApplication):
        def load_config(self) -> None:
            settings = {
                "bind": [f"fd://{listener.fileno()}"],
                "workers": 1,
                "worker_class": "gthread",
                "threads": threads,
                "keepalive": 5,
                "timeout": 60,
                "graceful_timeout": 10,
                "accesslog": None,
                "errorlog": "-",
                "loglevel": "warning",
                "proc_name": "lifeboat",
                "pre_fork": count_fork,
                "post_worker_init": worker_ready,
            }
            # gunicorn 25+ also opens a control socket at one path per OS user (~/.gunicorn/gunicorn.ctl),
            # shared by every instance that user runs (user trial). Lifeboat uses none of its commands.
            if "control_socket_disable" in self.cfg.settings:
                settings["control_socket_disable"] = True
            for key, value in settings.items():
                self.cfg.set(key, value)

        def load(self) -> Flask:
            return app

    Embedded().run()


def follow_listener(app: Flask, host: str, port: int) -> None:
    """Point BASE_URL at where `serve` listens, unless the operator chose it (LIFEBOAT_BASE_URL or the app's config).

    Why: its default (http://127.0.0.1:5000) is only a guess at this address; with
    `--port 8080` the /automate page, sign-up and password mails would otherwise
    send people to port 5000, where nothing answers. A wildcard host (0.0.0.0, ::)
    names no address others can use, so loopback stands for it, as in the default.
    """
    default = BY_NAME["BASE_URL"].default
    if is_set("BASE_URL") or app.config["BASE_URL"] != default:
        return
    if host in ("", "0.0.0.0"):  # noqa: S104  (compared, not bound)
        host = "127.0.0.1"
    elif host == "::":
        host = "::1"
    app.config["BASE_URL"] = f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}"


@dataclass(frozen=True)
class Commands:
    """The parts' commands, handed over by `app.py` (`app.cli_commands`) without building an app."""

    commands: Sequence[click.Command]
    db: Sequence[click.Command]  # under `db`

    def guarded(self) -> list[click.Command]:
        """Every command the CLI offers: a `db` group, the parts' commands and `serve`, each guarded."""
        db = click.Group("db", help="Database schema migrations.", commands=list(self.db))
        return [guarded(command) for command in (db, *self.commands, serve_command)]


def init_app(app: Flask, commands: Commands, hooks: Hooks) -> None:
    """Register the parts' `commands` (a `db` group, the rest, and `serve`) on `app.cli`, each guarded."""
    app.extensions[EXTENSION] = hooks
    for command in commands.guarded():
        app.cli.add_command(command)


# The commands that are servers: they keep JSON log lines (`logs.configure`) for a log collector.
# `run` is Flask's development server (`flask --app app run`).
SERVERS = ("serve", "scheduler", "run")
# The commands that make archives: only they say that archives go out unsigned (`app._generate_missing_keys`).
# `signing-key new` printed that warning before the key it makes (user trial), `db upgrade` before its answer.
ARCHIVE_MAKERS = (*SERVERS, "export", "export-all", "demo")


def makes_archives() -> bool:
    """Whether the command being run may make archives; True when no command line says otherwise.

    The web app under gunicorn and Celery workers make archives. `flask --app app X` builds the
    app before click records X (`configure_logs`): not known, so True.
    """
    root = _command_line()
    if root is None or root.invoked_subcommand is None:
        return True
    return root.invoked_subcommand in ARCHIVE_MAKERS


def configure_logs(level: str) -> None:
    """Log plain one-liners for a command a person runs, JSON lines for everything else (`create_app` calls it).

    The one place that decides, for both command lines: the `lifeboat` console script and
    `flask --app app` alike run under a FlaskGroup, and a command there that is not a server
    (`SERVERS`) writes its warnings as sentences on stderr, not JSON among its own sentences.
    The web app under gunicorn, Celery workers (whose command line is click too, not Flask's)
    and the server commands keep JSON for a log collector.

    `flask --app app X` builds the app while it still looks X up (`FlaskGroup.get_command`),
    before click records which command runs: the app then starts plain, and a server command
    turns to JSON as it starts (`_json_for_a_server`, in every guarded command).
    """
    root = _command_line()
    if root is not None and root.invoked_subcommand not in SERVERS:
        logs.configure_for_people()
    else:
        logs.configure(level)


def _command_line() -> click.Context | None:
    """The root context of a Flask command line (`lifeboat`, `flask --app app`) in this thread, if one runs."""
    ctx = click.get_current_context(silent=True)
    root = ctx.find_root() if ctx is not None else None
    return root if root is not None and isinstance(root.command, FlaskGroup) else None


def _json_for_a_server() -> None:
    """A server command that `flask --app app` found after building the app plain: JSON lines after all."""
    root = _command_line()
    if root is not None and root.invoked_subcommand in SERVERS:
        logs.switch_to_json(current_app.config["LOG_LEVEL"] if current_app else "INFO")


def _create_app() -> Flask:
    from app import create_app

    app = create_app(command_line=True)  # `serve` and `scheduler` check `config.startup_refusal` themselves
    # Close the connection pool when the command ends, not whenever the garbage collector
    # gets to it: the process may go on (tests invoke many commands in one process).
    ctx = click.get_current_context(silent=True)
    if ctx is not None:
        ctx.call_on_close(lambda: app.extensions[EXTENSION].close(app))
    return app


def _interactive(command: click.Command) -> click.Command:
    """A copy of `command` in which Ctrl-C is Python's own again: a KeyboardInterrupt the console catches.

    An interactive shell is not stopped by SIGINT: it abandons the line typed.
    """
    result = copy.copy(command)
    callback = command.callback
    assert callback is not None

    @functools.wraps(callback)
    def run(*args: Any, **kwargs: Any) -> Any:
        if threading.current_thread() is not threading.main_thread():  # no signal handlers there
            return callback(*args, **kwargs)
        previous = signal.signal(signal.SIGINT, signal.default_int_handler)
        try:
            return callback(*args, **kwargs)
        finally:
            signal.signal(signal.SIGINT, previous)

    result.callback = run
    return result


class LifeboatGroup(FlaskGroup):
    """The `lifeboat` console script: Flask's CLI on `app.create_app`, from any folder.

    Loading the app (reading settings, generating keys, creating a new
    database's schema) runs under `one_line_errors` too, which `flask --app app`
    cannot offer: there a broken setting still ends in Flask's traceback. It is
    loaded only when a command runs: help, listing and a mistyped command name
    find the commands without it, and so create nothing.
    Flask's `run` is left out (`serve` is the way to serve Lifeboat); `shell`
    and `routes` stay for operators.
    """

    def __init__(self, **extra: Any) -> None:
        super().__init__(create_app=_create_app, add_default_commands=False, add_version_option=False, **extra)
        # --app would be silently ignored (the app is always app.create_app): do not offer it.
        self.params = [param for param in self.params if param.name != "app"]
        self.add_command(_interactive(shell_command))
        self.add_command(routes_command)
        self._parts: dict[str, click.Command] | None = None

    def main(self, *args: Any, **kwargs: Any) -> Any:
        """Run the command line, a stop signal at any moment of it one line ("Error: Stopped by SIGTERM; ...").

        Why here and not only around each command: loading the app (settings, keys, a new database's
        schema) comes first and took SIGTERM silently, exit status 143 and nothing said (user trial).
        A stop outside the command itself surfaces after click's own handling, so it is shown here.
        """
        standalone = kwargs.get("standalone_mode", True)
        try:
            try:
                with stop_on_signals():
                    return super().main(*args, **kwargs)
            except click.ClickException as exc:
                if not standalone:
                    raise
                exc.show()
                sys.exit(exc.exit_code)
        except SystemExit as done:
            if CONSOLE_SCRIPT and standalone:  # the process ends now: a stop signal meets a finished command
                errors.exit_on_signals_when_done(done.code)
            raise

    def invoke(self, ctx: click.Context) -> Any:
        with one_line_errors():
            return super().invoke(ctx)

    def get_command(self, ctx: click.Context, name: str) -> click.Command | None:
        # Never FlaskGroup's: it builds the app to look a name up, and building the app creates the
        # instance folder, keys and database. Only running a command builds it (`with_appcontext`).
        self._load_plugin_commands()
        return self.commands.get(name) or self._parts_commands().get(name)

    def list_commands(self, ctx: click.Context) -> list[str]:
        self._load_plugin_commands()
        return sorted({*self.commands, *self._parts_commands()})

    def _parts_commands(self) -> dict[str, click.Command]:
        if self._parts is None:
            from app import cli_commands

            self._parts = {command.name or "": command for command in cli_commands().guarded()}
        return self._parts


main = LifeboatGroup(
    name="lifeboat",
    help=(
        "Lifeboat: verified archives of your contacts, calendars and notes.\n\n"
        "Settings are LIFEBOAT_* environment variables (see .env.example); with none set, "
        "everything lives in the instance folder (LIFEBOAT_INSTANCE_DIR, default: the "
        "checkout's instance/)."
    ),
)
