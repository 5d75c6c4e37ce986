"""What the parts of the independent check share: how work is split between processes, and how files are read.

`Share` and `Steps` let two processes check one archive and merge what they
found into the report one process gives (`exporters.archive.check`); `blocks`
cuts a vCard or iCalendar text at its components, and `ahead` reads a few of
them ahead, so that the memo (`exporters.archive.check_memo`) is asked about
many at once.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import TypeVar

# Cards or event groups looked up in the memo at once (one statement each).
LOOKUP_AHEAD = 256


@dataclass(frozen=True)
class Share:
    """The part of the work one process does: share `index` of `count` (0 of 1 is all of it)."""

    index: int = 0
    count: int = 1

    def owns(self, key: int) -> bool:
        return key % self.count == self.index


class Steps:
    """Numbers the points of one file's check in reading order, the same in every share.

    Each parse of a card or a calendar run takes one step, whichever share
    parses it, and the reading between two parses another: a problem is at the
    step it was met on, so the earliest over the shares is the one a single
    process would have stopped at.
    """

    def __init__(self) -> None:
        self.at = 0

    def tick(self) -> None:
        self.at += 1


_T = TypeVar("_T")


def ahead(items: Iterable[_T], size: int) -> Iterator[list[_T]]:
    """`items` in lists of up to `size` (to look them up at once); a reading error comes after the items before it.

    So the caller handles every item read before the error first, as it would
    one at a time: the same steps are taken before the same problem.
    """
    batch: list[_T] = []
    it = iter(items)
    while True:
        try:
            item = next(it)
        except StopIteration:
            break
        except Exception:
            if batch:
                yield batch
            raise
        batch.append(item)
        if len(batch) >= size:
            yield batch
            batch = []
    if batch:
        yield batch


def blocks(lines: Iterable[str], kind: str, *, frame: list[str] | None) -> Iterator[list[str]]:
    """Each `BEGIN:<kind>` ... `END:<kind>` block's lines; other top-level lines go to `frame`.

    With `frame` None nothing may stand between blocks but blank lines.
    """
    begin, end = f"BEGIN:{kind}", f"END:{kind}"
    block: list[str] | None = None
    for line in lines:
        bare = line.rstrip("\r\n")
        if block is None:
            if bare.upper() == begin:
                block = [line]
            elif frame is not None:
                frame.append(line)
            elif bare.strip():
                raise ValueError(f"unexpected line outside a {kind}: {bare[:60]!r}")
            continue
        block.append(line)
        if bare.upper() == end:
            yield block
            block = None
    if block is not None:
        raise ValueError(f"the file ends inside a {kind}")
