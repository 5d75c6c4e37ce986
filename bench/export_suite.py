"""Every issue-15 export figure from one run: floor, first export, repeats, restore, verify (issue 15).

Why: the issue's proof asks for all of its ratios from one process run, each the
median of >= 3 interleaved rounds with min-max, and the peak RSS of each step at
1x and 10x HEAVY. The separate benches measured them on different loads of a
shared machine; here one round runs every step back to back, so each ratio
compares steps measured under the same load. The steps are the other benches'
own functions (so a change to an entry point is fixed in one place):

- floor: the plain-writer pipeline (`export_floor.timed_floor`) on the records
  read into memory first (`export_floor.records`, not timed);
- first: `export_user` with the per-user item cache emptied first (it fills the
  cache: a user's first scheduled export; `export_repeat.export`);
- first, no drill: the same with the fidelity drill off (the cache emptied
  again). A first export drills its cards and events as it writes them
  (`exporters.archive.drill_written`), so the drill's cost is the difference
  of the two, not only the time inside `exporters.archive.drill.drill`;
- repeat 0 %: `export_user` of the same data a minute later, with that cache;
- repeat 1 %: `export_user` of the account re-imported with 1 % of its items
  edited (`export_repeat.setup`; same user id, so it finds the cache);
- restore: `restore_account.restore` of the first export's archive into an
  empty, migrated SQLite database (migration not timed);
- verify: `verify_archive.check_peak`, the independent-parser check of that
  archive in two processes.

Each step runs in a child process of its own, so its peak RSS (`ru_maxrss`) is
its own; a step's helper processes (verify's second process) are counted in its
CPU and their peak reported beside it. CPU is `getrusage` of the child and of its
waited-for children over the step alone (imports, setup and migration before it
are not counted). Ratios are per round against the step's baseline in the same
round (first export vs the floor; repeats, restore and verify vs the first
export), then the median with min-max. Every step runs in a fresh process, so it
pays its own first-use costs (SQLAlchemy compiling statements for a new engine,
zone data): a worker that keeps its engine does slightly less.

`--memory-scales 10` runs each step once more at those scales for peak RSS only
(10x HEAVY: 100,000 contacts, 500,000 events, 50,000 notes; seeding it takes
~10x the 1x setup, twice: the original and the edited account, ~0.45 GB each).

    nice -n 5 .venv/bin/python bench/export_suite.py [--scales 0.1,1] [--rounds 3] [--memory-scales 10]
        [--workdir DIR]
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

import export_account  # noqa: E402  # setup, the account's address and the export clock's epoch
import export_floor  # noqa: E402
import export_repeat  # noqa: E402
import fidelity_drill  # noqa: E402  # the drill inside each export, timed apart
import restore_account  # noqa: E402
import verify_archive  # noqa: E402  # clock and since: wall, and CPU of this process and its children

STEPS = ("floor", "first", "first, no drill", "repeat 0%", "repeat 1%", "restore", "verify")
BASELINE = {
    "first": "floor",
    "first, no drill": "floor",
    "repeat 0%": "first",
    "repeat 1%": "first",
    "restore": "first",
    "verify": "first",
}


# --- children: one step each --------------------------------------------------------------


def measured(step: Callable[[], Any]) -> tuple[dict[str, float], Any]:
    """Wall and CPU seconds of `step` (this process's and its children's) and the peak RSS of both."""
    start = verify_archive.clock()
    result = step()
    took: dict[str, float] = verify_archive.since(start)
    took["self_mb"] = verify_archive.rss_mb(resource.RUSAGE_SELF)
    took["helper_mb"] = verify_archive.rss_mb(resource.RUSAGE_CHILDREN)
    return took, result


def floor(folder: Path) -> dict[str, Any]:
    contacts, calendars, notes = export_floor.records(export_account.db_url(folder), export_account.EMAIL)
    took, _ = measured(lambda: export_floor.timed_floor(contacts, calendars, notes, folder))
    return took


def export(folder: Path, cache: Path, minutes: int, name: str, keep: bool, drilled: bool = True) -> dict[str, Any]:
    """One `export_user` of the database in `folder` into `cache`'s sibling `archives` (`drilled`: the drill on)."""
    import jobs.export
    import store.accounts  # noqa: F401  # imported before the clock starts

    now = export_repeat.NOW + dt.timedelta(minutes=minutes)
    drills = fidelity_drill.drill_timed()
    if not drilled:
        export_user = jobs.export.export_user
        jobs.export.export_user = lambda *args, **kwargs: export_user(*args, **kwargs, fidelity_drill=False)
    took, (_, _, result) = measured(lambda: export_repeat.export(folder, cache.parent / "archives", cache, now, name))
    path = result.info.path
    if not keep:
        path.unlink()
    reuse = result.reuse
    counts = {"hits": sum(reuse.hits.values()), "misses": sum(reuse.misses.values())}
    return {**took, "archive": str(path), **counts, "drill": drills[0] if drills else None}


def restore(archive: Path, target: Path) -> dict[str, Any]:
    """`archive` restored into a new account of an empty database at `target` (created and migrated first)."""
    from store import migrate
    from store.db import Database

    target.unlink(missing_ok=True)
    database = Database(f"sqlite:///{target}")
    migrate.upgrade(database)
    database.dispose()
    took, restored = measured(lambda: restore_account.restore(archive, target, fresh=False))
    target.unlink()
    return {**took, "counts": restored["counts"]}


def verify(archive: Path) -> dict[str, Any]:
    return verify_archive.check_peak(archive)  # its own clock and peaks, the same as `measured`


# --- the parent -------------------------------------------------------------------------


def child(*args: object) -> dict[str, Any]:
    command = [sys.executable, __file__, "--child", *map(str, args)]
    done = subprocess.run(command, check=True, stdout=subprocess.PIPE, text=True, cwd=ROOT)
    return json.loads(done.stdout.strip().splitlines()[-1])


def run_scale(workdir: Path, scale: float, rounds: int) -> dict[str, Any]:
    """Setup at `scale`, then `rounds` rounds of every step in order; each archive deleted after its round."""
    folder, edited = workdir / f"x{scale:g}", workdir / f"x{scale:g}-edited"
    cache = folder / "export-cache"

    def say(text: str) -> None:
        print(f"[{time.strftime('%H:%M:%S')}] x{scale:g}: {text}", file=sys.stderr, flush=True)

    say("setup (generate + import, the original and the 1 % edited; reused from --workdir)")
    start = time.perf_counter()
    stats = child("setup", folder, scale)
    child("setup-edited", edited, scale)
    say(f"setup done in {time.perf_counter() - start:.0f} s")
    out: dict[str, list[dict[str, Any]]] = {step: [] for step in STEPS}
    for r in range(rounds):
        shutil.rmtree(cache, ignore_errors=True)
        out["floor"].append(child("floor", folder))
        out["first, no drill"].append(child("export", folder, cache, 60 * r, f"plain-{r}", "drop", "off"))
        shutil.rmtree(cache, ignore_errors=True)  # the repeats start from the first (drilled) export's cache
        first = child("export", folder, cache, 60 * r, f"first-{r}", "keep")
        out["first"].append(first)
        out["repeat 0%"].append(child("export", folder, cache, 60 * r + 1, f"same-{r}", "drop"))
        out["repeat 1%"].append(child("export", edited, cache, 60 * r + 2, f"changed-{r}", "drop"))
        out["restore"].append(child("restore", first["archive"], folder / "restore.db"))
        out["verify"].append(child("verify", first["archive"]))
        Path(first["archive"]).unlink()
        done = (f"{k} CPU {v[-1]['cpu']:.2f} s {peak_mb(v[-1]):.0f} MB" for k, v in out.items())
        say(f"round {r + 1}/{rounds}: " + ", ".join(done))  # a run stopped half-way still leaves its figures
    shutil.rmtree(cache, ignore_errors=True)
    shutil.rmtree(folder / "archives", ignore_errors=True)
    return {"scale": scale, "stats": stats, "steps": out}


def spread(values: list[float], unit: str = "x") -> str:
    """Median (min-max): a ratio unless `unit` says otherwise."""
    return verify_archive.spread(values, unit)


def peak_mb(run: dict[str, Any]) -> float:
    """A step's peak RSS: its process's, plus its helper's (verify's second process) running beside it."""
    return float(run["self_mb"] + run["helper_mb"])


def describe(results: list[dict[str, Any]]) -> None:
    for r in results:
        s = r["stats"]
        print(
            f"  x{r['scale']:g}: {s['contacts']} contacts ({s['photos']} with photos), {s['events']} events, "
            f"{s['notes']} notes ({s['attachments']} attachments)"
        )


def report(results: list[dict[str, Any]], rounds: int) -> None:
    """The ratios, CPU and wall medians and peak RSS of the timed scales."""
    print(
        f"Lifeboat issue-15 suite: HEAVY x scale, SQLite, {rounds} interleaved rounds; Python {sys.version.split()[0]}"
    )
    print("  each step in its own process; CPU = getrusage of that process and its children over the step alone")
    describe(results)
    print()
    head = (
        f"{'scale':>5} {'step':<9} {'vs':<5} | {'CPU ratio':>18} {'wall ratio':>18} | "
        f"{'CPU s':>21} {'wall s':>23} | {'peak RSS MB':>11}"
    )
    print(head)
    print("-" * len(head))
    for r in results:
        steps = r["steps"]
        for step in STEPS:
            runs, base = steps[step], BASELINE.get(step)
            ratios = ["", ""]
            if base:
                ratios = [
                    spread([a[key] / b[key] for a, b in zip(runs, steps[base], strict=True)]) for key in ("cpu", "wall")
                ]
            print(
                f"{r['scale']:>4g}x {step:<9} {base or '':<5} | {ratios[0]:>18} {ratios[1]:>18} | "
                f"{spread([x['cpu'] for x in runs], ' s'):>21} {spread([x['wall'] for x in runs], ' s'):>23} | "
                f"{max(peak_mb(x) for x in runs):>11.0f}"
            )
        firsts, plains = steps["first"], steps["first, no drill"]
        # The drill's whole cost: what the first export costs more with it (part of it is done as the
        # cards and events are written, `exporters.archive.drill_written`), over the export without it.
        own = {
            key: [(a[key] - b[key]) / b[key] for a, b in zip(firsts, plains, strict=True)] for key in ("cpu", "wall")
        }
        after = [a["drill"]["cpu"] / b["cpu"] for a, b in zip(firsts, plains, strict=True) if a["drill"]]
        print(
            f"{'':>5} the fidelity drill in a first export (first - first, no drill) vs the export without it: "
            f"CPU {spread(own['cpu'])}, wall {spread(own['wall'])} (issue 16: <= 0.3x); of which after the "
            f"archive is written (notes, checks): CPU {spread(after) if after else '-'}"
        )
        checks = steps["verify"]
        busier = [max(c["own"], c["helpers"]) / e["cpu"] for c, e in zip(checks, steps["first"], strict=True)]
        last = steps["repeat 1%"][-1]
        print(
            f"{'':>5} verify: the busier of its two processes vs first export CPU {spread(busier)}; "
            f"repeat 1 %: {last['hits']} items reused, {last['misses']} serialised (last round)"
        )
    print()
    print("targets: first <= 2x floor; repeat 1 % <= 0.25x first; restore <= 1.5x; verify <= 1.5x (issue 15)")


def report_memory(results: list[dict[str, Any]], memory: list[dict[str, Any]]) -> None:
    """Peak RSS of every step at every scale, and its growth from the last timed scale to the last memory scale."""
    print()
    describe(memory)
    everything = results + memory
    head = f"{'peak RSS MB':<11} | " + " ".join(f"{'x' + format(r['scale'], 'g'):>7}" for r in everything)
    print(head + f" | {'growth':>7}")
    print("-" * (len(head) + 10))
    for step in STEPS:
        peaks = [max(peak_mb(x) for x in r["steps"][step]) for r in everything]
        print(f"{step:<11} | " + " ".join(f"{p:>7.0f}" for p in peaks) + f" | {peaks[-1] / peaks[-2]:>6.2f}x")
    print(
        f"growth: x{everything[-2]['scale']:g} -> x{everything[-1]['scale']:g}; "
        "memory scales run each step once; targets: restore <= 250 MB and flat"
    )


def run_child(kind: str, rest: list[str]) -> Any:
    if kind == "setup":
        return export_account.setup(Path(rest[0]), float(rest[1]))
    if kind == "setup-edited":
        return export_repeat.setup(Path(rest[0]), float(rest[1]), edited=True)
    if kind == "floor":
        return floor(Path(rest[0]))
    if kind == "export":
        drilled = len(rest) < 6 or rest[5] != "off"
        return export(Path(rest[0]), Path(rest[1]), int(rest[2]), rest[3], rest[4] == "keep", drilled)
    if kind == "restore":
        return restore(Path(rest[0]), Path(rest[1]))
    return verify(Path(rest[0]))


def scales(text: str) -> list[float]:
    return sorted(float(x) for x in text.split(",") if x)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scales", default="0.1,1", help="fractions of HEAVY to time, comma-separated")
    parser.add_argument("--rounds", type=int, default=3, help="interleaved rounds per scale (>= 3 for the issue)")
    parser.add_argument("--memory-scales", default="", help="fractions of HEAVY run once each for peak RSS only")
    parser.add_argument("--workdir", type=Path, help="keep the databases here and reuse them (default: temp)")
    parser.add_argument("--child", nargs="+", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(run_child(args.child[0], args.child[1:])))
        return
    temp = None if args.workdir else tempfile.mkdtemp(prefix="lifeboat-suite-")
    workdir = args.workdir or Path(temp or ".")
    timed = scales(args.scales)
    try:
        results = [run_scale(workdir, scale, args.rounds) for scale in timed]
        report(results, args.rounds)  # before the memory scales: their setup alone takes minutes
        sys.stdout.flush()
        memory = [run_scale(workdir, scale, 1) for scale in scales(args.memory_scales) if scale not in timed]
        if memory:
            report_memory(results, memory)
    finally:
        if temp:
            shutil.rmtree(temp, ignore_errors=True)


if __name__ == "__main__":
    main()
