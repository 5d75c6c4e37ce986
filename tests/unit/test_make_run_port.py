"""`make run PORT=N` serves on port N (user trial 9, finding 4: the port was fixed at 5000).

Why `make -n`: it prints the commands `run` would execute without running them
(nothing is installed or served), which is exactly what the variable changes.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def _serve_line(*args: str) -> str:
    if shutil.which("make") is None:
        pytest.fail("make is not installed: install it (apt-get install make) to run this test")
    printed = subprocess.run(
        ["make", "-n", "-C", str(ROOT), "--no-print-directory", "run", *args],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    (line,) = [line for line in printed.splitlines() if " app serve" in line]
    return line


def test_make_run_serves_on_port_5000_by_default() -> None:
    assert _serve_line().endswith("flask --app app serve --port 5000")


def test_make_run_serves_on_the_port_given_as_port() -> None:
    assert _serve_line("PORT=8123").endswith("flask --app app serve --port 8123")
