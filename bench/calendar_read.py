"""Benchmark: reading back the calendars of an archive, this checkout against others, interleaved.

What is measured: `exporters.ical.reader.stream_calendar_items` (what the fidelity
drill reads each calendar with) over every calendar of an archive, in 64 KiB
chunks, all events; then the same with `account.versions.record_digest` of each
event (what the drill does next); then "groups", what the drill's memo does on a
first export: each calendar cut into its event groups (`CalendarSplit`), each
group read straight from its bytes (`exporters.ical.quick.read_block`) and the
ones it leaves read as one stream after the header. Each round runs each checkout in a child
process of its own (its own imports), one after the other, so a loaded machine
loads them alike. Figures are CPU seconds (`time.process_time`) of the read
inside the child: the median over rounds with min-max, and each checkout's
ratio to the first one given, per round.

    .venv/bin/python bench/calendar_read.py ARCHIVE.zip --code /path/to/other/checkout --code . [--rounds 5]

A 1x HEAVY archive: `bench/fidelity_drill.py --workdir DIR` makes the database,
`lifeboat export` of its user writes one.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import statistics
import subprocess
import sys
import time
import zipfile
from typing import Any

CHUNK = 64 * 1024


def child(code: str, archive: str) -> dict[str, float]:
    """One checkout's figures (run in a fresh interpreter with `code` first on the path)."""
    sys.path.insert(0, code)
    from account.versions import record_digest
    from errors import InvalidInput
    from exporters.ical.reader import stream_calendar_items

    with zipfile.ZipFile(archive) as zf:
        members = [zf.read(n) for n in zf.namelist() if n.startswith("calendars/") and n.endswith(".ics")]
    pieces = [[data[i : i + CHUNK] for i in range(0, len(data), CHUNK)] for data in members]
    with contextlib.suppress(InvalidInput):  # cut short on purpose: imports and first uses out of the figure
        sum(1 for _ in stream_calendar_items(pieces[0][:2])[1])
    start = time.process_time()
    events = sum(1 for chunks in pieces for _ in stream_calendar_items(chunks)[1])
    read = time.process_time() - start
    start = time.process_time()
    for chunks in pieces:
        for event in stream_calendar_items(chunks)[1]:
            record_digest(event)
    both = time.process_time() - start
    return {"events": events, "read": read, "read + digest": both, **_groups(members)}


def _groups(members: list[bytes]) -> dict[str, float]:
    """CPU of reading every event group as the drill's memo does (`drill_memo._events_remembered`), if here."""
    try:
        from exporters.archive.drill_memo import CalendarSplit
        from exporters.ical.quick import read_block
        from exporters.ical.reader import stream_calendar_items
    except ImportError:
        return {}
    start = time.process_time()
    for data in members:
        split = CalendarSplit([data])
        left = [group for group in split.groups() if read_block(group) is None]
        assert split.head is not None
        sum(1 for _ in stream_calendar_items([split.head, *left, b"END:VCALENDAR\r\n"])[1])
    return {"groups": time.process_time() - start}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("archive")
    parser.add_argument("--code", action="append", required=True, help="a checkout; the first is the baseline")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--child", nargs=2, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(child(*args.child)))
        return
    runs: dict[str, list[dict[str, Any]]] = {code: [] for code in args.code}
    for _ in range(args.rounds):
        for code in args.code:
            command = [sys.executable, __file__, args.archive, "--code", code, "--child", code, args.archive]
            out = subprocess.run(command, check=True, capture_output=True, text=True).stdout
            runs[code].append(json.loads(out.strip().splitlines()[-1]))
    base = runs[args.code[0]]
    print(f"calendar read-back: {base[0]['events']:,} events, {args.rounds} interleaved rounds, CPU s")
    for code, got in runs.items():
        for key in ("read", "read + digest", "groups"):
            if not all(key in r for r in got + base):
                continue
            values = [r[key] for r in got]
            ratios = [r[key] / b[key] for r, b in zip(got, base, strict=True)]
            print(
                f"  {code:<28} {key:<14} {statistics.median(values):6.3f} s ({min(values):.3f}-{max(values):.3f})"
                f"  {statistics.median(ratios):.2f}x ({min(ratios):.2f}-{max(ratios):.2f})"
            )


if __name__ == "__main__":
    main()
