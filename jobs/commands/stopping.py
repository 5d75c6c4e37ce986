"""SIGTERM and SIGINT end a long command cleanly: its partial files removed, one line said, no traceback.

Why not Python's defaults: SIGTERM ends the process at once, so no `finally`
runs and the export's partial file stays until housekeeping's age limit (a
user trial); SIGINT raises KeyboardInterrupt, which unwinds but ends in click's
bare "Aborted!". Here either signal raises `Stopped`, a BaseException that
`except Exception` handlers let through, so every `finally` and context manager
on the way out (`store.archive_files.partial_file`) removes what it made.
A writer killed outright (SIGKILL) runs none of this: its file is removed by
the next run or start-up instead (`jobs.housekeeping.remove_abandoned`).
"""

from __future__ import annotations

import contextlib
import signal
import threading
from collections.abc import Iterator
from types import FrameType

import click

SIGNALS = (signal.SIGTERM, signal.SIGINT)


class _StoppedError(click.ClickException):
    """The one line (click's "Error: ..."), with the exit status a shell gives a process the signal ended."""

    def __init__(self, message: str, signum: int) -> None:
        super().__init__(message)
        self.exit_code = 128 + signum  # type: ignore[misc]  # click declares it on the class; per signal here


class Stopped(BaseException):
    """A stop signal arrived while a command ran (`stop_on_signals`).

    `kept` names what the command had finished and keeps (an archive recorded in
    the store before the copy into --out): the one line must not say that all its
    work was undone when a user can already see the archive (a user trial found the
    line saying so and ran the export again, for a second archive).
    """

    def __init__(self, signum: int) -> None:
        super().__init__(signum)
        self.signum = signum
        self.kept: str | None = None


@contextlib.contextmanager
def stop_on_signals() -> Iterator[None]:
    """Turn SIGTERM/SIGINT into `Stopped`, and that into one line naming the signal and what to do.

    The exit status is 128 + the signal's number, as a shell reports a process the
    signal ended. A second signal while the first unwinds is ignored, so clean-up
    is not cut short. Signal handlers exist only in the main thread: elsewhere
    (a command invoked from a worker thread) this does nothing.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    stopping: list[int] = []

    def stop(signum: int, _frame: FrameType | None) -> None:
        if not stopping:
            stopping.append(signum)
            raise Stopped(signum)

    previous = {number: signal.signal(number, stop) for number in SIGNALS}
    try:
        yield
    except Stopped as exc:
        name = signal.Signals(exc.signum).name
        if exc.kept is None:
            message = f"Stopped by {name}; its unfinished files were removed. Run the same command again to finish."
        else:
            kept = exc.kept
            message = f"Stopped by {name} after the archive was made, read back and kept: {kept}, its files removed."
        raise _StoppedError(message, exc.signum) from None
    finally:
        for number, handler in previous.items():
            signal.signal(number, handler)
