"""Write each note as a Markdown file with YAML front matter, attachments beside it.

Why this shape: one `.md` per note under its notebook folders is what Obsidian
and every text editor open directly, and front matter is where those tools look
for title and tags. Everything a restore needs and a file name cannot carry
(the exact title, notebook, id, attachment names and media types) goes into the
front matter; the body follows the closing `---` byte for byte and is never
touched, not even to add links to the attachments.

Why a hand-written YAML emitter rather than PyYAML's `CSafeDumper` (issue 12
asked; `bench/front_matter.py` shows it): no PyYAML setting gives today's bytes,
so switching would change every archive with such a note. With double-quoted
strings forced through a representer, flow lists and mappings, `allow_unicode`,
unbounded width and `sort_keys=False`, both libyaml's and the pure-Python
emitter still write
- `title: "\\U0001F600"` for a title holding 😀 (we write the character: any
  emoji or other character beyond U+FFFF is escaped by PyYAML),
- `"\\0"`, `"\\a"`, `"\\e"`, `"\\N"`, `"\\L"`, `"\\P"` for NUL, BEL, ESC, NEL,
  LS, PS (we write `\\x00`, `\\x07`, `\\x1B`, `\\x85`, `\\u2028`, `\\u2029`;
  the escape tables are fixed in libyaml's C and PyYAML's `Emitter`),
- `- {file: ...}` for each attachment (we indent it, `  - {file: ...}`; libyaml
  always writes a block sequence inside a mapping without indentation);
and it takes 12x our CPU time. The subset is tiny (double-quoted strings with
every risky character escaped, booleans, one-line lists and mappings), so no
title can change type (`yes`, `1e3`, `null`) or break a line; the reader parses
it with PyYAML and refuses anything outside it (`exporters.markdown.reader`).
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Sequence
from typing import NamedTuple
from urllib.parse import quote

from account.records import Note
from exporters.archive.paths import PathAllocator, utf8_len

NOTES_FOLDER = "notes"
ASSETS_SUFFIX = ".assets"
# Longest archive path, in UTF-8 bytes (never fewer than the UTF-16 units Windows counts).
# Why 180: Windows' classic MAX_PATH is 260 characters for the whole path, and an
# archive is usually extracted into a folder such as
# C:\Users\<name>\Downloads\lifeboat-<name>-<timestamp>\ (60-80 characters). Notebook
# folders may use 80 of it; names get at least MIN_NAME_BYTES however deep the notebook.
PATH_BUDGET = 180
FOLDER_BUDGET = 80
MIN_NAME_BYTES = 24

_SIMPLE_ESCAPES = {'"': '\\"', "\\": "\\\\", "\n": "\\n", "\t": "\\t", "\r": "\\r"}
# Everything YAML does not count as printable, its extra line breaks (NEL,
# LS, PS), the byte-order mark, and lone surrogates, which UTF-8 cannot carry.
_NEEDS_ESCAPE = re.compile('["\\\\\x00-\x1f\x7f-\x9f\u2028\u2029\ufeff\ud800-\udfff\ufffe\uffff]')
_LONE_SURROGATE = re.compile("[\ud800-\udfff]")


def _escape_char(match: re.Match[str]) -> str:
    ch = match.group()
    simple = _SIMPLE_ESCAPES.get(ch)
    if simple is not None:
        return simple
    code = ord(ch)
    return f"\\x{code:02X}" if code <= 0xFF else f"\\u{code:04X}"


def yaml_string(text: str) -> str:
    """Quote any `str` as a YAML double-quoted scalar that reads back identically."""
    return '"' + _NEEDS_ESCAPE.sub(_escape_char, text) + '"'


def format_time(value: dt.datetime) -> str:
    """ISO 8601 in UTC with a `Z`; a naive value (not canonical) is taken as UTC."""
    utc = value.replace(tzinfo=dt.UTC) if value.tzinfo is None else value.astimezone(dt.UTC)
    return utc.isoformat().replace("+00:00", "Z")


def notebook_parts(notebook: str | None) -> list[str]:
    """Split a notebook into its nesting levels (`Work/Projects`), skipping empty ones."""
    if notebook is None:
        return []
    return [part for part in notebook.split("/") if part]


def _encode_body(body: str) -> bytes:
    try:
        return body.encode("utf-8")
    except UnicodeEncodeError:
        # Only non-canonical text has lone surrogates; UTF-8 cannot hold them,
        # so they become U+FFFD rather than failing the whole export.
        return _LONE_SURROGATE.sub("\ufffd", body).encode("utf-8")


def front_matter(note: Note, attachment_links: list[str]) -> str:
    """Render the front matter block, delimiters included.

    `attachment_links` are the URL-quoted paths of the attachments relative to
    the note's folder, in the order of `note.attachments`.
    """
    lines = ["---", f"title: {yaml_string(note.title)}", f"id: {yaml_string(note.id)}"]
    if note.notebook is not None:
        lines.append(f"notebook: {yaml_string(note.notebook)}")
    lines.append("tags: [" + ", ".join(yaml_string(tag) for tag in note.tags) + "]")
    lines.append(f"pinned: {'true' if note.pinned else 'false'}")
    lines.append(f"archived: {'true' if note.archived else 'false'}")
    if note.created is not None:
        lines.append(f"created: {yaml_string(format_time(note.created))}")
    if note.updated is not None:
        lines.append(f"updated: {yaml_string(format_time(note.updated))}")
    if note.attachments:
        lines.append("attachments:")
        for attachment, link in zip(note.attachments, attachment_links, strict=True):
            lines.append(
                f"  - {{file: {yaml_string(link)}, name: {yaml_string(attachment.filename)}, "
                f"media_type: {yaml_string(attachment.media_type)}}}"
            )
    lines.append("---")
    return "\n".join(lines) + "\n"


def _notebook_folder(notebook: str | None, paths: PathAllocator) -> str:
    """`notes/<level>/<level>/...`, each level shortened to fit `FOLDER_BUDGET`; levels that
    cannot fit at least `MIN_NAME_BYTES` are left out (the note lands in the deepest that
    fits). Nothing is lost: the front matter keeps the exact notebook for restores."""
    folder = paths.folder("", NOTES_FOLDER)
    for part in notebook_parts(notebook):
        room = FOLDER_BUDGET - utf8_len(folder) - 1
        if room < MIN_NAME_BYTES:
            break
        folder = paths.folder(folder, part, max_bytes=room)
    return folder


def note_files(note: Note, paths: PathAllocator) -> list[tuple[str, bytes]]:
    """Return `(archive path, bytes)` for the note's `.md` file and each attachment.

    The note lands at `notes/<notebook parts>/<title>.md`, its attachments in
    `<title>.assets/` beside it; `paths` keeps every name safe and unique across
    the whole archive (same titles, case-only differences, device names).
    """
    placed = note_paths(note.title, note.notebook, [a.filename for a in note.attachments], paths)
    files = [(path, attachment.data) for path, attachment in zip(placed.attachments, note.attachments, strict=True)]
    return [(placed.markdown, note_text(note, placed.links)), *files]


class NotePaths(NamedTuple):
    markdown: str  # archive path of the `.md` file
    attachments: tuple[str, ...]  # archive path of each attachment, in order
    links: tuple[str, ...]  # each attachment as the front matter links it (relative, URL-quoted)


def note_paths(title: str, notebook: str | None, attachments: Sequence[str], paths: PathAllocator) -> NotePaths:
    """Allocate a note's paths from what names them: its title, notebook and attachment file names.

    Why apart from the text: a repeat export that reuses a note's text still has to
    reserve its names in the same order as a full export, from a light query.
    """
    folder = _notebook_folder(notebook, paths)
    suffixes = [".md", ASSETS_SUFFIX] if attachments else [".md"]
    room = PATH_BUDGET - utf8_len(folder) - 1
    if attachments:  # leave the attachments' names room beside `<stem>.assets/`
        room -= utf8_len(ASSETS_SUFFIX) + 1 + MIN_NAME_BYTES - utf8_len(".md")
    stem = paths.stem(folder, title, suffixes, fallback="Untitled", max_bytes=room)
    placed: list[str] = []
    links: list[str] = []
    for filename in attachments:
        room = PATH_BUDGET - utf8_len(stem + ASSETS_SUFFIX) - 1
        path = paths.file(stem + ASSETS_SUFFIX, filename, fallback="attachment", max_bytes=room)
        links.append(quote(path[len(folder) + 1 :], safe="/"))
        placed.append(path)
    return NotePaths(stem + ".md", tuple(placed), tuple(links))


def note_text(note: Note, links: Sequence[str]) -> bytes:
    """The `.md` file's bytes: front matter (linking the attachments at `links`) and the body."""
    return front_matter(note, list(links)).encode("utf-8") + _encode_body(note.body)
