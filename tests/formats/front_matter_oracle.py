"""The front matter parser as it was before `exporters.markdown.reader` used PyYAML: an oracle for tests.

Why kept: the reader now parses front matter with PyYAML's loader (libyaml when
present) and checks the node styles itself. This is the previous hand-written
parser of exactly the subset the writer emits; for every note file the writer
produces, both must give the same fields (tests/formats/test_markdown.py), and
`bench/front_matter.py` times the two. Do not use it outside tests and bench/.
"""

from __future__ import annotations

import re
from typing import Any

from exporters.markdown.reader import MarkdownError

_KEY_LINE = re.compile(r"([a-z_]+):(?: (.*))?\Z")
_ITEM_LINE = re.compile(r"  - (.*)\Z")
_IDENT = re.compile(r"[a-z_]+")
_SIMPLE = {'"': '"', "\\": "\\", "/": "/", "n": "\n", "t": "\t", "r": "\r", "0": "\0",
           "a": "\a", "b": "\b", "e": "\x1b", "f": "\f", "v": "\v", " ": " ",
           "N": "\x85", "_": "\xa0", "L": "\u2028", "P": "\u2029"}  # fmt: skip
_HEX_LENGTH = {"x": 2, "u": 4, "U": 8}


class _Value:
    """Recursive-descent parser for one flow value on one line."""

    def __init__(self, text: str) -> None:
        self.text = text
        self.pos = 0

    def fail(self, what: str) -> MarkdownError:
        return MarkdownError(f"{what} at column {self.pos + 1}")

    def parse_all(self) -> Any:
        value = self.value()
        if self.pos != len(self.text):
            raise self.fail("unexpected text after the value")
        return value

    def value(self) -> Any:
        rest = self.text[self.pos :]
        if rest.startswith('"'):
            return self.string()
        if rest.startswith("["):
            return self.sequence()
        if rest.startswith("{"):
            return self.mapping()
        for word, result in (("true", True), ("false", False), ("null", None)):
            if rest.startswith(word):
                self.pos += len(word)
                return result
        raise self.fail("expected a quoted string, list, mapping, true or false")

    def string(self) -> str:
        out: list[str] = []
        self.pos += 1
        text = self.text
        while True:
            end = self.pos
            while end < len(text) and text[end] not in '"\\':
                end += 1
            out.append(text[self.pos : end])
            if end >= len(text):
                self.pos = end
                raise self.fail("unterminated string")
            self.pos = end + 1
            if text[end] == '"':
                return "".join(out)
            out.append(self.escape())

    def escape(self) -> str:
        code = self.text[self.pos : self.pos + 1]
        if code in _SIMPLE:
            self.pos += 1
            return _SIMPLE[code]
        length = _HEX_LENGTH.get(code)
        digits = self.text[self.pos + 1 : self.pos + 1 + (length or 0)]
        if length is None or len(digits) != length or not re.fullmatch(r"[0-9A-Fa-f]+", digits):
            raise self.fail(f"bad escape \\{code}")
        self.pos += 1 + length
        number = int(digits, 16)
        if number > 0x10FFFF:
            raise self.fail(f"escape \\{code}{digits} is beyond Unicode")
        return chr(number)

    def separator(self, closing: str) -> bool:
        """Consume `, ` and return True, or the closing bracket and return False."""
        if self.text.startswith(", ", self.pos):
            self.pos += 2
            return True
        if self.text.startswith(closing, self.pos):
            self.pos += 1
            return False
        raise self.fail(f"expected ', ' or '{closing}'")

    def sequence(self) -> list[Any]:
        self.pos += 1
        items: list[Any] = []
        if self.text.startswith("]", self.pos):
            self.pos += 1
            return items
        while True:
            items.append(self.value())
            if not self.separator("]"):
                return items

    def mapping(self) -> dict[str, Any]:
        self.pos += 1
        result: dict[str, Any] = {}
        while True:
            match = _IDENT.match(self.text, self.pos)
            if match is None or not self.text.startswith(": ", match.end()):
                raise self.fail("expected 'key: ' in a mapping")
            if match.group() in result:
                raise self.fail(f"duplicate key {match.group()!r}")
            self.pos = match.end() + 2
            result[match.group()] = self.value()
            if not self.separator("}"):
                return result


def parse_front_matter(lines: list[str]) -> dict[str, Any]:
    """Parse the front matter subset into plain Python values."""
    fields: dict[str, Any] = {}
    list_key: str | None = None
    for number, line in enumerate(lines, start=2):
        try:
            item = _ITEM_LINE.match(line)
            if item is not None and list_key is not None:
                fields[list_key].append(_Value(item.group(1)).parse_all())
                continue
            match = _KEY_LINE.match(line)
            if match is None:
                raise MarkdownError("expected 'key: value'")
            key, raw = match.groups()
            if key in fields:
                raise MarkdownError(f"duplicate key {key!r}")
            list_key = key if raw is None else None
            fields[key] = [] if raw is None else _Value(raw).parse_all()
        except MarkdownError as exc:
            raise MarkdownError(f"line {number}: {exc}") from None
    return fields
