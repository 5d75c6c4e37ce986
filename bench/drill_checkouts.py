"""Benchmark: the fidelity drill's cost in a first export, two checkouts interleaved (issue 16).

Why apart from `bench/fidelity_drill.py`: that bench measures one checkout; a change to
the drill is judged against the code before it, measured under the same load. Here each
round runs, from each checkout in turn, a first export (item cache emptied) with the drill
off and then on, each in its own process (`fidelity_drill.py --child export` of that
checkout, on the HEAVY database `fidelity_drill.py --workdir` made). The drill's cost is
what the export costs more with it, over the export without it (a first export drills
part of its items as it writes them, so timing `drill()` alone would miss them); CPU
includes the export's second process. A checkout whose bench has `bench/drill_clock.py`
also gets the drill clocked in its own run (the steadier figure on a noisy host).

    .venv/bin/python bench/drill_checkouts.py --code BEFORE --code . [--rounds 6]
        [--workdir /var/tmp/fid-bench] [--scale 1]
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
import fidelity_drill  # in_run_ratio


def first_export(code: Path, folder: Path, cache: Path, name: str, drill: str) -> dict[str, Any]:
    """One first export of `folder`'s account by `code`'s fidelity_drill child (drill "on" or "off")."""
    shutil.rmtree(cache, ignore_errors=True)
    python = code / ".venv" / "bin" / "python"
    command = [str(python), str(code / "bench" / "fidelity_drill.py"), "--child", "export"]
    done = subprocess.run(
        [*command, str(folder), str(cache), "0", name, drill], capture_output=True, text=True, cwd=code, check=True
    )
    return dict(json.loads(done.stdout.strip().splitlines()[-1]))


def spread(values: list[float]) -> str:
    return f"{statistics.median(values):.2f}x ({min(values):.2f}-{max(values):.2f})"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--code", action="append", type=Path, required=True, help="a checkout (give two)")
    parser.add_argument("--rounds", type=int, default=6)
    parser.add_argument("--scale", type=float, default=1.0)
    parser.add_argument("--workdir", type=Path, default=Path("/var/tmp/fid-bench"))
    args = parser.parse_args()
    folder = args.workdir / f"x{args.scale:g}"
    if not folder.exists():
        raise SystemExit(f"no database in {folder}: run bench/fidelity_drill.py --workdir {args.workdir} once")
    codes = [code.resolve() for code in args.code]
    rows: dict[Path, list[dict[str, dict[str, Any]]]] = {code: [] for code in codes}
    with tempfile.TemporaryDirectory(prefix="lifeboat-drill-ab-") as scratch:
        for r in range(args.rounds):
            for n, code in enumerate(codes):
                cache = Path(scratch) / f"cache-{n}"
                got = {mode: first_export(code, folder, cache, f"ab{n}-{mode}-{r}", mode) for mode in ("off", "on")}
                rows[code].append(got)
                print(
                    f"round {r + 1}: {code}: CPU off {got['off']['cpu']:.2f} s, on {got['on']['cpu']:.2f} s", flush=True
                )
    print(f"\nthe drill in a first export, HEAVY x{args.scale:g}, {args.rounds} interleaved rounds (target <= 0.3x):")
    for code, runs in rows.items():
        cpu = [(g["on"]["cpu"] - g["off"]["cpu"]) / g["off"]["cpu"] for g in runs]
        wall = [(g["on"]["wall"] - g["off"]["wall"]) / g["off"]["wall"] for g in runs]
        off = statistics.median(g["off"]["cpu"] for g in runs)
        print(f"  {code}: CPU {spread(cpu)}, wall {spread(wall)}; the export without it {off:.2f} s CPU")
        if all("watched" in g["on"] for g in runs):  # a checkout whose bench clocks the drill in its run
            off_runs = [g["off"] for g in runs]
            in_run = [fidelity_drill.in_run_ratio(g["on"], "cpu", off_runs) for g in runs]
            drilled = statistics.median(g["on"]["watched"]["cpu"] + g["on"]["drill"]["cpu"] for g in runs)
            more = statistics.median(fidelity_drill.collected_apart(g["on"]["watched"]) for g in runs) - (
                statistics.median(fidelity_drill.collected_apart(g["watched"]) for g in off_runs)
            )
            print(
                f"    in the drilled run itself: CPU {spread(in_run)} (the drill {drilled:.2f} s CPU, "
                f"and {more:.2f} s more collecting outside it than without it)"
            )


if __name__ == "__main__":
    main()
