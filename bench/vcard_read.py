"""Benchmark: CPU of reading back a 1x HEAVY address book with `stream_vcards`, two checkouts interleaved.

Why: the fidelity drill reads every card of a first export back with our own
reader (issue 16), and contacts were about 1.3 s of its 6.25 s at 1x HEAVY.
This times the reader alone on the address book `account.sample.HEAVY` gives
(10,000 contacts, about 1 in 10 with a 20 KiB photo), written as the archive
writes it (`contact_to_vcard`, `--version`), in two shapes:

- file: the whole .vcf in 64 KiB pieces, as a zip member is decompressed;
- cards: one piece per card, as the drill's memo path hands them over;
- drill: the cards as the drill reads them now (`drill_memo.cards_read_back`):
  each straight from its bytes (`read_card`), a card it leaves read alone as a
  stream; a reader without `read_card` reads each batch of 1,000 as one stream,
  as the drill did before 2026-12-08.

Each `--code DIR` contributes its `exporters/vcard/reader.py`, loaded under a
name of its own into this one process (everything it imports comes from this
checkout), so the readers run in turns under the same load. Every round runs
each reader once per shape, in alternating order; the figure is CPU
(`time.process_time`) per read and the ratio first/other per round, median with
min-max. The contacts each reader gives are checked equal first.

    .venv/bin/python bench/vcard_read.py --code /work/main --code . [--rounds 7] [--scale 1] [--version 3.0]
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime as dt
import importlib.util
import random
import statistics
import sys
import time
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

PIECE = 1 << 16


def reader_of(code: Path, index: int) -> ModuleType:
    """`code`'s vCard reader as a module of its own (its imports resolve in this checkout)."""
    path = code / "exporters" / "vcard" / "reader.py"
    spec = importlib.util.spec_from_file_location(f"_bench_vcard_reader_{index}", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up
    spec.loader.exec_module(module)
    return module


def heavy_cards(scale: float, version: str) -> list[bytes]:
    """The cards of HEAVY x `scale`'s contacts, made as `generate_account` makes them (contacts come first)."""
    from account import sample
    from exporters.vcard.writer import contact_to_vcard

    size = dataclasses.replace(sample.HEAVY, contacts=round(sample.HEAVY.contacts * scale))
    rng = random.Random(1)
    base = dt.datetime(2009, 1, 1, tzinfo=dt.UTC)
    return [contact_to_vcard(sample._contact(rng, i, size, base), version) for i in range(size.contacts)]


def pieces(data: bytes) -> Iterator[bytes]:
    return (data[i : i + PIECE] for i in range(0, len(data), PIECE))


def cpu(stream: Callable[[Iterable[bytes]], Iterable[object]], pieces: Iterable[bytes]) -> float:
    """CPU seconds of reading every contact of `pieces` with `stream`."""
    start = time.process_time()
    for _ in stream(pieces):
        pass
    return time.process_time() - start


def drilled(reader: ModuleType) -> Callable[[Iterable[bytes]], Iterable[object]]:
    """How the drill reads the cards with `reader` (see "drill" above)."""
    if not hasattr(reader, "read_card"):

        def batches(cards: Iterable[bytes]) -> Iterator[object]:
            listed = list(cards)
            for at in range(0, len(listed), 1000):
                yield from reader.stream_vcards(listed[at : at + 1000])

        return batches

    def each(cards: Iterable[bytes]) -> Iterator[object]:
        for card in cards:
            found = reader.read_card(card)
            yield found if found is not None else next(iter(reader.stream_vcards([card])))

    return each


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--code", type=Path, action="append", required=True, help="a checkout (give two)")
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--scale", type=float, default=1.0)
    parser.add_argument("--version", default="3.0")
    args = parser.parse_args()
    readers = [reader_of(code.resolve(), i) for i, code in enumerate(args.code)]
    cards = heavy_cards(args.scale, args.version)
    data = b"".join(cards)
    shapes: dict[str, Callable[[], Iterable[bytes]]] = {
        "file": lambda: pieces(data),
        "cards": lambda: cards,
        "drill": lambda: cards,
    }

    def reading(name: str, reader: ModuleType) -> Callable[[Iterable[bytes]], Iterable[Any]]:
        return drilled(reader) if name == "drill" else reader.stream_vcards

    print(f"{len(cards)} cards, {len(data) / 1e6:.1f} MB, vCard {args.version}")
    for name, shape in shapes.items():
        results = [[(c.uid, c) for c in reading(name, r)(shape())] for r in readers]
        assert all(result == results[0] for result in results), f"the readers differ ({name})"
    times: dict[str, list[list[float]]] = {name: [[] for _ in readers] for name in shapes}
    for round_ in range(args.rounds):
        order = list(range(len(readers)))
        if round_ % 2:
            order.reverse()
        for name, shape in shapes.items():
            for i in order:
                times[name][i].append(cpu(reading(name, readers[i]), shape()))
    for name in shapes:
        per = times[name]
        print(f"{name}:")
        for code, runs in zip(args.code, per, strict=True):
            print(f"  {code}: median {statistics.median(runs):.3f} s CPU (min {min(runs):.3f}, max {max(runs):.3f})")
        for i in range(1, len(readers)):
            ratios = [a / b for a, b in zip(per[0], per[i], strict=True)]
            print(
                f"  {args.code[0]} / {args.code[i]}: {statistics.median(ratios):.2f}x "
                f"(min {min(ratios):.2f}, max {max(ratios):.2f}, {len(ratios)} rounds)"
            )


if __name__ == "__main__":
    main()
