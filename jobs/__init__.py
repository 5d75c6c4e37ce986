"""Scheduling and running exports: who is due, one run at a time, in-process or on Celery.

`init_app` builds the `JobContext` from configuration and, in the embedded
deployment, the in-process runtime (started only by `flask run`/`serve`, never
at import or in tests unless asked).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from pathlib import Path

from flask import Flask, current_app

from jobs.context import JobContext
from jobs.run_lifecycle import RetryPolicy
from store import get_db
from store.archive_store_settings import archive_files_from_config

EXTENSION = "lifeboat.jobs"


DownloadLink = Callable[[str, int], str | None]


def init_app(app: Flask, download_link: DownloadLink | None = None) -> None:
    """Build the job context; `download_link(archive_id, user_id)` makes a signed URL.

    Why passed in: signed links are an HTTP concern (`web.links`), and `jobs`
    imports no `web`; `app.py` wires the two together. Called again without
    one (tests rebuild the context after changing settings), it keeps the
    link maker it was given before.
    """
    from jobs.destination_backends import destinations_for, failure_notifier, own_email_for

    config = app.config
    ctx = JobContext(
        db=get_db(app),
        archive_dir=Path(config["ARCHIVE_DIR"]),
        vcard_version=config["VCARD_VERSION"],
        lease=dt.timedelta(seconds=config["RUN_LEASE_SECONDS"]),
        policy=RetryPolicy(
            base=dt.timedelta(seconds=config["RETRY_BASE_SECONDS"]),
            cap=dt.timedelta(seconds=config["RETRY_CAP_SECONDS"]),
            max_attempts=config["RETRY_MAX_ATTEMPTS"],
        ),
        destinations=destinations_for(app),
        own_email=own_email_for(app),
        notify_failure=failure_notifier(app),
        # ARCHIVE_STORE: a folder (embedded default) or the operator's bucket (scale-out).
        archive_files=archive_files_from_config(config),
    )
    previous = app.extensions.get(EXTENSION)
    if download_link is None and previous is not None:
        download_link = previous["ctx"].download_link
    if download_link is not None:
        ctx.download_link = download_link
    app.extensions[EXTENSION] = {"ctx": ctx, "runtime": None}
    if config["CELERY_BROKER_URL"]:
        from jobs.worker import celery_init_app

        celery_init_app(app)


def get_context(app: Flask | None = None) -> JobContext:
    return (app or current_app).extensions[EXTENSION]["ctx"]


def start_embedded(app: Flask) -> None:
    """Start the in-process scheduler and export pool (embedded deployment only)."""
    from jobs.bulk_resend import continue_unattended
    from jobs.embedded import EmbeddedRuntime

    state = app.extensions[EXTENSION]
    if state["runtime"] is None:
        runtime = EmbeddedRuntime(
            state["ctx"],
            workers=app.config["EMBEDDED_WORKERS"],
            tick_seconds=app.config["TICK_SECONDS"],
            also_each_tick=lambda: continue_unattended(app),
        )
        runtime.start()
        state["runtime"] = runtime


def kick(app: Flask | None = None) -> None:
    """Start queued runs now: in the embedded pool, or by handing them to Celery."""
    app = app or current_app
    state = app.extensions[EXTENSION]
    if app.config["CELERY_BROKER_URL"]:
        from jobs.worker import dispatch_queued

        dispatch_queued(state["ctx"])
    elif state["runtime"] is not None:
        state["runtime"].kick()
