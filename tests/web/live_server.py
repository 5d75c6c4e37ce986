"""`lifeboat serve` as a real process on loopback, for tests and bench/web_load.py.

Why a subprocess and not a thread: the point is the production server
(gunicorn's master and its one worker, sendfile, the embedded scheduler in
that worker) exactly as `make run` starts it.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
READY = re.compile(r"Lifeboat on (http://127\.0\.0\.1:\d+)/")


@dataclass
class Served:
    url: str  # http://127.0.0.1:PORT, no trailing slash
    process: subprocess.Popen[str]
    output: list[str]

    def worker_pids(self) -> list[int]:
        """gunicorn's worker(s): the children of the master this test started."""
        children = Path(f"/proc/{self.process.pid}/task/{self.process.pid}/children")
        return [int(pid) for pid in children.read_text().split()] if children.exists() else []


def _drain(stream: object, lines: list[str], ready: threading.Event) -> None:
    for line in stream:  # type: ignore[attr-defined]
        lines.append(line)
        if READY.search(line):
            ready.set()


@contextmanager
def serve(settings: Mapping[str, str], *, threads: int = 32, timeout: float = 90.0) -> Iterator[Served]:
    """Run `lifeboat serve --port 0` with `settings` as LIFEBOAT_* variables; stop it afterwards."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("LIFEBOAT_")}
    env.update({f"LIFEBOAT_{name}": value for name, value in settings.items()})
    # This checkout's code first: the venv's `lifeboat` script imports through the editable
    # install, which points at whichever checkout installed it (a git worktree shares one venv).
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
    lifeboat = Path(sys.executable).with_name("lifeboat")
    process = subprocess.Popen(
        [str(lifeboat), "serve", "--port", "0", "--threads", str(threads)],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    lines: list[str] = []
    ready = threading.Event()
    reader = threading.Thread(target=_drain, args=(process.stdout, lines, ready), daemon=True)
    reader.start()
    try:
        deadline = time.monotonic() + timeout
        while not ready.wait(0.2):
            if process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError("lifeboat serve did not start:\n" + "".join(lines))
        match = next(m for m in map(READY.search, lines) if m)
        yield Served(url=match.group(1), process=process, output=lines)
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        reader.join(timeout=5)
        if process.stdout is not None:
            process.stdout.close()
