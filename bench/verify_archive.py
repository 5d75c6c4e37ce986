"""Benchmark: `verify` (the independent-parser check) against the export that made the archive (issue 15).

Why: `lifeboat verify` and `export --check` parse every file of an archive with
vobject, icalendar, `ical` and PyYAML; the target is at most 1.5x the export's
time at 1x HEAVY, on the two cores the check now uses, with peak RSS of the
whole check (both processes) at most 250 MB.

Accounts are HEAVY x scale imported into SQLite by `bench/export_account.py`'s
setup (kept in --workdir and reused). Each scale then runs, in one child process:

- rounds: `--rounds` interleaved rounds of `export_user` (store read, write,
  read-back check: what `lifeboat export` does) and `check_archive` on that archive
  in two processes (with --one-process, in one too). Wall and CPU seconds of each; the check's CPU
  includes its helper process (`RUSAGE_CHILDREN`). Ratios are per round, then the
  median with min-max;
- peak: one `check_archive` in a fresh process, its peak RSS and its helper's.

On a busy machine the wall ratio says more about the other load than about the
check, so each round also gives the busier process's CPU against the export's:
what the wall ratio is on two free cores.

`--threshold` instead times one against two processes on small archives made
in memory (HEAVY x 0.005 to 0.1), which is where `TWO_PROCESSES_FROM` comes from.

`--memo` instead times the memo of verdicts (`exporters.archive.check_memo`) on
a user's next day: today's archive of HEAVY x scale and tomorrow's, the same
account with 1 % of its contacts, events and notes edited (`bench/export_repeat.py`'s
two databases, made once in --workdir). Each round, interleaved: tomorrow's
export (the reference), a check of tomorrow's archive without a memo, a cold
check of today's with a new memo (what a first `verify` costs), and a warm check
of tomorrow's with that memo (what the next day's `verify` costs); all in the
processes `verify` would use. The sample's events do not say when they changed,
so each carries the export time as its DTSTAMP and all of them differ from one
day's archive to the next: the memo then saves only the cards and notes.
`--stamped-events` gives every event a last-change time, as events that came
from a calendar server have, so that only the edited 1 % differ.

    .venv/bin/python bench/verify_archive.py [--scales 0.1,1] [--rounds 3] [--workdir DIR] [--one-process]
    .venv/bin/python bench/verify_archive.py --threshold [--rounds 3]
    .venv/bin/python bench/verify_archive.py --memo [--stamped-events] [--scales 1] [--rounds 3] [--workdir DIR]
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
MB = 1_000_000
NOW = dt.datetime(2026, 11, 25, 4, 0, tzinfo=dt.UTC)


def clock() -> tuple[float, float, float]:
    """(wall, this process's CPU, waited-for children's CPU) seconds."""
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    return time.perf_counter(), time.process_time(), children.ru_utime + children.ru_stime


def since(start: tuple[float, float, float]) -> dict[str, float]:
    """Wall and CPU seconds since `start`; CPU in all, and this process's and its helpers' apart."""
    now = clock()
    own, helpers = now[1] - start[1], now[2] - start[2]
    return {"wall": now[0] - start[0], "cpu": own + helpers, "own": own, "helpers": helpers}


def rss_mb(who: int) -> float:
    return resource.getrusage(who).ru_maxrss * 1024 / MB  # KiB on Linux


# --- children ---------------------------------------------------------------------------


def rounds(folder: Path, count: int, one: bool) -> dict[str, Any]:
    """`count` rounds of export and check in two processes (and with `one`, in one); a new archive each round."""
    import export_account

    from exporters.archive.check import check_archive

    out: dict[str, list[dict[str, float]]] = {"export": [], "check2": [], **({"check1": []} if one else {})}
    size = 0
    for run in range(count):
        start = clock()
        _, result = export_account._export(folder, 100 + run)
        out["export"].append(since(start))
        path = result.info.path
        size = path.stat().st_size
        for processes in (2, 1) if one else (2,):
            start = clock()
            check_archive(path, processes=processes)
            out[f"check{processes}"].append(since(start))
        path.unlink()
        say_round(run, out)
    return {"rounds": out, "archive_bytes": size}


def say_round(run: int, times: dict[str, list[dict[str, float]]]) -> None:
    """The last round's times, as they come (on stderr: the parent reads stdout)."""
    said = ", ".join(f"{k} {v[-1]['wall']:.2f} s (CPU {v[-1]['cpu']:.2f} s)" for k, v in times.items())
    print(f"  round {run + 1}: {said}", file=sys.stderr, flush=True)


def peak(folder: Path) -> dict[str, Any]:
    """Peak RSS of a process that runs one export and nothing else; it leaves the archive for `check_peak`."""
    import export_account

    _, result = export_account._export(folder, 99)  # in this process: its peak is the export's too
    path = result.info.path
    return {"archive": str(path), "export_peak_mb": rss_mb(resource.RUSAGE_SELF)}


def check_peak(archive: Path) -> dict[str, Any]:
    """Peak RSS of a process that runs one check (in two processes) and nothing else, and of its helper."""
    from exporters.archive.check import check_archive

    start = clock()
    check_archive(archive, processes=2)
    took = since(start)
    return {
        "self_mb": rss_mb(resource.RUSAGE_SELF),
        "helper_mb": rss_mb(resource.RUSAGE_CHILDREN),
        **took,
    }


def threshold(count: int) -> dict[str, Any]:
    """One against two processes on archives of HEAVY x 0.005 to 0.1 made in memory."""
    from account.sample import HEAVY, generate_account
    from exporters.archive.check import check_archive
    from exporters.archive.counts import account_counts
    from exporters.archive.layout import Bundle
    from tests.archives import MemorySource, local_path, write_archive

    results = []
    with tempfile.TemporaryDirectory() as temp:
        for scale in (0.005, 0.01, 0.02, 0.05, 0.1):
            size = HEAVY.scaled(scale)
            account = generate_account("bench@example.com", size, seed=2)
            bundle = Bundle(MemorySource(account), now=NOW, timezone=account.timezone)
            meta = {"user": account.email, "counts": account_counts(account), "vcard_version": "3.0"}
            info = write_archive(Path(temp), f"x{scale:g}.zip", bundle.entries(), meta, NOW, layout=_layout(bundle))
            path = local_path(info)
            times: dict[str, list[dict[str, float]]] = {"1": [], "2": []}
            for _ in range(count):
                for processes in (1, 2):
                    start = clock()
                    check_archive(path, processes=processes)
                    times[str(processes)].append(since(start))
            results.append({"scale": scale, "bytes": path.stat().st_size, "times": times})
            print(f"  x{scale:g} done", file=sys.stderr, flush=True)
    return {"threshold": results}


def memo_rounds(workdir: Path, scale: float, count: int, stamped: bool) -> dict[str, Any]:
    """`count` rounds of: tomorrow's export; checks without a memo, cold (today's) and warm (tomorrow's)."""
    import export_repeat

    from exporters.archive import check_memo
    from exporters.archive.check import check_archive

    name = f"x{scale:g}{'-stamped' if stamped else ''}"
    today_db, tomorrow_db = workdir / name, workdir / f"{name}-edited"
    export_repeat.setup(today_db, scale, edited=False, stamped=stamped)
    export_repeat.setup(tomorrow_db, scale, edited=True, stamped=stamped)
    out, memo = workdir / f"{name}-archives", workdir / f"{name}-memo"
    shutil.rmtree(out, ignore_errors=True)
    today = export_repeat.export(today_db, out, None, NOW, "today")[2].info.path
    times: dict[str, list[dict[str, float]]] = {"export": [], "none": [], "cold": [], "warm": []}
    parsed = known = 0
    for run in range(count):
        start = clock()
        tomorrow = export_repeat.export(tomorrow_db, out, None, NOW + dt.timedelta(days=1), f"tomorrow-{run}")[2]
        times["export"].append(since(start))
        tomorrow_path = tomorrow.info.path
        start = clock()
        check_archive(tomorrow_path)
        times["none"].append(since(start))
        shutil.rmtree(memo, ignore_errors=True)
        start = clock()
        check_archive(today, memo_dir=memo)
        times["cold"].append(since(start))
        start = clock()
        warm = check_archive(tomorrow_path, memo_dir=memo)
        times["warm"].append(since(start))
        parsed, known = warm.parsed.total(), warm.known.total()
        tomorrow_path.unlink()
        say_round(run, times)
    return {
        "scale": scale,
        "stamped": stamped,
        "times": times,
        "parsed": parsed,
        "known": known,
        "archive_bytes": today.stat().st_size,
        "memo_bytes": (memo / check_memo.FILENAME).stat().st_size,
    }


def _layout(bundle: Any) -> Callable[[], Any]:
    """The bundle's layout once its entries are written (the paths are known only then)."""
    return lambda: bundle.layout.as_dict()


# --- the parent -------------------------------------------------------------------------


def child(*args: str) -> dict[str, Any]:
    command = [sys.executable, __file__, "--child", *args]
    done = subprocess.run(command, check=True, stdout=subprocess.PIPE, text=True, cwd=ROOT)
    return json.loads(done.stdout.strip().splitlines()[-1])


def setup(workdir: Path, scale: float) -> Path:
    folder = workdir / f"x{scale:g}"
    command = [sys.executable, str(ROOT / "bench" / "export_account.py"), "--child", "setup", str(folder), str(scale)]
    subprocess.run(command, check=True, stdout=subprocess.DEVNULL, cwd=ROOT)
    return folder


def spread(values: list[float], unit: str = "") -> str:
    return f"{statistics.median(values):.2f}{unit} ({min(values):.2f}-{max(values):.2f})"


def report_rounds(scale: float, result: dict[str, Any], memory: dict[str, Any]) -> None:
    r = result["rounds"]
    print(f"x{scale:g} HEAVY, archive {result['archive_bytes'] / MB:.1f} MB, {len(r['export'])} interleaved rounds")
    for key, name in (("export", "export_user"), ("check2", "verify, 2 processes"), ("check1", "verify, 1 process")):
        if key not in r:
            continue
        wall = [x["wall"] for x in r[key]]
        cpu = [x["cpu"] for x in r[key]]
        print(f"  {name:<22} wall {spread(wall, ' s')}   CPU {spread(cpu, ' s')}")
    for key, name in (("check2", "verify (2 processes)"), ("check1", "verify (1 process)")):
        if key not in r:
            continue
        wall = [c["wall"] / e["wall"] for c, e in zip(r[key], r["export"], strict=True)]
        cpu = [c["cpu"] / e["cpu"] for c, e in zip(r[key], r["export"], strict=True)]
        # On two free cores the check takes as long as its busier process: that against the export's CPU.
        busier = [max(c["own"], c["helpers"]) / e["cpu"] for c, e in zip(r[key], r["export"], strict=True)]
        print(
            f"  {name} / export: wall {spread(wall, 'x')}   CPU {spread(cpu, 'x')}   "
            f"busier process's CPU {spread(busier, 'x')}"
        )
    both = memory["self_mb"] + memory["helper_mb"]
    print(
        f"  peak RSS: export {memory['export_peak_mb']:.0f} MB; verify {memory['self_mb']:.0f} MB + helper "
        f"{memory['helper_mb']:.0f} MB = {both:.0f} MB (target <= 250 MB)"
    )


def report_threshold(result: dict[str, Any]) -> None:
    print("one against two processes (medians, min-max):")
    for row in result["threshold"]:
        t = row["times"]
        one, two = [x["wall"] for x in t["1"]], [x["wall"] for x in t["2"]]
        cpu1, cpu2 = [x["cpu"] for x in t["1"]], [x["cpu"] for x in t["2"]]
        ratio = [b / a for a, b in zip(one, two, strict=True)]
        print(
            f"  x{row['scale']:g} ({row['bytes'] / 1024:.0f} KiB): 1 process {spread(one, ' s')} "
            f"CPU {spread(cpu1, ' s')}; 2 processes {spread(two, ' s')} CPU {spread(cpu2, ' s')}; "
            f"wall 2/1 {spread(ratio, 'x')}"
        )


def report_memo(result: dict[str, Any]) -> None:
    t = result["times"]
    print(
        f"x{result['scale']:g} HEAVY{' (events dated)' if result['stamped'] else ''}, "
        f"archive {result['archive_bytes'] / MB:.1f} MB, next day 1 % edited, "
        f"{len(t['export'])} interleaved rounds; the warm check parsed {result['parsed']:,} items and knew "
        f"{result['known']:,}; memo file {result['memo_bytes'] / MB:.1f} MB"
    )
    names = {
        "export": "export (tomorrow's)",
        "none": "verify, no memo",
        "cold": "verify, cold memo",
        "warm": "verify, warm memo",
    }
    for key, name in names.items():
        wall = [x["wall"] for x in t[key]]
        cpu = [x["cpu"] for x in t[key]]
        print(f"  {name:<20} wall {spread(wall, ' s')}   CPU {spread(cpu, ' s')}")
    for key in ("cold", "warm"):
        base = [c["cpu"] / n["cpu"] for c, n in zip(t[key], t["none"], strict=True)]
        export = [c["cpu"] / e["cpu"] for c, e in zip(t[key], t["export"], strict=True)]
        wall = [c["wall"] / e["wall"] for c, e in zip(t[key], t["export"], strict=True)]
        print(
            f"  {key} memo: CPU / no memo {spread(base, 'x')}; / export: CPU {spread(export, 'x')}, "
            f"wall {spread(wall, 'x')}"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scales", default="0.1,1", help="fractions of HEAVY, comma-separated")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--workdir", type=Path, help="keep databases here and reuse them (default: temp)")
    parser.add_argument("--threshold", action="store_true", help="time one against two processes on small archives")
    parser.add_argument("--one-process", action="store_true", help="also time the check in one process each round")
    parser.add_argument("--memo", action="store_true", help="time cold and warm checks of a next day's archive")
    parser.add_argument("--stamped-events", action="store_true", help="with --memo: events say when they changed")
    parser.add_argument("--child", nargs="+", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        kind, *rest = args.child
        sys.path.insert(0, str(ROOT / "bench"))
        if kind == "rounds":
            out = rounds(Path(rest[0]), int(rest[1]), rest[2] == "one")
        elif kind == "peak":
            out = peak(Path(rest[0]))
        elif kind == "check_peak":
            out = check_peak(Path(rest[0]))
        elif kind == "memo":
            out = memo_rounds(Path(rest[0]), float(rest[1]), int(rest[2]), rest[3] == "stamped")
        else:
            out = threshold(int(rest[0]))
        print(json.dumps(out))
        return
    print(
        f"Lifeboat verify benchmark; Python {sys.version.split()[0]}; wall and CPU seconds "
        "(CPU: the check's helper too)"
    )
    if args.threshold:
        report_threshold(child("threshold", str(args.rounds)))
        return
    temp = None if args.workdir else tempfile.mkdtemp(prefix="lifeboat-verify-")
    workdir = args.workdir or Path(temp or ".")
    try:
        if args.memo:
            for scale in sorted(float(x) for x in args.scales.split(",")):
                print(f"[{time.strftime('%H:%M:%S')}] x{scale:g}: setup, then rounds", file=sys.stderr, flush=True)
                events = "stamped" if args.stamped_events else "plain"
                report_memo(child("memo", str(workdir), str(scale), str(args.rounds), events))
            return
        for scale in sorted(float(x) for x in args.scales.split(",")):
            print(f"[{time.strftime('%H:%M:%S')}] x{scale:g}: setup, then rounds", file=sys.stderr, flush=True)
            folder = setup(workdir, scale)
            result = child("rounds", str(folder), str(args.rounds), "one" if args.one_process else "two")
            memory = child("peak", str(folder))
            memory.update(child("check_peak", memory["archive"]))
            shutil.rmtree(folder / "archives", ignore_errors=True)
            report_rounds(scale, result, memory)
    finally:
        if temp:
            shutil.rmtree(temp, ignore_errors=True)


if __name__ == "__main__":
    main()
