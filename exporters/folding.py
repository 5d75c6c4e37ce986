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

MAX_OCTETS = 75


def fold_line(line: str) -> bytes:
    """Encode one logical line as UTF-8 physical lines of at most 75 octets, each ending CRLF.

    Continuation lines start with one space, which counts towards their 75
    octets; unfolding (delete every CRLF followed by one space) gives the line
    back exactly. A fold never falls inside a UTF-8 sequence.
    """
    if "\r" in line or "\n" in line:
        raise ValueError("a content line cannot contain CR or LF: escape line breaks first")
    data = line.encode("utf-8")
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
        chunks.append(data[start:end])
        start, limit = end, MAX_OCTETS - 1  # the leading space takes one octet
    chunks.append(data[start:])
    return b"\r\n ".join(chunks) + b"\r\n"


def _char_start(data: bytes, index: int) -> int:
    """The start of the character at `index` (or the end of `data`)."""
    index = min(index, len(data))
    while index < len(data) and data[index] & 0xC0 == 0x80:  # a UTF-8 continuation byte
        index -= 1
    return index
