"""Benchmark: filling the per-user item cache as a first export does, two checkouts interleaved (issue 15).

Why: py-spy put `ItemCacheFile._flush` at ~18 % of a 1x HEAVY first export's
calendar process (50,000 events cached singly and in runs) and ~9 % of the
contacts. This replays the entries of a cache file a first export filled (keys,
groups and values, in a shuffled order as an export's digests arrive) through
each checkout's own `jobs.export_cache.ItemCacheFile` into a new file: `put`
for every entry, then `commit`, so the figure is that class's cost and nothing
else. Each round runs one process per checkout, in alternating order; CPU is
the process's own (user + system) around the replay alone.

    .venv/bin/python bench/cache_fill.py SOURCE.sqlite3 --code BEFORE --code . [--rounds 5] [--workdir DIR]

SOURCE: e.g. `/var/tmp/lifeboat-suite/x1/export-cache/1/items.sqlite3` after a
first export of `bench/export_suite.py`'s 1x account.
"""

from __future__ import annotations

import argparse
import json
import random
import resource
import shutil
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def _cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def child(code: Path, source: Path, folder: Path) -> dict[str, float]:
    """In a process of its own: fill a new cache in `folder` with `source`'s entries through `code`'s class."""
    sys.path.insert(0, str(code))
    from jobs.export_cache import ItemCacheFile

    with sqlite3.connect(source) as db:
        rows = db.execute("SELECT key, grp, value FROM items").fetchall()
    random.Random(1).shuffle(rows)  # digests arrive in no order
    shutil.rmtree(folder, ignore_errors=True)
    wall, cpu = time.perf_counter(), _cpu()
    with ItemCacheFile(folder, 1) as cache:
        for key, group, value in rows:
            cache.put(key, value, group or "")
        cache.commit()
    took = {"wall": time.perf_counter() - wall, "cpu": _cpu() - cpu, "entries": len(rows)}
    shutil.rmtree(folder, ignore_errors=True)
    return took


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("source", type=Path)
    parser.add_argument("--code", type=Path, action="append", required=True, help="a checkout (twice: before, after)")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--workdir", type=Path, default=Path(tempfile.gettempdir()))
    parser.add_argument("--child", nargs=2, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(child(Path(args.child[0]), args.source, Path(args.child[1]))))
        return
    codes = [code.resolve() for code in args.code]
    cpu: dict[Path, list[float]] = {code: [] for code in codes}
    wall: dict[Path, list[float]] = {code: [] for code in codes}
    for r in range(args.rounds):
        for code in codes if r % 2 == 0 else reversed(codes):
            folder = args.workdir / f"cache-fill-{r}"
            command = [sys.executable, __file__, str(args.source), "--code", str(code)]
            command += ["--child", str(code), str(folder)]
            took = json.loads(subprocess.run(command, check=True, capture_output=True, text=True).stdout)
            cpu[code].append(took["cpu"])
            wall[code].append(took["wall"])
    base = codes[0]
    for code in codes:
        ratios = [a / b for a, b in zip(cpu[code], cpu[base], strict=True)]
        print(
            f"{code}: CPU {statistics.median(cpu[code]):.2f} s ({min(cpu[code]):.2f}-{max(cpu[code]):.2f}), "
            f"wall {statistics.median(wall[code]):.2f} s; per round vs {base.name}: "
            f"{statistics.median(ratios):.2f}x ({min(ratios):.2f}-{max(ratios):.2f})"
        )


if __name__ == "__main__":
    main()
