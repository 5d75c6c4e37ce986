"""Run a helper process as `exporters.archive.helper.Helper` starts it, and list the modules it loaded.

Why: a second process (a split export's calendars, verify's other share) pays for
every module it imports before it does any work, so tests name the libraries
and parts it must not load. The process runs for real, doing its whole job; the
list is what `sys.modules` held when it exited, so a module imported late (inside
a function) counts too.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from exporters.archive.helper import ROOT

# `python -m exporters.archive.helper MODULE ARGS...`, noting the modules loaded at exit in the file named first.
_NOTING_MODULES = """
import atexit, json, runpy, sys
noted = sys.argv.pop(1)
atexit.register(lambda: open(noted, "w", encoding="utf-8").write(json.dumps(sorted(sys.modules))))
runpy.run_module("exporters.archive.helper", run_name="__main__", alter_sys=True)
"""


def run_helper(module: str, args: Sequence[str], folder: Path) -> tuple[Any, set[str]]:
    """The JSON answer of helper `module` run with `args`, and every module it had loaded when it exited."""
    noted = folder / "helper-modules.json"
    done = subprocess.run(
        [sys.executable, "-c", _NOTING_MODULES, os.fspath(noted), module, *args],
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": os.fspath(ROOT)},
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout), set(json.loads(noted.read_text(encoding="utf-8")))


def loaded_of(modules: set[str], names: Sequence[str]) -> list[str]:
    """Those of `names` (packages or modules) that `modules` holds, themselves or any module inside them."""
    return sorted(name for name in names if any(m == name or m.startswith(name + ".") for m in modules))
