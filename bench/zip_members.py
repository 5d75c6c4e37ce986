"""Benchmark: small zip members through `zipfile.open(..., "w")` against the writer's `_put_whole` (issue 15).

Why: a 1x HEAVY archive holds ~15,000 small members (a file per card and per
note), and a repeat export copies most of them from the item cache, so the
per-member machinery of `zipfile` (a header written, a seek back to rewrite it,
each seek flushing the buffer) is a fixed cost of every repeat. `_put_whole`
writes the header once with the CRC and sizes it already knows. Both write the
same bytes (checked here, and in tests/formats/test_zipfile_internals.py).

Each round writes `--members` card-sized members (one raw-DEFLATE segment each,
as the export cache holds them) into an in-memory zip both ways, interleaved;
CPU and wall of each, then the ratio per round, median (min-max).

`--read ARCHIVE` instead times the read-back check (`verify_archive`) of an
existing archive with small members read whole (`zipdir.small_member`) against
all members streamed, interleaved in one process.

    .venv/bin/python bench/zip_members.py [--members 10000] [--rounds 7]
    .venv/bin/python bench/zip_members.py --read ARCHIVE [--rounds 6]
"""

from __future__ import annotations

import argparse
import io
import statistics
import sys
import time
import zipfile
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from exporters.archive import writer
from exporters.archive.reuse import deflate_segment

STAMP = (2026, 11, 25, 4, 0, 0)


def cards(count: int) -> list[tuple[bytes, bytes]]:
    """Card-like vCards (~1.3 KB) with their raw-DEFLATE segments."""
    out = []
    for n in range(count):
        card = b"BEGIN:VCARD\r\nVERSION:3.0\r\nFN:Person %d\r\nNOTE:" % n + b"met at the conference " * 50
        card += b"\r\nEND:VCARD\r\n"
        out.append((card, deflate_segment(card)))
    return out


def through_open(members: list[tuple[bytes, bytes]]) -> bytes:
    raw = io.BytesIO()
    with zipfile.ZipFile(raw, "w", zipfile.ZIP_DEFLATED) as zf:
        for n, pair in enumerate(members):
            writer._write_deflated(zf, f"contacts/cards/p{n}.vcf", iter([pair]), STAMP)  # an iterator: streamed
    return raw.getvalue()


def put_whole(members: list[tuple[bytes, bytes]]) -> bytes:
    raw = io.BytesIO()
    with zipfile.ZipFile(raw, "w", zipfile.ZIP_DEFLATED) as zf:
        for n, pair in enumerate(members):
            writer._write_deflated(zf, f"contacts/cards/p{n}.vcf", [pair], STAMP)  # a list: put in whole
    return raw.getvalue()


def timed(step: Callable[[], bytes]) -> tuple[float, float]:
    wall, cpu = time.perf_counter(), time.process_time()
    step()
    return time.perf_counter() - wall, time.process_time() - cpu


def spread(values: list[float], unit: str = "x") -> str:
    return f"{statistics.median(values):.3f}{unit} ({min(values):.3f}-{max(values):.3f})"


def read_back(archive: Path, rounds: int) -> None:
    from exporters.archive import reader

    whole = reader.SMALL_MEMBER  # the limit `_verify` reads, set here per round
    runs: dict[str, list[tuple[float, float]]] = {"streamed": [], "whole": []}
    for _ in range(rounds):
        for name, limit in (("streamed", 0), ("whole", whole)):
            reader.SMALL_MEMBER = limit
            wall, cpu = time.perf_counter(), time.process_time()
            reader.verify_archive(archive)
            runs[name].append((time.perf_counter() - wall, time.process_time() - cpu))
    reader.SMALL_MEMBER = whole
    for index, what in ((1, "CPU"), (0, "wall")):
        ratios = [b[index] / a[index] for a, b in zip(runs["streamed"], runs["whole"], strict=True)]
        print(f"read-back, small members whole / streamed, {what}: {spread(ratios)} over {rounds} interleaved rounds")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--members", type=int, default=10_000)
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--read", type=Path, help="time the read-back check of this archive instead")
    args = parser.parse_args()
    if args.read:
        read_back(args.read, args.rounds)
        return
    members = cards(args.members)
    if through_open(members) != put_whole(members):
        raise SystemExit("the two ways wrote different bytes")
    runs: dict[str, list[tuple[float, float]]] = {"open": [], "whole": []}
    for _ in range(args.rounds):
        runs["open"].append(timed(lambda: through_open(members)))
        runs["whole"].append(timed(lambda: put_whole(members)))
    for name, values in runs.items():
        print(f"{name:>5}: CPU {spread([c for _, c in values], ' s')}, wall {spread([w for w, _ in values], ' s')}")
    for index, what in ((1, "CPU"), (0, "wall")):
        ratios = [b[index] / a[index] for a, b in zip(runs["open"], runs["whole"], strict=True)]
        print(f"whole / open, {what}: {spread(ratios)} over {args.rounds} interleaved rounds, {args.members} members")


if __name__ == "__main__":
    main()
