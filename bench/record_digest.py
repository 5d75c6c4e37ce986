"""Benchmark: `account.versions.record_digest` over every record of HEAVY x scale, against an older version.

Why: the fidelity drill digests every record it reads back and an import or
restore digests every record it stores (65,000 at 1x HEAVY); the digest was
~20 % of a first export's drill CPU (cProfile: 3.66 of 18.2 s).

The account is generated in memory (`account.sample.generate_account`, seed 2 as
`bench/export_account.py`), and its records are the ones the drill digests:
contacts, calendar headers (`CalendarInfo`), events and notes. The baseline is
`account/versions.py` as it was at --baseline (a commit, by default the one
before the per-class encoders), loaded from git into a module of its own, so
both run in this process on the same records. Each round digests all records
with the baseline and then with the checkout's code (the order alternating from
round to round), CPU seconds by `time.process_time`; the ratio is per round,
then the median with min-max. Every record's two digests must be equal.

    .venv/bin/python bench/record_digest.py [--scale 0.1] [--rounds 7] [--baseline 26cdf37]
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time
import types
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from account import versions  # noqa: E402
from account.sample import HEAVY, generate_account  # noqa: E402

# main before the per-class encoders of `account.versions` (the 2.2 M-call walk the drill profiled).
BEFORE = "26cdf37"


def baseline(commit: str) -> Callable[[Any], str]:
    """`record_digest` of `account/versions.py` at `commit`, loaded as a module of its own."""
    source = subprocess.run(
        ["git", "-C", str(ROOT), "show", f"{commit}:account/versions.py"], capture_output=True, text=True, check=True
    ).stdout
    module = types.ModuleType("versions_baseline")
    sys.modules[module.__name__] = module  # dataclasses and `from __future__ import annotations` look it up
    exec(compile(source, f"{commit}:account/versions.py", "exec"), module.__dict__)  # noqa: S102  # this repository's own code
    digest: Callable[[Any], str] = module.record_digest
    return digest


def records(scale: float) -> list[Any]:
    size = HEAVY.scaled(scale)
    account = generate_account("bench@example.com", size, seed=2)
    found: list[Any] = [*account.contacts]
    for calendar in account.calendars:
        found += [calendar.info, *calendar.events]
    return [*found, *account.notes]


def cpu(digest: Callable[[Any], str], items: list[Any]) -> float:
    start = time.process_time()
    for item in items:
        digest(item)
    return time.process_time() - start


def spread(values: list[float]) -> str:
    return f"{statistics.median(values):.3f} ({min(values):.3f}-{max(values):.3f})"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scale", type=float, default=0.1, help="fraction of HEAVY (default 0.1)")
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--baseline", default=BEFORE, help=f"commit of the old code (default {BEFORE})")
    args = parser.parse_args()
    old, new = baseline(args.baseline), versions.record_digest
    items = records(args.scale)
    wrong = [i for i, item in enumerate(items) if old(item) != new(item)]
    if wrong:
        sys.exit(f"{len(wrong)} of {len(items)} records digest differently, the first is #{wrong[0]}")
    times: dict[str, list[float]] = {"old": [], "new": []}
    for turn in range(args.rounds):
        order = [("old", old), ("new", new)] if turn % 2 == 0 else [("new", new), ("old", old)]
        for name, digest in order:
            times[name].append(cpu(digest, items))
    ratios = [o / n for o, n in zip(times["old"], times["new"], strict=True)]
    print(
        f"record_digest, HEAVY x {args.scale:g}: {len(items):,} records, same digests; {args.rounds} interleaved rounds"
    )
    print(f"  {args.baseline}  CPU {spread(times['old'])} s")
    print(f"  checkout  CPU {spread(times['new'])} s")
    print(f"  old / new {spread(ratios)}x")


if __name__ == "__main__":
    main()
