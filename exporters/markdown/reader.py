"""Read a note back from the Markdown file `exporters.markdown.writer` wrote.

Why a parser of our own: it accepts exactly the YAML subset the writer emits
(double-quoted strings, booleans, one-line lists and mappings), so a restore
gives back the very same `Note` and never depends on how some YAML library
types `no` or `2009-10-01`. Anything else is refused with a message naming the
file and the line, rather than guessed at.
"""

from __future__ import annotations

import datetime as dt
import posixpath
import re
from collections.abc import Callable
from typing import Any
from urllib.parse import unquote

from account.records import Attachment, Note
from exporters.archive.paths import unsafe_path_reason

_KEY_LINE = re.compile(r"([a-z_]+):(?: (.*))?\Z")
_ITEM_LINE = re.compile(r"  - (.*)\Z")
_IDENT = re.compile(r"[a-z_]+")
_SIMPLE = {'"': '"', "\\": "\\", "/": "/", "n": "\n", "t": "\t", "r": "\r", "0": "\0",
           "a": "\a", "b": "\b", "e": "\x1b", "f": "\f", "v": "\v", " ": " ",
           "N": "\x85", "_": "\xa0", "L": "\u2028", "P": "\u2029"}  # fmt: skip
_HEX_LENGTH = {"x": 2, "u": 4, "U": 8}


class MarkdownError(ValueError):
    """A note file that this version of Lifeboat cannot read back."""


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


def split_front_matter(text: str) -> tuple[list[str], str]:
    """Return the front matter lines and the body that follows the closing `---`."""
    if not text.startswith("---\n"):
        raise MarkdownError("the file does not start with a '---' front matter line")
    end = text.find("\n---\n", 3)
    if end < 0:
        raise MarkdownError("the front matter has no closing '---' line")
    return text[4:end].split("\n") if end > 3 else [], text[end + 5 :]


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


def _text(fields: dict[str, Any], key: str, *, required: bool = False) -> str | None:
    value = fields.get(key)
    if value is None:
        if required:
            raise MarkdownError(f"the front matter has no {key!r}")
        return None
    if not isinstance(value, str):
        raise MarkdownError(f"front matter field {key!r} must be a quoted string")
    return value


def _flag(fields: dict[str, Any], key: str) -> bool:
    value = fields.get(key, False)
    if not isinstance(value, bool):
        raise MarkdownError(f"front matter field {key!r} must be true or false")
    return value


def _time(fields: dict[str, Any], key: str) -> dt.datetime | None:
    value = _text(fields, key)
    if value is None:
        return None
    try:
        parsed = dt.datetime.fromisoformat(value)
    except ValueError:
        raise MarkdownError(f"front matter field {key!r} is not an ISO 8601 time: {value!r}") from None
    # Canonical records hold aware UTC; a hand-edited naive time is taken as UTC.
    return parsed.replace(tzinfo=dt.UTC) if parsed.tzinfo is None else parsed.astimezone(dt.UTC)


def _attachment_path(md_path: str, link: str) -> str:
    try:
        relative = unquote(link, errors="strict")
    except UnicodeDecodeError:
        raise MarkdownError(f"attachment link {link!r} is not valid percent-encoded UTF-8") from None
    reason = unsafe_path_reason(relative)
    if reason is not None:
        raise MarkdownError(f"attachment link {link!r} is unsafe: {reason}")
    folder = posixpath.dirname(md_path)
    return f"{folder}/{relative}" if folder else relative


def _attachments(fields: dict[str, Any], md_path: str, open_member: Callable[[str], bytes]) -> tuple[Attachment, ...]:
    entries = fields.get("attachments", [])
    if not isinstance(entries, list):
        raise MarkdownError("front matter field 'attachments' must be a list")
    result = []
    for entry in entries:
        if not isinstance(entry, dict) or not all(
            isinstance(entry.get(key), str) for key in ("file", "name", "media_type")
        ):
            raise MarkdownError("each attachment needs quoted 'file', 'name' and 'media_type'")
        try:
            data = open_member(_attachment_path(md_path, entry["file"]))
        except KeyError:
            raise MarkdownError(f"attachment {entry['file']!r} is missing") from None
        result.append(Attachment(filename=entry["name"], media_type=entry["media_type"], data=data))
    return tuple(result)


def read_note(md_path: str, md_bytes: bytes, open_member: Callable[[str], bytes]) -> Note:
    """Rebuild the exact `Note` from its `.md` file; `open_member` fetches attachment bytes.

    `open_member` gets archive paths (`notes/Home/x.assets/a.png`) and should
    raise `KeyError` for a missing member. Errors name `md_path`.
    """
    try:
        text = md_bytes.decode("utf-8")
        lines, body = split_front_matter(text)
        fields = parse_front_matter(lines)
        tags = fields.get("tags", [])
        if not isinstance(tags, list) or not all(isinstance(tag, str) for tag in tags):
            raise MarkdownError("front matter field 'tags' must be a list of quoted strings")
        return Note(
            id=_text(fields, "id", required=True) or "",
            title=_text(fields, "title", required=True) or "",
            body=body,
            notebook=_text(fields, "notebook"),
            tags=tuple(tags),
            pinned=_flag(fields, "pinned"),
            archived=_flag(fields, "archived"),
            attachments=_attachments(fields, md_path, open_member),
            created=_time(fields, "created"),
            updated=_time(fields, "updated"),
        )
    except UnicodeDecodeError as exc:
        raise MarkdownError(f"{md_path}: not UTF-8 text ({exc.reason} at byte {exc.start})") from None
    except MarkdownError as exc:
        raise MarkdownError(f"{md_path}: {exc}") from None
