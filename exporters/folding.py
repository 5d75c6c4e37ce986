"""Fold one content line into physical lines, as vCard and iCalendar require.

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
