"""Command-line entry points (`flask --app app ...`): thin wrappers over services."""

from __future__ import annotations

from flask import Flask


def init_app(app: Flask) -> None:
    from jobs.cli import COMMANDS as JOB_COMMANDS
    from store.cli import COMMANDS as STORE_COMMANDS

    for command in (*STORE_COMMANDS, *JOB_COMMANDS):
        app.cli.add_command(command)
