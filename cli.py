"""Command-line entry points (`flask --app app ...`): thin wrappers over services."""

from __future__ import annotations

import click
from flask import Flask, current_app
from flask.cli import with_appcontext


@click.command("serve")
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=5000, show_default=True)
@with_appcontext
def serve_command(host: str, port: int) -> None:
    """Serve the web app and run the scheduler and exports in this one process (embedded)."""
    import jobs

    app: Flask = current_app._get_current_object()  # type: ignore[attr-defined]
    jobs.start_embedded(app)
    click.echo(f"Lifeboat on http://{host}:{port}/ (scheduler and {app.config['EMBEDDED_WORKERS']} export workers)")
    from werkzeug.serving import run_simple

    # `app.run()` refuses to start inside the flask CLI; run the server it would have run.
    run_simple(host, port, app, threaded=True, use_reloader=False)


def init_app(app: Flask) -> None:
    from delivery.cli import COMMANDS as DELIVERY_COMMANDS
    from jobs.cli import COMMANDS as JOB_COMMANDS
    from store.cli import COMMANDS as STORE_COMMANDS

    for command in (*STORE_COMMANDS, *JOB_COMMANDS, *DELIVERY_COMMANDS, serve_command):
        app.cli.add_command(command)
