"""Benchmark: restoring an archive against exporting it (issue 15), and restore's peak memory.

Why: a restore reads back what an export wrote, so an export of the same account
is the natural yardstick; target `restore` <= 1.5x its export, peak RSS <= 250 MB
and flat as the account grows.

The account is `account.sample.HEAVY` x scale, imported into SQLite by
`bench/export_account.py`'s setup (reused with --workdir). Each round runs, each
in a child process of its own (so each peak RSS belongs to that step alone):

- export: one `export_user` of the account (as bench/export_account.py times it);
- restore: `jobs.restore.restore_archive` of that archive into an empty account
  of a fresh, migrated SQLite database (migration not timed);
- replace: the same archive restored again over that account (old rows deleted first).

Rounds are interleaved (export, restore, replace, export, ...); ratios are per
round, reported as the median with min-max, for wall and CPU (the child's own
CPU time, which other load on the machine disturbs least). A restore of an
archive of 16 MiB or more runs its calendars in `jobs.restore_worker`: its CPU
and peak RSS are reported on a line of their own, and the sum of both CPUs
over the export's (a big export packs its calendars in a second process too,
`jobs.export_calendars`: its CPU is on the export's worker line).

    .venv/bin/python bench/restore_account.py [--scales 0.1,1] [--repeat 3] [--workdir DIR]
"""

from __future__ import annotations

import argparse
import gc
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
sys.path.insert(0, str(ROOT / "bench"))

import export_account  # noqa: E402  # the same setup and export as the export benchmark

MB = 1_000_000
RESTORED = "restored@example.com"


def rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024 / MB  # KiB on Linux


def children_cpu() -> float:
    """CPU seconds of this process's finished children: a two-process restore's `jobs.restore_worker`."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def export(folder: Path, run: int) -> dict[str, Any]:
    import jobs.export  # noqa: F401  (imports count in the "after imports" figure)

    after_imports = rss_mb()
    children = children_cpu()
    (wall, cpu), result = export_account._export(folder, run)
    return {
        "wall": wall,
        "cpu": cpu,
        "worker_cpu": children_cpu() - children,  # a big export's second process (`jobs.export_calendars`)
        "worker_peak_mb": resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss * 1024 / MB,
        "peak_mb": rss_mb(),
        "after_imports_mb": after_imports,
        "archive": str(result.info.path),
    }


def restore(archive: Path, database_file: Path, fresh: bool) -> dict[str, Any]:
    from jobs.restore import restore_archive
    from store import migrate
    from store.db import Database

    if fresh:
        database_file.unlink(missing_ok=True)
    database = Database(f"sqlite:///{database_file}")
    if fresh:
        migrate.upgrade(database)
    after_imports = rss_mb()
    gc.collect()
    start = export_account.clock()
    children = children_cpu()
    restored = restore_archive(database, archive, RESTORED, scratch=database_file.parent)
    wall, cpu = export_account.since(start)
    database.dispose()
    return {
        "wall": wall,
        "cpu": cpu,
        "worker_cpu": children_cpu() - children,
        "worker_peak_mb": resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss * 1024 / MB,
        "peak_mb": rss_mb(),
        "after_imports_mb": after_imports,
        "counts": restored.counts.as_dict(),
    }


def child(*args: str) -> dict[str, Any]:
    command = [sys.executable, __file__, "--child", *args]
    done = subprocess.run(command, check=True, stdout=subprocess.PIPE, text=True, cwd=ROOT)
    return json.loads(done.stdout.strip().splitlines()[-1])


def measure(workdir: Path, scale: float, repeat: int) -> dict[str, Any]:
    folder = workdir / f"x{scale:g}"

    def say(text: str) -> None:
        print(f"[{time.strftime('%H:%M:%S')}] x{scale:g}: {text}", file=sys.stderr, flush=True)

    say("setup (generate + import; reused from --workdir)")
    stats = child("setup", str(folder), str(scale))
    rounds: list[dict[str, Any]] = []
    target = folder / "restore.db"
    for run in range(repeat):
        exported = child("export", str(folder), str(run + 1))
        restored = child("restore", exported["archive"], str(target), "fresh")
        replaced = child("restore", exported["archive"], str(target), "replace")
        rounds.append({"export": exported, "restore": restored, "replace": replaced})
        say(
            f"round {run + 1}: export {exported['wall']:.1f} s (CPU {exported['cpu']:.1f}), "
            f"restore {restored['wall']:.1f} s (CPU {restored['cpu']:.1f}, {restored['peak_mb']:.0f} MB), "
            f"replace {replaced['wall']:.1f} s (CPU {replaced['cpu']:.1f}, {replaced['peak_mb']:.0f} MB)"
        )
        Path(exported["archive"]).unlink()
    target.unlink(missing_ok=True)
    shutil.rmtree(folder / "archives", ignore_errors=True)
    return {"scale": scale, "stats": stats, "rounds": rounds}


def spread(values: list[float]) -> str:
    return f"{statistics.median(values):.2f} ({min(values):.2f}-{max(values):.2f})"


def report(results: list[dict[str, Any]], repeat: int) -> None:
    python = sys.version.split()[0]
    print(f"Lifeboat restore benchmark: HEAVY x scale, SQLite, {repeat} interleaved rounds; Python {python}")
    print("  figures: median (min-max) over rounds; ratios are per round, restore / that round's export")
    for r in results:
        s = r["stats"]
        print(
            f"  x{r['scale']:g}: {s['contacts']} contacts ({s['photos']} with photos), {s['events']} events, "
            f"{s['notes']} notes ({s['attachments']} attachments)"
        )
    print()
    head = (
        f"{'scale':>6} {'step':<8} | {'wall s':>18} {'CPU s':>18} | {'/export wall':>18} {'/export CPU':>18} | "
        f"{'peak RSS MB':>18}"
    )
    print(head)
    print("-" * len(head))
    for r in results:
        rounds = r["rounds"]
        for step in ("export", "restore", "replace"):
            wall = [x[step]["wall"] for x in rounds]
            cpu = [x[step]["cpu"] for x in rounds]
            ratio_wall = [x[step]["wall"] / x["export"]["wall"] for x in rounds]
            ratio_cpu = [x[step]["cpu"] / x["export"]["cpu"] for x in rounds]
            peak = [x[step]["peak_mb"] for x in rounds]
            print(
                f"{r['scale']:>5g}x {step:<8} | {spread(wall):>18} {spread(cpu):>18} | "
                f"{spread(ratio_wall):>18} {spread(ratio_cpu):>18} | {spread(peak):>18}"
            )
            worker = [x[step].get("worker_cpu", 0.0) for x in rounds]
            if any(worker):
                both = [
                    (x[step]["cpu"] + x[step]["worker_cpu"]) / (x["export"]["cpu"] + x["export"].get("worker_cpu", 0.0))
                    for x in rounds
                ]
                peaks = [x[step]["worker_peak_mb"] for x in rounds]
                print(
                    f"{'':>6} {'  worker':<8} | {'':>18} {spread(worker):>18} | {'both CPU':>18} {spread(both):>18} | "
                    f"{spread(peaks):>18}"
                )
    print(
        "  (two processes: CPU and /export CPU are the main processes'; worker is jobs.restore_worker's or, for the\n"
        "   export, jobs.export_calendars'; both CPU: the step's two processes over the export's two)"
    )
    print()
    print("targets: restore <= 1.5x its export; restore peak RSS <= 250 MB and flat as the account grows")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scales", default="0.1,1", help="fractions of HEAVY, comma-separated")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--workdir", type=Path, help="keep databases here and reuse them (default: temp)")
    parser.add_argument("--child", nargs="+", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        kind, *rest = args.child
        if kind == "setup":
            out = export_account.setup(Path(rest[0]), float(rest[1]))
        elif kind == "export":
            out = export(Path(rest[0]), int(rest[1]))
        else:
            out = restore(Path(rest[0]), Path(rest[1]), rest[2] == "fresh")
        print(json.dumps(out))
        return
    temp = None if args.workdir else tempfile.mkdtemp(prefix="lifeboat-restore-bench-")
    workdir = args.workdir or Path(temp or ".")
    try:
        results = [measure(workdir, float(scale), args.repeat) for scale in args.scales.split(",")]
    finally:
        if temp:
            shutil.rmtree(temp, ignore_errors=True)
    report(results, args.repeat)


if __name__ == "__main__":
    main()
