"""Benchmark: first, repeat 0 % and repeat 1 % exports at 1x HEAVY from two checkouts, interleaved (issue 15, 16).

Why: `bench/export_suite.py` measures one checkout; a change to the export path
is judged by running the same steps from the code before it and from this one,
in turns, under the same load. Each round, for each checkout (alternating which
goes first): the checkout's own item cache is emptied, then `export_suite.py
--child export` of that checkout runs a first export, a repeat of the same data a
minute later, and a repeat of the account re-imported with 1 % edited (the
suite's setup in `--workdir`, made first with `export_suite.py`). CPU is each
child's own and its helpers' (the drill's share printed beside it); ratios are
per round against the first `--code`, and each repeat against its checkout's
first export of the round.

    .venv/bin/python bench/export_checkouts.py --code BEFORE --code . [--rounds 3]
        [--workdir /var/tmp/lifeboat-suite] [--scratch /var/tmp/export-checkouts]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
from pathlib import Path
from typing import Any

STEPS = ("first", "same", "changed")  # same: repeat 0 %; changed: repeat 1 %


def child(code: Path, folder: Path, cache: Path, minutes: int, name: str) -> dict[str, Any]:
    command = [sys.executable, str(code / "bench/export_suite.py"), "--child", "export"]
    command += [str(folder), str(cache), str(minutes), name, "drop"]
    env = {**os.environ, "PYTHONPATH": str(code)}
    done = subprocess.run(command, cwd=code, capture_output=True, text=True, env=env, check=False)
    if done.returncode:
        raise SystemExit(f"{code}: the export failed:\n{done.stderr[-2000:]}")
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def spread(values: list[float], unit: str = "x") -> str:
    return f"{statistics.median(values):.2f}{unit} ({min(values):.2f}-{max(values):.2f})"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--code", type=Path, action="append", required=True, help="a checkout (before, then after)")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--workdir", type=Path, default=Path("/var/tmp/lifeboat-suite"), help="export_suite's")
    parser.add_argument("--scratch", type=Path, default=Path("/var/tmp/export-checkouts"), help="caches, archives")
    args = parser.parse_args()
    codes = [code.resolve() for code in args.code]
    original, edited = args.workdir / "x1", args.workdir / "x1-edited"
    if not (original / "lifeboat.db").exists():
        raise SystemExit(f"no 1x account in {original}: run bench/export_suite.py --scales 1 --rounds 0 first")
    found: dict[Path, dict[str, list[tuple[float, float]]]] = {code: {s: [] for s in STEPS} for code in codes}
    for r in range(args.rounds):
        for number, code in enumerate(codes if r % 2 == 0 else codes[::-1]):
            cache = args.scratch / f"{number}-{code.name}" / "export-cache"
            shutil.rmtree(cache, ignore_errors=True)
            for i, step in enumerate(STEPS):
                result = child(code, edited if step == "changed" else original, cache, 60 * r + i, f"{step}-{r}")
                drill = (result.get("drill") or {}).get("cpu", 0.0)
                found[code][step].append((result["cpu"], drill))
                print(f"round {r + 1} {code}: {step} {result['cpu']:.2f} s CPU, drill {drill:.2f}", flush=True)
            shutil.rmtree(cache.parent, ignore_errors=True)
    base = codes[0]
    for step in STEPS:
        for code in codes:
            cpu = [c for c, _ in found[code][step]]
            drills = [d for _, d in found[code][step]]
            line = f"{step:7} {code}: CPU {spread(cpu, ' s')}, drill {spread(drills, ' s')}"
            line += f"; vs {base.name} {spread([a / b for a, (b, _) in zip(cpu, found[base][step], strict=True)])}"
            if step != "first":
                firsts = [c for c, _ in found[code]["first"]]
                line += f"; / its first {spread([a / b for a, b in zip(cpu, firsts, strict=True)])}"
            print(line)


if __name__ == "__main__":
    main()
