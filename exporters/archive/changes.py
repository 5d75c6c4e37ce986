"""What an export had to change: the manifest's `changes` section (issue 16, "no silent loss").

Why a section of its own: a user who finds `notes/a_ b_.md` where they wrote
"a: b?" must be able to see that the export renamed it and why, in the archive
itself and on the run's page, rather than guess. Every item the archive does not
carry exactly as the record had it is listed here with its kind, its id, what
changed and the reason; `count` says how many, and `summary` says "0 changes"
when there are none, so silence never stands for "nothing was checked".

What is listed today is where the export alters things for canonical records:
file names. A contact's card, a calendar's `.ics`, a note's `.md`, its
notebook folders and its attachments are named from what the user typed, made
safe for every desktop system (forbidden characters replaced), shortened to
fit the path limit, or numbered when another item has the same name
(`exporters.archive.paths`, `exporters.markdown.writer`). Each entry says the
name as typed (`original`, cut short and with invisible characters written as
escapes, so README readers and terminals show it as it is) and one reason per
cause. The exact text stays inside the file (FN, X-WR-CALNAME, front matter),
which each entry says. The format writers carry every field of a canonical
record (the store holds only those, `account.canonical`); the fidelity drill
(`exporters.archive.drill`) checks that after each export rather than trusting
this list.

The section is built from names alone (a repeat export that reuses cached bytes
has the same names), so an archive is the same bytes with or without the cache.
It sits in manifest.json, so the service's signature covers it. `original` came
after the section did: an entry without it (an older archive) is still one.
"""

from __future__ import annotations

import json
import re
import unicodedata
import weakref
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from exporters.archive.paths import (
    CASE,
    SAME,
    is_forbidden_char,
    is_invisible_char,
    is_reserved_windows_name,
    sanitize_component,
    split_extension,
)
from exporters.archive.spool import BATCH, Spool, SpoolTable, iter_rows

SECTION = "changes"  # the manifest key
KINDS = ("contact", "calendar", "note", "attachment")
# What each kind keeps of its exact name inside the file, for the reason's second half.
_KEPT_IN = {
    "contact": "the card keeps the exact name (FN)",
    "calendar": "the file keeps the exact name (X-WR-CALNAME)",
    "note": "the front matter keeps the exact title",
    "attachment": "the note's front matter keeps the exact file name",
}
_NUMBERED = re.compile(r"(.*) \((\d+)\)\Z", re.DOTALL)
_HUGE = 1 << 20  # "no length limit" for `sanitize_component`
_ENTRY_KEYS = ("kind", "item", "field", "path", "reason")  # every entry has these
_OPTIONAL_KEYS = ("original",)  # entries of archives made since: the name as typed
ORIGINAL_SHOWN = 120  # characters of the name as typed an entry keeps
_GROUPS = ("contact", "calendar", "note")  # archive order; attachments go with their notes
_SCHEMA = "CREATE TABLE changes (grp INTEGER, text TEXT)"


@dataclass(frozen=True)
class Change:
    """One item the archive does not carry exactly as its record had it."""

    kind: str  # contact, calendar, note, attachment
    item: str  # the item's id: contact UID, calendar name, note id, "<note id>/<attachment name>"
    field: str  # what changed: "file name", "folder"
    path: str  # where the item is in the archive
    reason: str  # in the user's words
    original: str = ""  # the name as typed (`shown_name`); "" in entries of archives made before it

    def as_dict(self) -> dict[str, str]:
        keys = ("kind", "item", "field", "original", "path", "reason") if self.original else _ENTRY_KEYS
        return {key: getattr(self, key) for key in keys}

    def line(self) -> str:
        """One line for people: `note 1234: file name "a: b?" is now notes/a_ b_.md: characters ... replaced; ...`."""
        if not self.original:
            return f"{self.kind} {self.item}: {self.field} ({self.path}): {self.reason}"
        return f'{self.kind} {self.item}: {self.field} "{self.original}" is now {self.path}: {self.reason}'


def summary(count: int) -> str:
    return "0 changes: every item is carried exactly" if count == 0 else f"{count:,} change{'s' * (count != 1)}"


class ChangeLog:
    """The changes one export made, in archive order; `as_dict()` is the manifest's section.

    Kept per kind of data and joined in archive order (contacts, calendars,
    notes): a big export makes its notes before it places the calendars made in
    its second process (`jobs.export_split`), and the section must not depend on that.

    Why entries are kept encoded, and past `limit` on disk: an account whose
    generated or imported names repeat has a change per item (1x HEAVY: 14,628),
    and as Python objects a large account's list would cost what the archive's
    per-member bookkeeping no longer does (`exporters.archive.spool`). Each entry
    is kept as the JSON text manifest.json will hold, in memory while few, then
    in a `Spool` in `scratch`; the manifest streams them (`StreamedItems`). The
    first `keep` changes are also kept as objects, for the run's page.
    """

    def __init__(self, *, scratch: Path | None = None, limit: int = 4 * BATCH, keep: int = 20) -> None:
        self._scratch = scratch
        self._limit = limit
        self._keep = keep
        self._count = 0
        self._memory: dict[str, list[str]] = {group: [] for group in _GROUPS}
        self._first: dict[str, list[Change]] = {group: [] for group in _GROUPS}
        self._spool: Spool | None = None
        self._rows: SpoolTable | None = None

    def __len__(self) -> int:
        return self._count

    @property
    def items(self) -> list[Change]:
        """Every change, as objects (tests and small exports; a large one reads `encoded()`)."""
        return [Change(**json.loads(text)) for text in self.encoded()]

    def first(self, limit: int) -> list[Change]:
        """The first `limit` (at most `keep`) changes in archive order."""
        return [change for group in _GROUPS for change in self._first[group]][:limit]

    def add(self, change: Change) -> None:
        group = "note" if change.kind == "attachment" else change.kind
        self._count += 1
        if len(self._first[group]) < self._keep:
            self._first[group].append(change)
        text = encode_change(change)
        if self._rows is not None:
            self._rows.add((_GROUPS.index(group), text))
            return
        self._memory[group].append(text)
        if self._count > self._limit:
            self._spill()

    def _spill(self) -> None:
        spool = Spool(_SCHEMA, folder=self._scratch)
        weakref.finalize(self, spool.close)
        self._spool, self._rows = spool, spool.table("changes", 2)
        for group, texts in self._memory.items():
            for text in texts:
                self._rows.add((_GROUPS.index(group), text))
        self._memory = {group: [] for group in _GROUPS}

    def encoded(self) -> Iterator[str]:
        """Each change as manifest.json holds it (`encode_change`), in archive order."""
        if self._spool is None:
            for group in _GROUPS:
                yield from self._memory[group]
            return
        rows = self._spool.execute("SELECT text FROM changes ORDER BY grp, rowid")
        for (text,) in iter_rows(rows):
            yield text

    def close(self) -> None:
        """Let go of the spool (if it spilled); the log is empty of entries afterwards."""
        if self._spool is not None:
            self._spool.close()
            self._spool = self._rows = None

    def name(
        self, kind: str, item: str, original: str, placed: str, path: str, *, fallback: str, clash: str | None = None
    ) -> None:
        """Record a change if the file name `placed` is not `original` as typed.

        Both are stems (no `.vcf`/`.ics`/`.md`), except for attachments, whose
        names keep their own extension (split off here, as the allocator does).
        `clash`: why the allocator numbered it (`PathAllocator.clash`), if it did.
        """
        if placed == original:
            return
        typed = original
        if kind == "attachment":
            original_stem, ext = split_extension(unicodedata.normalize("NFC", original))
            if ext and placed.endswith(ext):
                original, placed = original_stem, placed[: -len(ext)]
        reason = rename_reason(original, placed, fallback=fallback, clash=clash, other=OTHER[kind]) or NFC_ONLY
        self.add(Change(kind, item, "file name", path, f"{reason}; {_KEPT_IN[kind]}", shown_name(typed)))

    def folder(
        self,
        item: str,
        notebook: str,
        wanted: Sequence[str],
        placed: str,
        path: str,
        clashes: Sequence[str | None] = (),
    ) -> None:
        """Record a change if a note's folder `placed` (under notes/) is not its notebook's levels `wanted`.

        `clashes`: why each level's folder was numbered, if it was (`PathAllocator.clash`), level by level.
        """
        got = placed.split("/")[1:]
        emptied = "/".join(wanted) != notebook  # `notebook_parts` leaves out empty levels: "/a//b/" is a/b
        if got == list(wanted) and not emptied:
            return
        reasons = ["empty levels left out (a / at either end or two in a row)"] if emptied else []
        if len(got) < len(wanted):
            reasons.append(f"only {len(got)} of its {len(wanted)} notebook levels fit the path limit")
        for level, (typed, name) in enumerate(zip(wanted, got, strict=False)):
            clash = clashes[level] if level < len(clashes) else None
            why = rename_reason(typed, name, fallback="untitled", clash=clash, other=OTHER["folder"])
            if why is not None and why not in reasons:
                reasons.append(why)
        reason = "; ".join(reasons) or "renamed"
        kept = "the front matter keeps the exact notebook"
        self.add(Change("note", item, "folder", path, f"{reason}; {kept}", shown_name(notebook)))

    def as_dict(self) -> dict[str, Any]:
        """The section: `items` last, streamed into manifest.json (and read back as a stream)."""
        return {"count": self._count, "summary": summary(self._count), "items": StreamedItems(self.encoded)}


class StreamedItems:
    """A JSON list too long to build: `Manifest.json_chunks` writes `source()`'s encoded items in its place."""

    def __init__(self, source: Callable[[], Iterable[str]]) -> None:
        self.source = source

    def __iter__(self) -> Iterator[str]:
        return iter(self.source())


def encode_change(change: Change) -> str:
    """A change as manifest.json holds it: `json.dumps(..., indent=2)` of its object, as an item of `items`.

    Why laid out here rather than by `json.dumps(..., indent=2)` itself: with an
    indent the json module uses its pure-Python encoder. Every export encodes
    every change (1x HEAVY: 14,628): 0.12 s CPU that way, 0.04 s with each value
    through the C encoder and the layout of a flat object of strings, the one
    `indent=2` gives, written here (tests/formats/test_manifest_changes.py holds
    the two equal).
    """
    fields = ",\n".join(f"  {_text(key)}: {_text(value)}" for key, value in change.as_dict().items())
    return "{\n" + fields + "\n}"


_text = json.JSONEncoder(ensure_ascii=False).encode  # one string, by the C encoder


NFC_ONLY = "written in composed Unicode form (NFC)"
NUMBERED = "numbered: another item has the same name (names ignore case on some systems)"  # why unknown
# What the other item is, per kind of change (`rename_reason`'s `other`).
OTHER = {
    "contact": "another contact",
    "calendar": "another calendar",
    "note": "another note",
    "attachment": "another attachment of this note",
    "folder": "another notebook",
}


def numbered_reason(clash: str | None, other: str, *, made_safe: bool = False) -> str:
    """Why a name got a number, in words that say what happened (`exporters.archive.paths.PathAllocator.clash`).

    Why apart: "another item has the same name (names ignore case on some systems)" was said of
    two notes both called "Plans" and of "Plans" beside "plans" alike, leaving the user to guess
    which (user trial). `made_safe`: the names met only once characters were replaced.
    """
    once = " once made safe" if made_safe else ""
    if clash == SAME:
        return f"numbered: same name as {other}{once}"
    if clash == CASE:
        return f"numbered: name differs only in case from {other}'s{once} (Windows and macOS take them for one name)"
    return NUMBERED


SHORTENED = "shortened to fit the path limits every system accepts"


def rename_reason(
    original: str, placed: str, *, fallback: str, clash: str | None = None, other: str = "another item"
) -> str | None:
    """Why the file name `placed` differs from the name typed, `original`; None when it does not.

    One reason per cause, in the order they were applied, joined by "; ". `clash` is why a
    numbered name was numbered (`PathAllocator.clash`), `other` what the other item is.
    """
    if placed == original:
        return None
    full = sanitize_component(original, fallback=fallback, max_bytes=_HUGE)
    base, numbered = placed, False
    match = _NUMBERED.match(placed)
    if match is not None and placed != full:
        base, numbered = match.group(1), True
    reasons = []
    if not original.strip():
        reasons.append(f"it has no name: named {fallback!r}")
    elif full != original:
        reasons += made_safe_reasons(original, fallback=fallback)
    if base != full:
        reasons.append(SHORTENED)
    if numbered:
        reasons.append(numbered_reason(clash, other, made_safe=full != original and bool(original.strip())))
    return "; ".join(reasons) or "renamed"


def made_safe_reasons(original: str, *, fallback: str) -> list[str]:
    """What `sanitize_component` did to `original` (a name with text in it), one reason per cause.

    It follows `exporters.archive.paths.sanitize_component`'s steps without its length limit:
    composed form, forbidden characters, invisible ones, the ends, Windows device names.
    """
    reasons = []
    text = unicodedata.normalize("NFC", original)
    if text != original:
        reasons.append(NFC_ONLY)
    forbidden = sorted({ch for ch in text if is_forbidden_char(ch)})
    if forbidden:
        listed = " ".join(forbidden)
        reasons.append(f"characters Windows does not allow in names ({listed}) replaced by _")
    if any(is_invisible_char(ch) for ch in text):
        reasons.append("control or invisible characters (such as a line break or a direction mark) replaced by _")
    text = "".join("_" if is_forbidden_char(ch) or is_invisible_char(ch) else ch for ch in text)
    tidied = text.rstrip(". ")
    if tidied != text and tidied.strip():
        reasons.append("dots or spaces at the end removed (Windows drops them)")
    if tidied.startswith("."):
        reasons.append("a dot at the start replaced by _ (it hides a file on macOS and Linux)")
        tidied = "_" + tidied[1:]
    if not tidied.strip():
        reasons.append(f"nothing usable was left of it: named {fallback!r}")
    elif is_reserved_windows_name(tidied):
        device = tidied.split(".", 1)[0].rstrip(" ")
        reasons.append(f"{device} is a device name on Windows: _ added")
    return reasons or ["made safe for every system"]


def shown_name(typed: str) -> str:
    """The name as typed, as an entry keeps it: at most `ORIGINAL_SHOWN` characters, "…" where cut, and
    controls, direction marks, line separators and lone surrogates written as escapes (`\\n`, `\\u202e`).

    Why escaped, not dropped: a name that is unsafe because of an invisible character
    must show that character, and README.txt and a terminal must not act on it
    (a U+202E turns the rest of a line around; a line break starts a line of its own).
    """
    cut = typed if len(typed) <= ORIGINAL_SHOWN else typed[: ORIGINAL_SHOWN - 1] + "…"
    return "".join(ch.encode("unicode_escape").decode("ascii") if is_invisible_char(ch) else ch for ch in cut)


def check_change(entry: Any, index: int) -> None:
    """Raise `ValueError` unless `entry` is one change (kind, item, field, path, reason: text)."""
    if not isinstance(entry, Mapping) or not all(isinstance(entry.get(key), str) for key in _ENTRY_KEYS):
        raise ValueError(f"changes.items[{index}] is not a change (kind, item, field, path, reason)")
    if not all(isinstance(entry.get(key, ""), str) for key in _OPTIONAL_KEYS):
        raise ValueError(f"changes.items[{index}].original is not text")


def check_section(section: Mapping[str, Any], listed: int | None) -> None:
    """Raise `ValueError` unless `section` (without its items, of which `listed` were read) is a changes section."""
    count = section.get("count")
    if type(count) is not int or count < 0:
        raise ValueError("changes.count is not a whole number")
    if listed != count:
        raise ValueError(f"changes lists {listed or 0} items, but its count says {count}")
    if not isinstance(section.get("summary"), str):
        raise ValueError("changes.summary is not text")


def count_of(meta: Mapping[str, Any]) -> int | None:
    """How many changes a parsed manifest's meta says the export made; None: made before the section existed."""
    section = meta.get(SECTION)
    if not isinstance(section, Mapping):
        return None
    count = section.get("count")
    return count if type(count) is int else None
