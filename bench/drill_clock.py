"""Clock the fidelity drill done while an export writes: CPU and wall time inside the watches' calls.

Why: a first export drills its items as the bundle writes them
(`exporters.archive.drill_written`), in both processes of a split export, so the
drill's cost was measured as (export with it) - (export without it), two runs
apart. On this shared host the CPU time of two identical exports differs by up to
a quarter, as much as the drill itself; here the drill's share is read in the
run that does it: the time inside the watches' methods (outermost calls only),
in this process and, through `bench/drill_clock_site/sitecustomize.py` (put on
PYTHONPATH by `activate`), in the export's calendar process, which writes its
totals to a file at exit. What the watches cost the writer around them (caches,
collections) is not in it: `bench/drill_checkouts.py` prints the difference
beside it.
"""

from __future__ import annotations

import atexit
import contextlib
import gc
import json
import os
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

ENV = "LIFEBOAT_BENCH_DRILL_CLOCK"  # the folder each calendar process writes its totals to
SITE = Path(__file__).resolve().parent / "drill_clock_site"
WATCHED = {
    "CalendarWatch": ("head", "event", "tail"),
    "CardsWatch": ("card", "drilled"),
    "NotesWatch": ("note", "drilled"),
}
# "gc": CPU of every collection in the process, drill or not; "gc_inside": of those begun inside a watch's call
# or `drill()` (`not_apart`), whose time is in the drill's already.
totals = {"cpu": 0.0, "wall": 0.0, "gc": 0.0, "gc_inside": 0.0}
_depth = [0]
_collecting = [0.0]


def _collection(phase: str, info: dict[str, Any]) -> None:
    if phase == "start":
        _collecting[0] = time.thread_time()
    else:
        spent = time.thread_time() - _collecting[0]
        totals["gc"] += spent
        if _depth[0]:
            totals["gc_inside"] += spent


def _clocked(method: Callable[..., Any]) -> Callable[..., Any]:
    def clocked(*args: Any, **kwargs: Any) -> Any:
        if _depth[0]:
            return method(*args, **kwargs)
        _depth[0] += 1
        cpu, wall = time.thread_time(), time.perf_counter()
        try:
            return method(*args, **kwargs)
        finally:
            totals["cpu"] += time.thread_time() - cpu
            totals["wall"] += time.perf_counter() - wall
            _depth[0] -= 1

    return clocked


@contextlib.contextmanager
def not_apart() -> Iterator[None]:
    """Inside this, the watches are not clocked on their own: `drill()`, timed by its caller, calls two of them
    (`CardsWatch.drilled`, `NotesWatch.drilled`), whose time is in its own (counting both counted them twice)."""
    _depth[0] += 1
    try:
        yield
    finally:
        _depth[0] -= 1


def install() -> None:
    """Clock the watches in this process."""
    from exporters.archive import drill_written

    for name, methods in WATCHED.items():
        cls = getattr(drill_written, name)
        for method in methods:
            setattr(cls, method, _clocked(getattr(cls, method)))
    gc.callbacks.append(_collection)


def activate(folder: Path) -> None:
    """Clock this process's watches, and those of the calendar processes it starts (their totals go to `folder`)."""
    install()
    folder.mkdir(parents=True, exist_ok=True)
    os.environ[ENV] = str(folder)
    path = os.environ.get("PYTHONPATH")
    os.environ["PYTHONPATH"] = os.pathsep.join([*([path] if path else []), str(SITE)])


def in_child() -> None:
    """In a calendar process (from sitecustomize): clock its watches and write the totals at exit."""
    install()
    folder = Path(os.environ[ENV])

    def write() -> None:
        (folder / f"calendars-{os.getpid()}.json").write_text(json.dumps(totals))

    atexit.register(write)


def collected(folder: Path) -> dict[str, float]:
    """This process's totals and those the calendar processes wrote to `folder`, summed."""
    found = dict(totals)
    for path in folder.glob("calendars-*.json"):
        child = json.loads(path.read_text())
        for key in found:
            found[key] += child[key]
    return found
