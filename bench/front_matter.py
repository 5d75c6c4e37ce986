"""Benchmark: YAML front matter of notes, hand-written against PyYAML, both directions (issue 12).

Why: issue 12 asks for hand-written code only where a measurement says so. The
notes' front matter has a hand-written emitter (`exporters.markdown.writer`) and
had a hand-written parser (kept as `tests/formats/front_matter_oracle.py`); the
reader now uses PyYAML. This times, on the notes of a generated HEAVY account
(`account.sample.HEAVY`, seed 2, as `bench/export_account.py` uses):

- write: `front_matter()` against `yaml.dump` with `CSafeDumper` set up as close
  to it as PyYAML allows (double-quoted strings through a representer, flow
  lists and attachment mappings, `allow_unicode`, unbounded width, keys in
  order), and how many notes come out with different bytes (and why);
- read: `exporters.markdown.reader.parse_front_matter` (PyYAML's `compose`
  with `CSafeLoader`, then the reader's own node checks), the same with the
  pure-Python `SafeLoader` it falls back to, and the previous hand-written parser.

Rounds are interleaved (each round runs every variant once, in turn) and
medians are reported, in wall-clock and CPU seconds of this process.

    .venv/bin/python bench/front_matter.py [--scale 1] [--rounds 5]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import yaml  # noqa: E402

from account.records import Attachment, Note  # noqa: E402
from account.sample import HEAVY, generate_account  # noqa: E402
from exporters.archive.paths import PathAllocator  # noqa: E402
from exporters.markdown import reader  # noqa: E402
from exporters.markdown.writer import format_time, front_matter, note_files  # noqa: E402
from tests.formats import front_matter_oracle  # noqa: E402

# Hostile values: each shows where PyYAML's double-quoted style differs from ours (or not).
PROBES = ["yes", "null", "1e3", "- dash", "a: b", "", "\x00", "\x07", "\x1b", "\x85", "\u2028", "\ufeff", "😀", "日本"]


class _Quoted(str):
    pass


class _FlowList(list[Any]):
    pass


class _FlowMap(dict[str, Any]):
    pass


class _Dumper(yaml.CSafeDumper):
    pass


_Dumper.add_representer(_Quoted, lambda d, v: d.represent_scalar("tag:yaml.org,2002:str", str(v), style='"'))
_Dumper.add_representer(_FlowList, lambda d, v: d.represent_sequence("tag:yaml.org,2002:seq", list(v), flow_style=True))
_Dumper.add_representer(_FlowMap, lambda d, v: d.represent_mapping("tag:yaml.org,2002:map", dict(v), flow_style=True))


def pyyaml_front_matter(note: Note, links: list[str]) -> str:
    """The closest PyYAML (libyaml's emitter) gets to `front_matter()`."""
    doc: dict[str, Any] = {"title": _Quoted(note.title), "id": _Quoted(note.id)}
    if note.notebook is not None:
        doc["notebook"] = _Quoted(note.notebook)
    doc["tags"] = _FlowList(_Quoted(t) for t in note.tags)
    doc["pinned"] = note.pinned
    doc["archived"] = note.archived
    if note.created is not None:
        doc["created"] = _Quoted(format_time(note.created))
    if note.updated is not None:
        doc["updated"] = _Quoted(format_time(note.updated))
    if note.attachments:
        doc["attachments"] = [
            _FlowMap(file=_Quoted(link), name=_Quoted(a.filename), media_type=_Quoted(a.media_type))
            for a, link in zip(note.attachments, links, strict=True)
        ]
    body = yaml.dump(doc, Dumper=_Dumper, allow_unicode=True, width=1 << 30, sort_keys=False, default_flow_style=False)
    return "---\n" + body + "---\n"


def probe_differences() -> list[str]:
    """Each probe title whose PyYAML front matter differs from ours, with both lines."""
    out = []
    for value in PROBES:
        note = Note(id="1", title=value, body="")
        ours, theirs = front_matter(note, []), pyyaml_front_matter(note, [])
        if ours != theirs:
            out.append(f"    title {value!r}: ours {ours.splitlines()[1]!r}, PyYAML {theirs.splitlines()[1]!r}")
    note = Note(id="1", title="t", body="", attachments=(Attachment("a.png", "image/png", b""),))
    ours, theirs = front_matter(note, ["t.assets/a.png"]), pyyaml_front_matter(note, ["t.assets/a.png"])
    if ours != theirs:
        out.append(f"    an attachment: ours {ours.splitlines()[-2]!r}, PyYAML {theirs.splitlines()[-2]!r}")
    return out


def clocked(fn: Callable[[], object]) -> tuple[float, float]:
    wall, cpu = time.perf_counter(), time.process_time()
    fn()
    return time.perf_counter() - wall, time.process_time() - cpu


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--scale", type=float, default=1.0, help="fraction of HEAVY (default 1)")
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()

    size = HEAVY.scaled(args.scale)
    notes = generate_account("bench@example.com", size, seed=2).notes
    paths = PathAllocator()
    cases: list[tuple[Note, list[str], str]] = []
    for note in notes:
        md = note_files(note, paths)[0][1].decode("utf-8")
        front, _ = reader.split_front_matter(md)
        links = [entry["file"] for entry in reader.parse_front_matter(front).get("attachments", [])]
        cases.append((note, links, front))
    fronts = [front for _, _, front in cases]
    lines = [front[:-1].split("\n") if front else [] for front in fronts]
    differ = sum(front_matter(n, links) != pyyaml_front_matter(n, links) for n, links, _ in cases)
    with_attachments = sum(bool(n.attachments) for n, _, _ in cases)

    def read_with(loader: type) -> Callable[[], object]:
        def run() -> object:
            reader._Loader = loader
            return [reader.parse_front_matter(f) for f in fronts]

        return run

    variants: dict[str, Callable[[], object]] = {
        "write: hand-written front_matter()": lambda: [front_matter(n, links) for n, links, _ in cases],
        "write: yaml.dump, CSafeDumper": lambda: [pyyaml_front_matter(n, links) for n, links, _ in cases],
        "read: reader (compose, CSafeLoader)": read_with(yaml.CSafeLoader),
        "read: reader (compose, SafeLoader)": read_with(yaml.SafeLoader),
        "read: previous hand-written parser": lambda: [front_matter_oracle.parse_front_matter(x) for x in lines],
        "read: yaml.load, CSafeLoader (no checks)": lambda: [yaml.load(f, Loader=yaml.CSafeLoader) for f in fronts],
    }
    times: dict[str, list[tuple[float, float]]] = {name: [] for name in variants}
    for _ in range(args.rounds):
        for name, fn in variants.items():
            times[name].append(clocked(fn))
    reader._Loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)

    print(f"Front matter of {len(cases)} notes (HEAVY x{args.scale:g}, seed 2; {with_attachments} with attachments)")
    print(f"{args.rounds} interleaved rounds, medians; Python {sys.version.split()[0]}, PyYAML {yaml.__version__}")
    print(f"{'variant':44} {'wall s':>8} {'CPU s':>8} {'us/note':>8}")
    medians = {}
    for name, runs in times.items():
        wall = statistics.median(w for w, _ in runs)
        cpu = statistics.median(c for _, c in runs)
        medians[name] = (wall, cpu)
        print(f"{name:44} {wall:8.3f} {cpu:8.3f} {1e6 * cpu / len(cases):8.1f}")
    base_w, base_c = medians["write: hand-written front_matter()"]
    w, c = medians["write: yaml.dump, CSafeDumper"]
    print(f"write: CSafeDumper / hand-written = {w / base_w:.1f}x wall, {c / base_c:.1f}x CPU")
    base_w, base_c = medians["read: previous hand-written parser"]
    for name in ("read: reader (compose, CSafeLoader)", "read: reader (compose, SafeLoader)"):
        w, c = medians[name]
        print(f"{name} / hand-written = {w / base_w:.2f}x wall, {c / base_c:.2f}x CPU")
    print(f"notes whose front matter PyYAML writes differently: {differ} of {len(cases)}")
    print("hostile values (and an attachment) PyYAML writes differently:")
    print("\n".join(probe_differences()) or "    none")


if __name__ == "__main__":
    main()
