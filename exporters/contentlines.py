"""Fold content lines as vCard and iCalendar require, and collect one component's lines in order.

Why our own: RFC 6350 3.2 and RFC 5545 3.1 limit physical lines to 75 *octets*
and forbid splitting a multi-octet character, but vobject counts characters
(60 CJK characters come out as one 185-octet line) and never folds PHOTO.
Folding is the last step before bytes leave an exporter, so it is also where a
stray line break would corrupt the file: it refuses one instead of writing it.

One reader quirk is worked around: vobject with `allowQP=True`, as Radicale
runs it, takes a continuation line holding only whitespace for a blank line,
drops it and breaks the property there. So a fold is moved before the last
visible character when the next physical line would otherwise be blank; only a
whitespace run about a line long (70 octets or more) can still yield one.
"""

from __future__ import annotations

import re
from collections.abc import Iterator

MAX_OCTETS = 75
_SPACE = re.compile(r"\s")  # what str.isspace() counts as whitespace


def fold_line(line: str) -> bytes:
    """Encode one logical line as UTF-8 physical lines of at most 75 octets, each ending CRLF.

    Continuation lines start with one space, which counts towards their 75
    octets; unfolding (delete every CRLF followed by one space) gives the line
    back exactly. A fold never falls inside a UTF-8 sequence.
    """
    if "\r" in line or "\n" in line:
        raise ValueError("a content line cannot contain CR or LF: escape line breaks first")
    data = line.encode("utf-8")
    if len(data) <= MAX_OCTETS:
        return data + b"\r\n"
    if line.isascii() and not _SPACE.search(line):
        # The common long line (a base64 PHOTO): one octet per character and no blank
        # to move around, so the folds below fall every 75, then 74, octets.
        rest = range(MAX_OCTETS, len(data), MAX_OCTETS - 1)
        return b"\r\n ".join([data[:MAX_OCTETS], *(data[i : i + MAX_OCTETS - 1] for i in rest)]) + b"\r\n"
    chunks = []
    start, limit = 0, MAX_OCTETS
    while len(data) - start > limit:
        end = _char_start(data, start + limit)
        following = data[end : _char_start(data, end + MAX_OCTETS - 1)]
        if following.decode().isspace():
            visible = data[start:end].decode().rstrip()
            before_last = start + len(visible[:-1].encode())
            if before_last > start:  # the last visible character moves to the next line
                end = before_last
        if data[start:end].decode().isspace():
            # A continuation line of only blanks is read as an empty line by vobject
            # (and so by Radicale), which truncates or rejects the item. Going past 75
            # octets (a SHOULD in RFC 6350/5545) is the lesser evil: carry on to the
            # next visible character.
            match = re.compile(rb"\S").search(data, end)
            end = len(data) if match is None else _char_end(data, match.start())
        chunks.append(data[start:end])
        start, limit = end, MAX_OCTETS - 1  # the leading space takes one octet
    if start < len(data):
        chunks.append(data[start:])
    return b"\r\n ".join(chunks) + b"\r\n"


def _char_end(data: bytes, index: int) -> int:
    """The end of the character that starts at `index`."""
    index += 1
    while index < len(data) and data[index] & 0xC0 == 0x80:
        index += 1
    return index


def _char_start(data: bytes, index: int) -> int:
    """The start of the character at `index` (or the end of `data`)."""
    index = min(index, len(data))
    while index < len(data) and data[index] & 0xC0 == 0x80:  # a UTF-8 continuation byte
        index -= 1
    return index


class ContentLines:
    """One component's logical lines, BEGIN to END, in the order its library would write them.

    Why shared: the vCard and iCalendar writers both assemble lines themselves (see
    `exporters.vcard.writer` and `exporters.ical.lines`) and must order properties as
    vobject and icalendar did: the names in `first` in that order, then the rest
    sorted by name, lines of one name in the order added, subcomponents last.
    """

    __slots__ = ("first", "name", "props", "subs")

    def __init__(self, name: str, first: tuple[str, ...] = ()) -> None:
        self.name = name
        self.first = first
        self.props: dict[str, list[str]] = {}
        self.subs: list[ContentLines] = []

    def add_line(self, name: str, line: str) -> None:
        """Add a complete logical line (name, parameters and value) of property `name`."""
        self.props.setdefault(name, []).append(line)

    def add_component(self, sub: ContentLines) -> None:
        self.subs.append(sub)

    def lines(self) -> Iterator[str]:
        yield f"BEGIN:{self.name}"
        leading = [key for key in self.first if key in self.props]
        rest = sorted(key for key in self.props if key not in self.first)
        for key in leading + rest:
            yield from self.props[key]
        for sub in self.subs:
            yield from sub.lines()
        yield f"END:{self.name}"

    def to_bytes(self) -> bytes:
        """The component's bytes, each logical line folded by `fold_line`.

        Why not simply `fold_line` per line: almost every line of a VEVENT or vCard
        is shorter than 75 octets, and then `fold_line` only appends CRLF. Joining the
        lines and encoding once, then folding only the lines that are too long, gives
        the same bytes with a few C-level passes instead of a Python call per line
        (part of the iCalendar writer's gain, see `exporters.ical.writer`). A line
        holding CR or LF goes through `fold_line`, which refuses it.
        """
        lines = list(self.lines())
        text = "\r\n".join(lines)
        separators = len(lines) - 1  # each gives one CR and one LF: any more is inside a line
        if text.count("\r") != separators or text.count("\n") != separators:
            return b"".join(fold_line(line) for line in lines)
        data = text.encode("utf-8")
        parts = data.split(b"\r\n")
        if max(map(len, parts)) <= MAX_OCTETS:
            return data + b"\r\n"
        return b"".join(
            part + b"\r\n" if len(part) <= MAX_OCTETS else fold_line(line)
            for part, line in zip(parts, lines, strict=True)
        )
