"""Run part of a job in a second Python process and take back its answer, a JSON object.

Why a plain `subprocess` and not `multiprocessing`: a fresh interpreter inherits
nothing of its caller (database connections, or the locks of a web process's
threads, which a `fork` copies mid-use), and unlike `multiprocessing`'s spawn it
does not import the caller's `__main__` again (for the `lifeboat` script that is
the whole Flask app). Its output goes to temporary files, not pipes, so it can
never block on a full pipe while the caller is busy with its own part.

Why `HelperFailed` is one line: a helper that is killed (out of memory) or
fails is a reason the job could not finish, not something wrong with its input,
and the caller says so in one sentence. The caller only ever waits for the
helper after doing its own part, and a helper that exits, however it exits,
ends that wait; leaving the `with` block early kills the helper.

Why the helper is started through this module (`python -m exporters.archive.helper
jobs.restore_worker ...`) and not as `python -m jobs.restore_worker`: `-m` runs
the package's `__init__` first, and `jobs/__init__` wires jobs into the Flask app
(Flask, SQLAlchemy's engine, boto3 through the archive bucket settings), none of
which a helper uses: measured at ~1.0 s CPU of the restore worker's ~1.9 s
start-up (`python -X importtime`). `_run` registers the top package as a bare
package (its folder, no `__init__`) and runs the module in it as `__main__`; a
helper that needs something of its package's `__init__` imports the module that
defines it, like any other caller.
"""

from __future__ import annotations

import importlib.machinery
import importlib.util
import json
import os
import runpy
import signal
import subprocess
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path
from types import TracebackType
from typing import Any

from errors import LifeboatError

# The folder `exporters` is in: the helper imports this very code, wherever the caller runs from.
ROOT = Path(__file__).resolve().parents[2]


class HelperFailed(LifeboatError):
    """The helper process died or failed, so its part of the job was not done; the message says how."""


class Helper:
    """`python -m module args...` started now; `result()` waits for it and returns its JSON answer."""

    def __init__(self, module: str, args: Sequence[str]) -> None:
        # Closed by `close()`: the helper writes into them for as long as it runs.
        self._out = tempfile.TemporaryFile()  # noqa: SIM115
        self._err = tempfile.TemporaryFile()  # noqa: SIM115
        path = os.environ.get("PYTHONPATH")
        env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), *([path] if path else [])])}
        try:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "exporters.archive.helper", module, *args],
                stdin=subprocess.DEVNULL,
                stdout=self._out,
                stderr=self._err,
                env=env,
            )
        except OSError as exc:
            self._out.close()
            self._err.close()
            raise HelperFailed(f"the second process could not start ({exc})") from None

    def __enter__(self) -> Helper:
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        self.close()

    def close(self) -> None:
        """Kill the helper if it still runs (the caller gave up) and wait for it; drop its output."""
        if self.process.poll() is None:
            self.process.kill()
        self.process.wait()
        self._out.close()
        self._err.close()

    def result(self) -> Any:
        """Wait for the helper to exit and return what it printed; `HelperFailed` if it did not finish."""
        code = self.process.wait()
        if code != 0:
            raise HelperFailed(f"the second process {self._how(code)}")
        self._out.seek(0)
        try:
            return json.loads(self._out.read())
        except ValueError:
            raise HelperFailed("the second process ended without an answer") from None

    def _how(self, code: int) -> str:
        if code < 0:
            try:
                name = signal.Signals(-code).name
            except ValueError:
                name = f"signal {-code}"
            hint = " (out of memory?)" if -code == signal.SIGKILL else ""
            return f"was killed by {name}{hint}"
        self._err.seek(0)
        lines = [line.strip() for line in self._err.read().decode("utf-8", "replace").splitlines() if line.strip()]
        said = f": {lines[-1][:200]}" if lines else ""
        return f"failed (exit status {code}){said}"


def _run(argv: list[str]) -> None:
    """`python -m exporters.archive.helper MODULE ARGS...`: MODULE as `__main__`, its top package bare."""
    module, *args = argv
    top = module.partition(".")[0]
    if top not in sys.modules:
        spec = importlib.machinery.ModuleSpec(top, None, is_package=True)
        spec.submodule_search_locations = [str(ROOT / top)]
        sys.modules[top] = importlib.util.module_from_spec(spec)
    sys.argv = [module, *args]
    runpy.run_module(module, run_name="__main__", alter_sys=True)


if __name__ == "__main__":
    _run(sys.argv[1:])
