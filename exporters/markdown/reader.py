"""Read a note back from the Markdown file `exporters.markdown.writer` wrote.

The front matter is parsed by PyYAML (libyaml's `CSafeLoader` when PyYAML was
built with it, the pure-Python `SafeLoader` otherwise) into nodes, not values:
the reader then takes only what the writer emits (double-quoted strings, the
plain words `true`, `false` and `null`, lists and mappings with lower-case keys)
and refuses anything else with a message naming the file and the line. So a
restore gives back the very same `Note` and never depends on how YAML 1.1
would type `no`, `1e3` or `2009-10-01`, and a hand-edited `title: yes` is an
error rather than a silent boolean. The previous hand-written parser of the
same subset is kept as a test oracle (tests/formats/front_matter_oracle.py);
`bench/front_matter.py` times both (docs/performance.md, "Front matter").
"""

from __future__ import annotations

import datetime as dt
import posixpath
import re
from collections.abc import Callable
from typing import Any
from urllib.parse import unquote

import yaml

from account.records import Attachment, Note
from errors import not_utf8
from exporters.archive.paths import unsafe_path_reason

# libyaml's loader is 14x faster than the pure-Python one (bench/front_matter.py); PyYAML's wheels include it.
_Loader: type[yaml.SafeLoader] = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


class MarkdownError(ValueError):
    """A note file that this version of Lifeboat cannot read back."""


def split_front_matter(text: str) -> tuple[str, str]:
    """Return the front matter (its lines, each ending in LF) and the body after the closing `---`."""
    if not text.startswith("---\n"):
        raise MarkdownError("the file does not start with a '---' front matter line")
    end = text.find("\n---\n", 3)
    if end < 0:
        raise MarkdownError("the front matter has no closing '---' line")
    return text[4 : end + 1], text[end + 5 :]


def parse_front_matter(front: str) -> dict[str, Any]:
    """Parse the front matter into plain Python values, refusing what the writer never emits."""
    try:
        node = yaml.compose(front, Loader=_Loader)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        where = f"line {mark.line + _FIRST_LINE}: " if mark is not None else ""
        raise MarkdownError(f"{where}{exc.problem or exc.context}") from None
    except yaml.YAMLError as exc:  # e.g. a character YAML does not allow in a stream
        raise MarkdownError(str(exc)) from None
    if node is None:
        return {}
    if not isinstance(node, yaml.MappingNode):
        raise _refuse(node, "expected 'key: value'")
    return _mapping(node, set())


_FIRST_LINE = 2  # the front matter starts on the file's second line, after '---'
_IDENT = re.compile(r"[a-z_]+\Z")
_STR = "tag:yaml.org,2002:str"
# The plain words taken, each with the tag YAML resolves it to (`key:` alone is null too).
_WORDS = {
    ("true", "tag:yaml.org,2002:bool"): True,
    ("false", "tag:yaml.org,2002:bool"): False,
    ("null", "tag:yaml.org,2002:null"): None,
    ("", "tag:yaml.org,2002:null"): None,
}


def _refuse(node: yaml.Node, what: str) -> MarkdownError:
    return MarkdownError(f"line {node.start_mark.line + _FIRST_LINE}: {what}")


def _value(node: yaml.Node, seen: set[int]) -> Any:
    # An alias makes two places share one node; refused so a few lines cannot expand exponentially.
    if id(node) in seen:
        raise _refuse(node, "anchors and aliases are not allowed")
    seen.add(id(node))
    if isinstance(node, yaml.ScalarNode):
        if node.style == '"' and node.tag == _STR:
            return node.value
        if not node.style and (node.value, node.tag) in _WORDS:  # plain: None, or "" from libyaml
            return _WORDS[node.value, node.tag]
        raise _refuse(node, "expected a quoted string, list, mapping, true or false")
    if isinstance(node, yaml.SequenceNode):
        return [_value(item, seen) for item in node.value]
    if isinstance(node, yaml.MappingNode):
        return _mapping(node, seen)
    raise _refuse(node, "expected a quoted string, list, mapping, true or false")


def _mapping(node: yaml.MappingNode, seen: set[int]) -> dict[str, Any]:
    seen.add(id(node))
    result: dict[str, Any] = {}
    for key_node, value_node in node.value:
        key = key_node.value
        if not isinstance(key_node, yaml.ScalarNode) or key_node.style or not _IDENT.match(key):
            raise _refuse(key_node, "expected 'key: value' with a lower-case key")
        if key in result:
            raise _refuse(key_node, f"duplicate key {key!r}")
        result[key] = _value(value_node, seen)
    return result


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


# The front matter fields a `Note` has (what `exporters.markdown.writer` writes); others have no place in it.
NOTE_FIELDS = frozenset({"id", "title", "notebook", "tags", "pinned", "archived", "attachments", "created", "updated"})


def read_note(md_path: str, md_bytes: bytes, open_member: Callable[[str], bytes]) -> Note:
    """Rebuild the exact `Note` from its `.md` file; `open_member` fetches attachment bytes.

    `open_member` gets archive paths (`notes/Home/x.assets/a.png`) and should
    raise `KeyError` for a missing member. Errors name `md_path`.
    """
    return read_note_and_unknown(md_path, md_bytes, open_member)[0]


def read_note_and_unknown(md_path: str, md_bytes: bytes, open_member: Callable[[str], bytes]) -> tuple[Note, list[str]]:
    """`read_note`, and the front matter fields the note has no place for (another program's), in file order."""
    try:
        text = md_bytes.decode("utf-8")
        front, body = split_front_matter(text)
        fields = parse_front_matter(front)
        tags = fields.get("tags", [])
        if not isinstance(tags, list) or not all(isinstance(tag, str) for tag in tags):
            raise MarkdownError("front matter field 'tags' must be a list of quoted strings")
        note = Note(
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
        return note, [str(key) for key in fields if key not in NOTE_FIELDS]
    except UnicodeDecodeError as exc:
        raise MarkdownError(f"{md_path}: {not_utf8('the note', exc.start)}") from None
    except MarkdownError as exc:
        raise MarkdownError(f"{md_path}: {exc}") from None
