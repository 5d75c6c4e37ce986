"""Benchmark: memory of `write_archive` per archive member (issue 2).

Why: a heavy account's archive has a member per contact and per note (15,000
at HEAVY, 150,000 at 10x), so anything the writer or its read-back
verification keeps per member grows with the account; the target is peak RSS
growing at most 1.5x when the data grows 10x. This writes N small synthetic
members the way `exporters.archive.layout` does (names from a `PathAllocator`:
2/3 `contacts/cards/<name>.vcf`, 1/3 `notes/<notebook>/<title>.md`, and a
layout listing the notes) through `jobs.export.write_verified`, each N in
fresh child processes:

- rss: one archive, peak RSS (`ru_maxrss`) and CPU seconds of the process;
- trace: one archive under `tracemalloc`, the traced peak, and the largest
  allocation sites when the archive is written and when it is verified.

    .venv/bin/python bench/archive_members.py [--sizes 15000,150000] [--top 6]

CPU here is not the export's: with tiny members and a flat heap, glibc hands the
~256 KiB each zlib compressor allocates back to the system after every member
and faults it in again for the next (run with MALLOC_TRIM_THRESHOLD_=268435456
to see CPU without that). A real export's heap is busy enough that this does
not happen; `bench/export_account.py` measures that.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import resource
import subprocess
import sys
import tempfile
import time
import tracemalloc
from collections.abc import Iterator
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

NOW = dt.datetime(2026, 11, 25, 4, 0, tzinfo=dt.UTC)
MB = 1_000_000
CARD = b"BEGIN:VCARD\r\nVERSION:3.0\r\nFN:%s\r\nEMAIL:someone@example.com\r\nTEL:+1 555 0100\r\nEND:VCARD\r\n"
NOTE = b'---\ntitle: "%s"\ncreated: 2024-01-01T00:00:00Z\n---\n\n' + b"Some text of the note.\n" * 3


def rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024 / MB  # KiB on Linux


def write(n: int, folder: Path) -> int:
    """Write an archive of `n` members (plus README, SHA256SUMS, manifest); return its size."""
    from exporters.archive.paths import PathAllocator
    from exporters.archive.writer import Entry
    from tests.archives import write_archive

    paths = PathAllocator()
    notes: list[str] = []
    cards = n * 2 // 3

    def entries() -> Iterator[Entry]:
        for i in range(cards):
            name = f"Firstname{i} Lastname{i % 977}"
            yield Entry(paths.stem("contacts/cards", name, [".vcf"]) + ".vcf", [CARD % name.encode()])
        for i in range(n - cards):
            title = f"Some note title number {i}"
            path = paths.stem(f"notes/Notebook {i % 40}", title, [".md"]) + ".md"
            notes.append(path)
            yield Entry(path, [NOTE % title.encode()])

    meta = {"user": "bench@example.com", "counts": {"contacts": cards, "notes": n - cards}}
    return write_archive(folder, "a.zip", entries(), meta, NOW, layout=lambda: {"notes": notes}).size


def measure_rss(n: int) -> dict[str, Any]:
    import jobs.export  # noqa: F401  (imports are not the archive's cost)

    before = rss_mb()
    started = time.process_time()
    with tempfile.TemporaryDirectory() as tmp:
        size = write(n, Path(tmp))
    return {
        "n": n,
        "archive_bytes": size,
        "rss_after_imports_mb": round(before, 1),
        "peak_rss_mb": round(rss_mb(), 1),
        "cpu_s": round(time.process_time() - started, 2),
    }


def measure_traced(n: int, top: int) -> dict[str, Any]:
    import jobs.export as archive

    snapshots: list[tuple[str, int, tracemalloc.Snapshot]] = []

    def take(label: str) -> None:
        snapshots.append((label, tracemalloc.get_traced_memory()[0], tracemalloc.take_snapshot()))

    verify = archive.verify_archive

    def watched(path: Path, **kw: Any) -> Any:
        take("written")
        manifest = verify(path, **kw)
        take("verified")
        return manifest

    archive.verify_archive = watched  # type: ignore[assignment]  # patched for this process only
    tracemalloc.start(1)
    with tempfile.TemporaryDirectory() as tmp:
        write(n, Path(tmp))
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    sites = {}
    for label, current, snapshot in snapshots:
        stats = snapshot.statistics("lineno")[:top]
        sites[f"{label} ({current / MB:.1f} MB)"] = [
            f"{s.size / MB:6.2f} MB {s.count:7d} blocks {s.traceback[0].filename.replace(str(ROOT), '')}:"
            f"{s.traceback[0].lineno}"
            for s in stats
        ]
    return {"n": n, "traced_peak_mb": round(peak / MB, 2), "bytes_per_member": round(peak / n), "sites": sites}


def child(n: int, kind: str, top: int) -> dict[str, Any]:
    out = subprocess.run(
        [sys.executable, __file__, "--child", str(n), kind, "--top", str(top)],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    return json.loads(out)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", default="15000,150000")
    parser.add_argument("--top", type=int, default=6)
    parser.add_argument("--child", nargs=2, metavar=("N", "KIND"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        n, kind = int(args.child[0]), args.child[1]
        print(json.dumps(measure_rss(n) if kind == "rss" else measure_traced(n, args.top)))
        return
    sizes = [int(s) for s in args.sizes.split(",")]
    rss = [child(n, "rss", args.top) for n in sizes]
    traced = [child(n, "trace", args.top) for n in sizes]
    for r, t in zip(rss, traced, strict=True):
        print(
            f"N={r['n']:>7}: peak RSS {r['peak_rss_mb']:6.1f} MB ({r['rss_after_imports_mb']} after imports), "
            f"CPU {r['cpu_s']:.2f} s; traced peak {t['traced_peak_mb']:.1f} MB ({t['bytes_per_member']} B/member)"
        )
        for label, lines in t["sites"].items():
            print(f"    largest when {label}:")
            for line in lines:
                print(f"      {line}")
    if len(sizes) >= 2:
        growth = rss[-1]["peak_rss_mb"] / rss[0]["peak_rss_mb"]
        traced_growth = traced[-1]["traced_peak_mb"] / traced[0]["traced_peak_mb"]
        print(
            f"{sizes[-1] / sizes[0]:g}x the members: peak RSS {growth:.2f}x, traced peak {traced_growth:.2f}x "
            "(target for a whole export: <= 1.5x)"
        )


if __name__ == "__main__":
    main()
