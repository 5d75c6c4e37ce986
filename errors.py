"""Error types shared by every layer, and how a stop signal becomes one of them.

Why a small hierarchy: callers decide what to do by type (show it, retry it,
disable a schedule), never by parsing messages. `UserError` messages are safe
to show to the account owner and say what to fix.

Why stop signals here: the `lifeboat` console script (cli.py, which imports no
part) must take SIGTERM from its first moment, and a command (jobs.commands)
must be able to say what it kept; both import this module, and only this one.
"""

from __future__ import annotations

import atexit
import contextlib
import os
import signal
import sys
import threading
from collections.abc import Callable, Iterator
from types import FrameType
from typing import Any, TypeVar


class LifeboatError(Exception):
    """Base class for errors raised on purpose by Lifeboat."""


class UserError(LifeboatError):
    """Something the user can fix; the message is safe to show them."""


class InvalidInput(UserError, ValueError):
    """Input (an import file, a form, an archive) is malformed.

    `problems` lists `(json_path_or_location, message)` pairs so one error can
    report everything wrong with a file at once.
    """

    def __init__(self, message: str, problems: list[tuple[str, str]] | None = None) -> None:
        super().__init__(message)
        self.problems = problems or []

    def __str__(self) -> str:
        if not self.problems:
            return super().__str__()
        lines = [super().__str__()]
        lines += [f"  {where}: {what}" for where, what in self.problems]
        return "\n".join(lines)


def not_utf8(what: str, offset: int) -> str:
    """The one wording for bytes that are not UTF-8: which file (`what`), where, and the fix.

    Why one: restore, import and verify meet this in vCard, iCalendar and
    Markdown files alike, and none of them replaces bad bytes (that would change
    the data unseen); the user should read the same sentence wherever it is met.
    `offset` counts bytes from the start of the file.
    """
    return f"{what} is not UTF-8 (bad byte at offset {offset}): re-save it as UTF-8"


class DeliveryError(LifeboatError):
    """A delivery attempt failed.

    `permanent` errors (bad credentials, no such bucket, a 5xx SMTP rejection)
    will not succeed on retry: stop and tell the user `user_message`, the fix.
    Transient ones (timeouts, throttling, 5xx from S3, SMTP 4xx) are retried
    with backoff.
    """

    def __init__(
        self, message: str, *, permanent: bool, user_message: str | None = None, operator: bool = False
    ) -> None:
        super().__init__(message)
        self.permanent = permanent
        self.user_message = user_message or message
        # The fix is the service operator's (server settings), not the user's: the user is told so.
        self.operator = operator


STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT)
# Whether the command under `stop_on_signals` has returned: what follows (closing the database pool,
# the app's teardown) has nothing to stop, and "Stopped ... run the same command again" would be untrue.
_finished = threading.Event()


def command_finished() -> None:
    """Say that the command returned: a stop signal from now until the process ends stops nothing."""
    _finished.set()


class Stopped(BaseException):
    """A stop signal arrived while a command ran (`stop_on_signals`).

    Why a BaseException: `except Exception` handlers let it through, so every
    `finally` and context manager on the way out (`store.archive_files.partial_file`,
    a database transaction) removes or rolls back what it made; Python's default
    SIGTERM ends the process at once, with no `finally` run and no word said.
    A writer killed outright (SIGKILL) runs none of this: its file is removed by
    the next run or start-up instead (`jobs.housekeeping.remove_abandoned`).

    `kept` names what the command had finished and keeps (an archive recorded in
    the store before the copy into --out): the one line must not say that all its
    work was undone when a user can already see the archive (a user trial found the
    line saying so and ran the export again, for a second archive).

    `again` is set by a command that writes nothing (`verify`): what running it
    again does. "Its unfinished files were removed ... to finish" was untrue of
    a check that writes no file (user trial).
    """

    def __init__(self, signum: int) -> None:
        super().__init__(signum)
        self.signum = signum
        self.kept: str | None = None
        self.again: str | None = None

    def line(self) -> str:
        """The one line a stopped command prints (after click's "Error: ")."""
        name = signal.Signals(self.signum).name
        if self.again is not None:
            return f"Stopped by {name}; nothing was changed. Run the same command again to {self.again}."
        if self.kept is None:
            return f"Stopped by {name}; its unfinished files were removed. Run the same command again to finish."
        return f"Stopped by {name} after the archive was made, read back and kept: {self.kept}, its files removed."


_C = TypeVar("_C", bound=Callable[..., Any])


def stopped_says(again: str) -> Callable[[_C], _C]:
    """Mark a command's callback as one that writes nothing: a stop says "nothing was changed ... to `again`".

    Why on the callback: `cli.guarded` reads it for the `stop_on_signals` around the whole callback, so
    the command's own words hold from its first moment, loading the app included; a verify stopped while
    the app loaded said the export's "its unfinished files were removed" (user trial).
    """

    def mark(callback: _C) -> _C:
        callback.stopped_again = again  # type: ignore[attr-defined]  # read by cli.guarded
        return callback

    return mark


def instance_if_any(callback: _C) -> _C:
    """Mark a command's callback as one that runs without the app where there is no instance folder.

    Why: building the app creates the instance folder, its keys and a database, which a
    command that only reads a file must not (`verify`, user trial). `cli.guarded` reads the
    mark and pushes the app's context only over an existing instance; the callback asks
    `flask.has_app_context()`.
    """
    callback.instance_if_any = True  # type: ignore[attr-defined]  # read by cli.guarded
    return callback


@contextlib.contextmanager
def stop_on_signals(again: str | None = None) -> Iterator[None]:
    """Turn SIGTERM/SIGINT into `Stopped`, and that into one line naming the signal and what to do.

    The line is a `click.ClickException` ("Error: ...") whose exit status is 128 +
    the signal's number, as a shell reports a process the signal ended. A second
    signal while the first unwinds is ignored, so clean-up is not cut short.
    Signal handlers exist only in the main thread: elsewhere (a command invoked
    from a worker thread) this does nothing. Nested, the innermost one speaks.
    `again` is `Stopped.again` for every stop it takes (a command that writes nothing).
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    stopping: list[int] = []
    _finished.clear()  # a command starts (or, in a test's process, the next one)

    def stop(signum: int, _frame: FrameType | None) -> None:
        if _finished.is_set():
            return  # the command is done: the process ends in a moment with its status
        if not stopping:
            stopping.append(signum)
            stopped = Stopped(signum)
            stopped.again = again
            raise stopped

    previous = {number: signal.signal(number, stop) for number in STOP_SIGNALS}
    try:
        yield
    except Stopped as exc:
        import click  # here, not at the top: the parts import this module, and most never need click

        error = click.ClickException(exc.line())
        error.exit_code = 128 + exc.signum  # type: ignore[misc]  # click declares it on the class; per signal here
        raise error from None
    finally:
        for number, handler in previous.items():
            signal.signal(number, handler)


def exit_on_signals_until_started() -> None:
    """Until `stop_on_signals` takes over, end at once on SIGTERM/SIGINT with one line.

    For the console script's first moments (importing Flask, SQLAlchemy and
    Alembic takes most of a second), when nothing has been written, so there is
    nothing to clean up: Python's default SIGTERM ended the process silently
    with 143 there (a user trial), and SIGINT with a KeyboardInterrupt traceback.
    """
    if threading.current_thread() is not threading.main_thread():
        return

    def leave(signum: int, _frame: FrameType | None) -> None:
        name = signal.Signals(signum).name
        os.write(2, f"Error: Stopped by {name} before it began; nothing was written.\n".encode())
        os._exit(128 + signum)

    for number in STOP_SIGNALS:
        signal.signal(number, leave)


def exit_on_signals_when_done(code: object) -> None:
    """After the command has finished (`code`, as `SystemExit` has it), end at once on SIGTERM/SIGINT with its status.

    Why: the interpreter's shutdown that follows (closing pools, joining threads) can take a
    moment, and Python's default SIGTERM then ended a finished command with 143 and not a word.
    There is nothing left to stop, so the command's own status stands.
    """
    if threading.current_thread() is not threading.main_thread():
        return
    status = 0 if code is None else code if isinstance(code, int) else 1

    def leave(_signum: int, _frame: FrameType | None) -> None:
        for stream in (sys.stdout, sys.stderr):
            with contextlib.suppress(Exception):
                stream.flush()
        os._exit(status)

    for number in STOP_SIGNALS:
        signal.signal(number, leave)
    atexit.register(_hold_stop_signals)  # registered last: runs first, once the threads are joined


def _hold_stop_signals() -> None:
    """Block SIGTERM/SIGINT for the rest of the interpreter's shutdown: a signal then waits, and dies with it.

    Why: late in its shutdown Python gives every signal back its default action
    (`_PySignal_Fini`), so a SIGTERM in those last milliseconds ended a finished
    command with no word and "killed by SIGTERM" (a test caught it, once in a
    CI run). Blocked, the signal stays pending and the process exits with the
    command's own status. This runs at exit, after non-daemon threads were
    joined, so what is left is bounded: a stop still cannot wait on a hung thread.
    """
    with contextlib.suppress(AttributeError, ValueError, OSError):  # no pthread_sigmask (Windows)
        signal.pthread_sigmask(signal.SIG_BLOCK, STOP_SIGNALS)
