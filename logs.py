"""Structured logs: one JSON object per line, with the run id and other context fields.

Why by hand: the standard library's `logging` already carries `extra=` fields
on each record; a ten-line formatter turns them into JSON without another
dependency.

The servers (web, scheduler, workers) log JSON lines for a log collector. A
command a person runs (`lifeboat scrub`, `flask --app app export`, ...) logs
plain one-line warnings and errors on stderr instead (`configure_for_people`):
JSON lines mixed into its sentences read as noise (user trial). Which of the
two a process gets is decided in one place, `cli.configure_logs`.
"""

from __future__ import annotations

import json
import logging
import sys
from collections.abc import Callable
from typing import Any

_STANDARD = set(vars(logging.makeLogRecord({}))) | {"message", "asctime"}


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "at": self.formatTime(record, "%Y-%m-%dT%H:%M:%S%z"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        entry.update({k: v for k, v in vars(record).items() if k not in _STANDARD})
        if record.exc_info:
            entry["error"] = self.formatException(record.exc_info)
        return json.dumps(entry, default=str, ensure_ascii=False)


class PlainFormatter(logging.Formatter):
    """One line for a person: `warning: scrub found a problem (destination_id=4, state=changed)`."""

    def format(self, record: logging.LogRecord) -> str:
        line = f"{record.levelname.lower()}: {record.getMessage()}"
        extra = {k: v for k, v in vars(record).items() if k not in _STANDARD}
        if extra:
            line += " (" + ", ".join(f"{k}={v}" for k, v in extra.items()) + ")"
        if record.exc_info:  # the exception's own last line; the traceback is the servers' (JSON) business
            line += f" [{self.formatException(record.exc_info).splitlines()[-1]}]"
        return line


class _Stderr(logging.StreamHandler):
    """Writes to `sys.stderr` as it is at each record: a test's CLI runner swaps it (and closes its own)."""

    def emit(self, record: logging.LogRecord) -> None:
        self.stream = sys.stderr
        super().emit(record)


def _configured(logger: logging.Logger) -> bool:
    """Someone (this module, or a test capturing the lines) already chose how Lifeboat's records are written."""
    return any(isinstance(h.formatter, JsonFormatter | PlainFormatter) for h in logger.handlers)


def _write_to_stderr(
    formatter: logging.Formatter, level: str | int, *filters: Callable[[logging.LogRecord], bool]
) -> None:
    """Write Lifeboat's records on stderr with `formatter`, unless someone already chose how (`_configured`)."""
    logger = logging.getLogger("lifeboat")
    if _configured(logger):
        return
    handler = _Stderr()
    handler.setFormatter(formatter)
    for keep in filters:
        handler.addFilter(keep)
    logger.addHandler(handler)
    logger.setLevel(level)


def configure(level: str = "INFO") -> None:
    """Log Lifeboat's records as JSON lines on stderr (once; tests keep pytest's handlers)."""
    _write_to_stderr(JsonFormatter(), level)


def configure_for_people() -> None:
    """Log Lifeboat's warnings and errors as plain one-liners on stderr: a command a person runs.

    Records below WARNING are not written (the command's own output says what it did), but for
    the settings' own notices: a key generated into a new instance folder must be backed up.
    """
    # INFO, as `configure` would: the filter chooses what a person sees.
    _write_to_stderr(PlainFormatter(), logging.INFO, _for_people)


def switch_to_json(level: str = "INFO") -> None:
    """Turn `configure_for_people`'s plain lines into `configure`'s JSON lines; nothing if it did not run.

    For a server command that `flask --app app` names: Flask builds the app (and so chooses how it
    logs) while it still looks the command up, before anyone knows a server is starting
    (`cli.configure_logs`). Only this module's own plain handler is replaced: a test's is left alone.
    """
    logger = logging.getLogger("lifeboat")
    plain = [h for h in logger.handlers if isinstance(h, _Stderr) and isinstance(h.formatter, PlainFormatter)]
    if not plain:
        return
    for handler in plain:
        logger.removeHandler(handler)
    configure(level)


def _for_people(record: logging.LogRecord) -> bool:
    """Warnings and errors, and what the settings say once (a key generated on first use: back it up)."""
    return record.levelno >= logging.WARNING or (record.name == "lifeboat.config" and record.levelno >= logging.INFO)


class _NotLifeboat(logging.Filter):
    """Leave Lifeboat's own records to the handler `configure` put on the `lifeboat` logger."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not (record.name == "lifeboat" or record.name.startswith("lifeboat."))


def configure_worker(level: str | int = "INFO") -> None:
    """Log a Celery worker's records, Lifeboat's and Celery's own, once each as JSON lines on stderr.

    Why (user trial): left to itself, a worker put its own plain handler on the root logger,
    which wrote each Lifeboat record a second time, and redirected stderr into a logger that
    wrote our JSON line again at WARNING. Celery's `setup_logging` signal calls this instead
    (`jobs.worker`); with a receiver there, Celery touches neither the root logger nor stderr.
    """
    configure(logging.getLevelName(level) if isinstance(level, int) else level)
    root = logging.getLogger()
    if any(isinstance(h.formatter, JsonFormatter) for h in root.handlers):
        return
    handler = _Stderr()
    handler.setFormatter(JsonFormatter())
    handler.addFilter(_NotLifeboat())
    root.addHandler(handler)
    root.setLevel(level)
