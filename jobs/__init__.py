"""Scheduling and running exports: who is due, one run at a time, in-process or on Celery.

`init_app` builds the `JobContext` from configuration and, in the embedded
deployment, the in-process runtime (started only by `flask run`/`serve`, never
at import or in tests unless asked).
"""

from __future__ import annotations

import datetime as dt
import functools
import pickle
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from flask import Flask, current_app

from jobs.context import JobContext
from jobs.run_lifecycle import RetryPolicy
from jobs.signing_keys import signing_key_from_config
from store import get_db
from store.archive_store_settings import archive_files_from_config

EXTENSION = "lifeboat.jobs"


DownloadLink = Callable[[str, int], str | None]
AppFactory = Callable[[Mapping[str, Any]], Flask]  # `app.create_app`


def init_app(app: Flask, download_link: DownloadLink | None = None, app_factory: AppFactory | None = None) -> None:
    """Build the job context; `download_link(archive_id, user_id)` makes a signed URL.

    Why passed in: signed links are an HTTP concern (`web.links`), and `jobs`
    imports no `web`; `app.py` wires the two together. Called again without
    one (tests rebuild the context after changing settings), it keeps the
    link maker it was given before. `app_factory` (`app.create_app`, passed in for
    the same reason) builds the app again inside export processes
    (EMBEDDED_PROCESSES).
    """
    from jobs.destination_backends import destinations_for, failure_notifier, notice_sender, own_email_for

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
        notify_failure=failure_notifier(app, get_db(app)),
        send_notice=notice_sender(app),
        base_url=config["BASE_URL"],
        # ARCHIVE_STORE: a folder (embedded default) or the operator's bucket (scale-out).
        archive_files=archive_files_from_config(config),
        signing_key=signing_key_from_config(config),
    )
    previous = app.extensions.get(EXTENSION)
    if download_link is None and previous is not None:
        download_link = previous["ctx"].download_link
    if download_link is not None:
        ctx.download_link = download_link
    if app_factory is None and previous is not None:
        app_factory = previous["app_factory"]
    app.extensions[EXTENSION] = {"ctx": ctx, "runtime": None, "app_factory": app_factory}
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
    # `lifeboat serve` points BASE_URL at the port it listens on after the context was built
    # (`cli.follow_listener`); links in alerts (missed runs, scrub) must use that address.
    state["ctx"].base_url = app.config["BASE_URL"]
    if state["runtime"] is None:
        processes = app.config["EMBEDDED_PROCESSES"] and state["app_factory"] is not None
        runtime = EmbeddedRuntime(
            state["ctx"],
            workers=app.config["EMBEDDED_WORKERS"],
            tick_seconds=app.config["TICK_SECONDS"],
            also_each_tick=lambda: continue_unattended(app),
            processes=child_context_factory(app, state["app_factory"]) if processes else None,
        )
        runtime.start()
        state["runtime"] = runtime


def child_context_factory(app: Flask, app_factory: AppFactory) -> Callable[[], JobContext]:
    """A picklable recipe for `app`'s job context in an export process: the app built again there.

    The child gets this app's settings as they are now (only those that pickle: plain
    values), never starts a scheduler of its own, and opens its own connections.
    """
    settings: dict[str, Any] = {}
    for key, value in app.config.items():
        try:
            pickle.dumps(value)
        except Exception:  # noqa: S112  # a setting that cannot cross processes stays behind
            continue
        settings[key] = value
    settings.update({"INSTANCE_PATH": app.instance_path, "RUN_SCHEDULER": False})
    return functools.partial(_child_context, app_factory, settings)


def _child_context(app_factory: AppFactory, settings: Mapping[str, Any]) -> JobContext:
    app = app_factory(settings)
    ctx = get_context(app)
    delay = app.config["TEST_EXPORT_DELAY_MS"] / 1000  # test-only, as in Celery workers (jobs.worker)
    if delay > 0:
        ctx.on_progress = lambda _stage, _percent: time.sleep(delay)
    return ctx


def kick(app: Flask | None = None) -> None:
    """Start queued runs now: in the embedded pool, or by handing them to Celery."""
    app = app or current_app
    state = app.extensions[EXTENSION]
    if app.config["CELERY_BROKER_URL"]:
        from jobs.worker import dispatch_queued

        dispatch_queued(state["ctx"])
    elif state["runtime"] is not None:
        state["runtime"].kick()
