"""Benchmark: one big export in one process against the same export with its calendars in a second (issue 15).

Why: the serialisers are pure Python, so one export uses one core;
`jobs.export_split` makes the calendars in a second process while the first
writes the contacts and notes. On a quiet two-core machine the export then takes
about the longer of the two processes' CPU times; this prints both, their sum
(what the machine pays) and the longer one (the critical path), beside the
one-process export, plus wall time and each process's peak RSS.

Each export runs in a fresh process of its own (`--one`), so its peak RSS is
its own (`ru_maxrss`) and the second process's is `RUSAGE_CHILDREN`'s. CPU and
wall are taken around `export_user` alone, after a warm-up export of a small
account (imports, compiled statements, zone data, as in a worker that has run
before). The second process's CPU includes its interpreter start and imports:
it pays them on every export. Rounds alternate one process and two; ratios are
per round, then median and min-max. Every archive is compared byte for byte.

The account is `HEAVY x scale` (seed 2, as bench/export_account.py) imported
once into SQLite under `--workdir`.

    nice -n 5 .venv/bin/python bench/export_two_cores.py [--scale 1] [--repeat 3] [--cache] [--workdir DIR]
"""

from __future__ import annotations

import argparse
import datetime as dt
import gc
import hashlib
import importlib.util
import json
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

NOW = dt.datetime(2026, 11, 25, 4, 0, tzinfo=dt.UTC)


def _export_repeat() -> Any:
    """bench/export_repeat.py, whose account set-up (HEAVY x scale, seed 2) and `Database` cache this shares."""
    spec = importlib.util.spec_from_file_location("export_repeat", ROOT / "bench" / "export_repeat.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def one(folder: Path, processes: int, name: str, cache: Path | None) -> dict[str, Any]:
    """One export in this (fresh) process; what it cost."""
    from exporters.ical.timezones import vtimezone
    from jobs.export import export_user
    from store.accounts import find_user

    out = folder / "archives"
    repeat = _export_repeat()
    database = repeat.database_of(folder)
    with database.sessionmaker() as session:  # warm-up: a small export of the same user is not possible,
        user = find_user(session, repeat.EMAIL)  # so the imports and statements warm up on a kinds=notes export
        assert user is not None
        export_user(session, user, out, now=NOW, archive_id=f"{name}-warm", kinds=("notes",), processes=1)
    vtimezone.cache_clear()
    with database.sessionmaker() as session:
        user = find_user(session, repeat.EMAIL)
        assert user is not None
        gc.collect()
        wall, cpu = time.perf_counter(), time.process_time()
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        result = export_user(session, user, out, now=NOW, archive_id=name, processes=processes, cache_dir=cache)
        wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
    path = out / result.archive.relpath
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    path.unlink()
    (out / f"{result.archive.user_id}" / f"{name}-warm.zip").unlink(missing_ok=True)
    return {
        "wall": wall,
        "cpu": cpu,
        "child_cpu": (after.ru_utime + after.ru_stime) - (before.ru_utime + before.ru_stime),
        "rss": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        "child_rss": after.ru_maxrss / 1024 if processes > 1 else 0.0,
        "sha256": digest,
        "hits": sum(result.reuse.hits.values()),
    }


def run_one(folder: Path, processes: int, name: str, cache: Path | None) -> dict[str, Any]:
    command = [sys.executable, __file__, "--one", str(folder), str(processes), name]
    if cache is not None:
        command.append(str(cache))
    done = subprocess.run(command, check=True, capture_output=True, text=True, cwd=ROOT)
    return json.loads(done.stdout.splitlines()[-1])


def spread(values: list[float], unit: str = "x") -> str:
    return f"{statistics.median(values):.2f}{unit} (min {min(values):.2f}, max {max(values):.2f})"


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "--one":
        folder, processes, name = Path(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
        cache = Path(sys.argv[5]) if len(sys.argv) > 5 else None
        print(json.dumps(one(folder, processes, name, cache)))
        return
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scale", type=float, default=1.0, help="fraction of HEAVY")
    parser.add_argument("--repeat", type=int, default=3, help="interleaved rounds")
    parser.add_argument("--cache", action="store_true", help="a repeat export with a warm item cache (0 % changed)")
    parser.add_argument("--workdir", type=Path, help="keep the imported database here (default: temporary)")
    args = parser.parse_args()
    work = args.workdir or Path(tempfile.mkdtemp(prefix="lifeboat-two-cores-"))
    folder = work / f"x{args.scale:g}"
    print(f"[{time.strftime('%H:%M:%S')}] importing HEAVY x{args.scale:g} into {folder}")
    _export_repeat().setup(folder, args.scale, edited=False)
    cache = work / "export-cache" if args.cache else None
    if cache is not None:
        shutil.rmtree(cache, ignore_errors=True)
        run_one(folder, 1, "fill", cache)  # the cache a repeat export finds
    rounds: list[dict[int, dict[str, Any]]] = []
    for r in range(args.repeat):
        timed = {p: run_one(folder, p, f"r{r}-p{p}", cache) for p in ((1, 2) if r % 2 == 0 else (2, 1))}
        rounds.append(timed)
        a, b = timed[1], timed[2]
        print(
            f"  round {r + 1}: one process CPU {a['cpu']:.2f} s, wall {a['wall']:.2f} s, RSS {a['rss']:.0f} MB; "
            f"two: CPU {b['cpu']:.2f} + {b['child_cpu']:.2f} s, wall {b['wall']:.2f} s, "
            f"RSS {b['rss']:.0f} + {b['child_rss']:.0f} MB; same bytes: {a['sha256'] == b['sha256']}; "
            f"items from the cache {a['hits']} / {b['hits']}"
        )
    kind = "repeat export, warm item cache (0 % changed)" if cache else "first export, no item cache"
    print(f"\nLifeboat two-process export: HEAVY x{args.scale:g}, SQLite, {kind}, {args.repeat} interleaved rounds")
    ones = [t[1]["cpu"] for t in rounds]
    print(f"  one process: CPU {spread(ones, ' s')}; wall {spread([t[1]['wall'] for t in rounds], ' s')}")
    parents = [t[2]["cpu"] for t in rounds]
    children = [t[2]["child_cpu"] for t in rounds]
    print(f"  two processes: first CPU {spread(parents, ' s')}, second CPU {spread(children, ' s')}")
    longer = [max(t[2]["cpu"], t[2]["child_cpu"]) / t[1]["cpu"] for t in rounds]
    total = [(t[2]["cpu"] + t[2]["child_cpu"]) / t[1]["cpu"] for t in rounds]
    wall = [t[2]["wall"] / t[1]["wall"] for t in rounds]
    print(f"  longer of the two / one process (critical path on two quiet cores): {spread(longer)}")
    print(f"  both together / one process (CPU the machine pays): {spread(total)}")
    print(f"  wall, two / one (a loaded machine: indicative only): {spread(wall)}")
    rss1 = [t[1]["rss"] for t in rounds]
    rss2 = [t[2]["rss"] for t in rounds]
    rssc = [t[2]["child_rss"] for t in rounds]
    print(f"  peak RSS MB: one process {spread(rss1, '')}; two: first {spread(rss2, '')}, second {spread(rssc, '')}")
    same = all(t[1]["sha256"] == t[2]["sha256"] for t in rounds) and len({t[1]["sha256"] for t in rounds}) == 1
    print(f"  every archive byte-identical: {'yes' if same else 'NO'}")
    if not args.workdir:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
