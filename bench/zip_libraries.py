"""Benchmark: our zip and manifest internals against stream-zip, stream-unzip and ijson (issue 12).

Why: issue 12 asks that the disk-backed zipfile internals (`exporters.archive.zipdir`)
and the incremental manifest parser (`exporters.archive.manifest`) move to maintained
libraries if they do as well: same or lower peak memory, equal or better speed,
byte-identical archives, and the verifier's checks still possible. This measures,
on an archive of N small members built as `bench/archive_members.py` builds them
(2/3 cards, 1/3 notes, plus README, SHA256SUMS and manifest.json):

- write: the members through `zipfile` with its member list spooled to disk
  (what `exporters.archive.writer` does) against `stream_zip` (ZIP_64, deflate
  level 6 as zipfile's default), and whether the bytes are the same;
- read: every member through `zipdir.central_directory` + `member_chunks`
  (CRC checked) against `stream_unzip` over the same file;
- manifest: `manifest.read_manifest` over manifest.json's bytes in 256 KiB
  pieces against `ijson` (yajl2_c backend): a single pass that keeps the head
  and streams "files" (what the reader needs), and `ijson.items(..., "files.item")`,
  which sees the file list only.

Each variant runs in a child process of its own (peak RSS is `ru_maxrss`), in
interleaved rounds; medians of CPU and wall seconds are printed. The libraries
are not dependencies of Lifeboat (docs/performance.md says why); install them
into the virtualenv to run this:

    .venv/bin/pip install stream-zip==0.0.84 stream-unzip==0.0.101 ijson==3.6.0
    .venv/bin/python bench/zip_libraries.py [--members 150000] [--rounds 3]
"""

from __future__ import annotations

import argparse
import json
import resource
import statistics
import subprocess
import sys
import tempfile
import time
import zipfile
import zlib
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

MB = 1_000_000
PIECE = 1 << 18
WHEN = (2026, 11, 25, 4, 0, 0)
VARIANTS = [
    "write: zipfile + spooled member list",
    "write: stream_zip",
    "read: zipdir (central directory, CRC)",
    "read: stream_unzip",
    "manifest: read_manifest",
    "manifest: ijson, one pass (head + files)",
    "manifest: ijson.items(files.item) only",
]


def rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024 / MB


def members(path: Path) -> Iterator[tuple[str, bytes]]:
    """The (name, bytes) of every member of the setup archive, in order, holding one at a time."""
    from exporters.archive.zipdir import central_directory, member_chunks

    with path.open("rb") as directory, path.open("rb") as f:
        for member in central_directory(directory):
            yield member.name, b"".join(member_chunks(f, member))


def pieces(path: Path) -> Iterator[bytes]:
    with path.open("rb") as f:
        while chunk := f.read(PIECE):
            yield chunk


def write_ours(source: Path, out: Path) -> None:
    from exporters.archive.spool import Spool
    from exporters.archive.zipdir import spool_members

    with out.open("wb") as raw, Spool("") as spool, zipfile.ZipFile(raw, "w", zipfile.ZIP_DEFLATED) as zf:
        spool_members(zf, spool)
        for name, data in members(source):
            info = zipfile.ZipInfo(name, WHEN)
            info.compress_type = zipfile.ZIP_DEFLATED
            info.external_attr = 0o644 << 16
            with zf.open(info, "w", force_zip64=True) as member:
                member.write(data)


def write_stream_zip(source: Path, out: Path) -> None:
    import datetime as dt

    from stream_zip import ZIP_64, stream_zip

    when = dt.datetime(*WHEN)
    files = ((name, when, 0o100644, ZIP_64, (data,)) for name, data in members(source))
    compress = lambda: zlib.compressobj(wbits=-zlib.MAX_WBITS, level=6)  # noqa: E731  (zipfile's default)
    with out.open("wb") as f:
        for chunk in stream_zip(files, get_compressobj=compress):
            f.write(chunk)


def read_ours(path: Path) -> int:
    from exporters.archive.zipdir import central_directory, member_chunks

    total = 0
    with path.open("rb") as directory, path.open("rb") as f:  # the directory is read as members are
        for member in central_directory(directory):
            for chunk in member_chunks(f, member):
                total += len(chunk)
    return total


def read_stream_unzip(path: Path) -> int:
    from stream_unzip import stream_unzip

    total = 0
    for _name, _size, chunks in stream_unzip(pieces(path)):
        for chunk in chunks:
            total += len(chunk)
    return total


def manifest_bytes(path: Path) -> Path:
    out = path.with_name("manifest.json")
    if not out.exists():
        with zipfile.ZipFile(path) as zf:
            out.write_bytes(zf.read("manifest.json"))
    return out


def manifest_ours(path: Path) -> int:
    from exporters.archive.manifest import read_manifest

    return len(read_manifest(pieces(manifest_bytes(path))).files)


class _Pieces:
    """A file-like `read(n)` over pieces, as ijson takes them."""

    def __init__(self, chunks: Iterable[bytes]) -> None:
        self._chunks = iter(chunks)
        self._buffer = b""

    def read(self, n: int = -1) -> bytes:
        if not self._buffer:
            self._buffer = next(self._chunks, b"")
        out, self._buffer = self._buffer[:n], self._buffer[n:]
        return out


def _build(first: tuple[str, Any], events: Iterator[tuple[str, str, Any]]) -> Any:
    import ijson

    builder = ijson.ObjectBuilder()
    builder.event(*first)
    depth = 1
    for _, event, value in events:
        builder.event(event, value)
        if event in ("start_map", "start_array"):
            depth += 1
        elif event in ("end_map", "end_array"):
            depth -= 1
            if depth == 0:
                break
    return builder.value


def manifest_ijson(path: Path) -> int:
    """One pass with ijson that does what `read_manifest` needs: the head as values, the files one by one."""
    import ijson

    from exporters.archive.manifest import FileTable, _add_file, _check_head

    files, seen, document = FileTable(), set[str](), dict[str, Any]()
    events = ijson.parse(_Pieces(pieces(manifest_bytes(path))), use_float=True)
    key = None  # no top-level key yet (the document's own start_map has prefix "")
    for prefix, event, value in events:
        if prefix == "" and event == "map_key":
            key = value
        elif prefix == "files" and event == "start_array":
            document["files"] = files
        elif prefix == "files.item" and event == "start_map":
            _add_file(files, seen, _build((event, value), events), len(files))
        elif prefix == key and event in ("start_map", "start_array"):
            document[key] = _build((event, value), events)
        elif prefix == key and key != "files":
            document[key] = value
    _check_head(document)
    return len(files)


def manifest_ijson_items(path: Path) -> int:
    import ijson

    from exporters.archive.manifest import FileTable, _add_file

    files, seen = FileTable(), set[str]()
    for index, raw in enumerate(ijson.items(_Pieces(pieces(manifest_bytes(path))), "files.item", use_float=True)):
        _add_file(files, seen, raw, index)
    return len(files)


def run_child(variant: str, source: Path) -> dict[str, Any]:
    import exporters.archive.manifest
    import exporters.archive.zipdir  # noqa: F401

    before = rss_mb()
    wall, cpu = time.perf_counter(), time.process_time()
    out = source.with_name(f"out-{VARIANTS.index(variant)}.zip")
    result: Any = None
    if variant.startswith("write: zipfile"):
        write_ours(source, out)
    elif variant.startswith("write: stream_zip"):
        write_stream_zip(source, out)
    elif variant.startswith("read: zipdir"):
        result = read_ours(source)
    elif variant.startswith("read: stream_unzip"):
        result = read_stream_unzip(source)
    elif variant == VARIANTS[4]:
        result = manifest_ours(source)
    elif variant == VARIANTS[5]:
        result = manifest_ijson(source)
    else:
        result = manifest_ijson_items(source)
    return {
        "wall": time.perf_counter() - wall,
        "cpu": time.process_time() - cpu,
        "peak_mb": rss_mb(),
        "imports_mb": before,
        "result": result,
        "size": out.stat().st_size if out.exists() else None,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--members", type=int, default=150_000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--workdir", type=Path, help="keep the setup archive here and reuse it")
    parser.add_argument("--child", nargs=2, metavar=("VARIANT", "ARCHIVE"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(run_child(args.child[0], Path(args.child[1]))))
        return
    try:
        import ijson
        import stream_unzip  # noqa: F401
        import stream_zip  # noqa: F401
    except ImportError as exc:
        sys.exit(f"{exc.name} is not installed; see this script's docstring")
    with tempfile.TemporaryDirectory() as tmp:
        folder = args.workdir or Path(tmp)
        folder.mkdir(parents=True, exist_ok=True)
        source = folder / "a.zip"
        if not source.exists():
            # In a child, so that the children measured later do not start from this process's peak.
            code = "import sys; from pathlib import Path; from bench.archive_members import write; "
            code += "write(int(sys.argv[1]), Path(sys.argv[2]))"
            subprocess.run([sys.executable, "-c", code, str(args.members), str(folder)], check=True, cwd=ROOT)
        runs: dict[str, list[dict[str, Any]]] = {v: [] for v in VARIANTS}
        for _ in range(args.rounds):
            for variant in VARIANTS:
                out = subprocess.run(
                    [sys.executable, __file__, "--child", variant, str(source)],
                    check=True,
                    capture_output=True,
                    text=True,
                ).stdout
                runs[variant].append(json.loads(out))
        ours, theirs = (source.with_name(f"out-{i}.zip").read_bytes() for i in (0, 1))
        same = ours == theirs
        with zipfile.ZipFile(source) as zf:
            count = len(zf.infolist())
    print(f"{count} members ({args.members} + README, SHA256SUMS, manifest.json), {args.rounds} interleaved rounds,")
    print(f"medians; each variant in a fresh process; Python {sys.version.split()[0]}, ijson {ijson.__version__}")
    print(f"({ijson.backend} backend)")
    print(f"{'variant':44} {'wall s':>7} {'CPU s':>7} {'peak MB':>8} {'imports':>8}  result")
    for variant, rs in runs.items():
        wall = statistics.median(r["wall"] for r in rs)
        cpu = statistics.median(r["cpu"] for r in rs)
        peak = statistics.median(r["peak_mb"] for r in rs)
        result = rs[0]["result"] if rs[0]["result"] is not None else f"{rs[0]['size'] / MB:.1f} MB zip"
        print(f"{variant:44} {wall:7.2f} {cpu:7.2f} {peak:8.1f} {rs[0]['imports_mb']:8.1f}  {result}")
    print(f"stream_zip's archive byte-identical to zipfile's: {same} ({len(theirs)} vs {len(ours)} bytes)")


if __name__ == "__main__":
    main()
