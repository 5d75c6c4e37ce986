"""Safe, unique archive paths from whatever users type as titles and folder names.

Why this exists: an archive is only useful if it unpacks everywhere. A note
titled `../../etc/passwd`, `CON`, `a: b?` or 300 emoji must become a file name
that Windows, macOS and Linux all accept, that stays inside its folder, and that
does not silently overwrite another note when the file system ignores case
(`Shopping list` vs `shopping LIST`) or Unicode normalisation. The original
text is never lost: exporters keep it inside the file (front matter, FN, ...),
so the name only has to be safe and unique, not reversible.
"""

from __future__ import annotations

import functools
import re
import unicodedata
from collections.abc import Sequence
from pathlib import Path
from typing import Protocol

from exporters.archive.spool import SpillingKeys

MAX_COMPONENT_BYTES = 120  # well under the 255-byte limits, leaves room for deep folders

# Characters Windows forbids in names, plus the path separators.
_FORBIDDEN = frozenset('<>:"/\\|?*')
# Bidirectional controls let `gnp.exe` display as `exe.png`; line separators
# break listings. Other format characters (ZWJ in emoji) are harmless and kept.
_INVISIBLE_TROUBLE = frozenset(
    "\u061c\u200e\u200f\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069\u2028\u2029\ufeff"
)
_RESERVED_BASES = frozenset(
    ["CON", "PRN", "AUX", "NUL", "CONIN$", "CONOUT$"]
    + [f"{p}{d}" for p in ("COM", "LPT") for d in "0123456789\u00b9\u00b2\u00b3"]
)
_EXTENSION = re.compile(r"\.[A-Za-z0-9][A-Za-z0-9_-]{0,15}\Z")


class KeySet(Protocol):
    """The part of `set[str]` that path bookkeeping uses; `exporters.archive.spool.SpoolKeys` keeps it on disk."""

    def __contains__(self, key: object, /) -> bool: ...
    def add(self, key: str, /) -> None: ...


def _bad_char(ch: str) -> bool:
    return is_forbidden_char(ch) or is_invisible_char(ch)


def is_forbidden_char(ch: str) -> bool:
    """Tell whether `ch` is one Windows forbids in names, or a path separator (`< > : " / \\ | ? *`)."""
    return ch in _FORBIDDEN


def is_invisible_char(ch: str) -> bool:
    """Tell whether `ch` is a control, a bidirectional control, a line separator or a lone surrogate."""
    # Cc: C0/C1 controls and DEL; Cs: lone surrogates, which no file system can encode.
    return ch in _INVISIBLE_TROUBLE or unicodedata.category(ch) in ("Cc", "Cs")


# `_bad_char` as one character class, for `sanitize_component`'s hot path: Cc is exactly
# U+0000-U+001F and U+007F-U+009F, Cs exactly the surrogates (tests/unit/test_paths_bad_chars.py
# checks every code point against `_bad_char`). Why: a per-character generator was a quarter
# of a repeat export's CPU time (cProfile, 0.1x HEAVY, issue 15); one `re.sub` is ~10x faster.
_BAD_CHARS = re.compile(
    "[" + re.escape("".join(sorted(_FORBIDDEN | _INVISIBLE_TROUBLE))) + "\x00-\x1f\x7f-\x9f\ud800-\udfff]"
)


def is_reserved_windows_name(component: str) -> bool:
    """Tell whether Windows treats `component` as a device (`CON`, `nul.txt`, `COM1 .md`)."""
    base = component.split(".", 1)[0].rstrip(" ")
    return base.upper() in _RESERVED_BASES


def utf8_len(text: str) -> int:
    return len(text.encode("utf-8"))


def _truncate(text: str, max_bytes: int) -> str:
    """Cut `text` to at most `max_bytes` UTF-8 bytes without splitting a character."""
    if utf8_len(text) <= max_bytes:
        return text
    cut = text.encode("utf-8")[:max_bytes].decode("utf-8", errors="ignore")
    # Do not leave a joiner or combining mark dangling off a half-kept cluster.
    while cut and (cut[-1] == "\u200d" or unicodedata.combining(cut[-1])):
        cut = cut[:-1]
    return cut


def _tidy_ends(text: str) -> str:
    # Windows drops trailing dots and spaces (so `a.` and `a` collide); a leading
    # dot hides the file on macOS and Linux, where users would not find it.
    text = text.rstrip(". ")
    if text.startswith("."):
        text = "_" + text[1:]
    return text


# Why cached: every member path is sanitised again part by part when the writer checks it
# (`PathRegistry.add`), and the allocator checks the same suffixes and folder names for every
# file; half the calls of an export repeat an earlier one (issue 15). Pure, so safe to share.
@functools.lru_cache(maxsize=4096)
def sanitize_component(name: str, *, fallback: str = "untitled", max_bytes: int = MAX_COMPONENT_BYTES) -> str:
    """Turn any text into one path component that every desktop OS accepts.

    The result is NFC, non-empty, never `.` or `..`, has no forbidden or control
    characters, no trailing dot or space, is not a Windows device name and fits
    in `max_bytes` UTF-8 bytes. It is not unique: `PathAllocator` handles that.
    """
    text = unicodedata.normalize("NFC", name)
    text = _BAD_CHARS.sub("_", text)
    text = _tidy_ends(unicodedata.normalize("NFC", _truncate(text, max_bytes)))
    if not text.strip():
        text = fallback
    if is_reserved_windows_name(text):
        base, dot, rest = text.partition(".")
        text = f"{base.rstrip(' ')}_{dot}{rest}"
    text = _tidy_ends(_truncate(text, max_bytes))
    return text or fallback


def split_extension(filename: str) -> tuple[str, str]:
    """Split `report.final.PDF` into (`report.final`, `.PDF`); odd suffixes stay in the stem.

    Only a short alphanumeric suffix counts, so a sanitiser can keep it intact
    while shortening the stem and numbering duplicates (`photo (2).png`).
    """
    match = _EXTENSION.search(filename)
    if match is None or match.start() == 0:
        return filename, ""
    return filename[: match.start()], match.group()


@functools.lru_cache(maxsize=4096)  # parents and folder names repeat for every file (issue 15)
def collision_key(path: str) -> str:
    """The key under which two paths clash on a case- and normalisation-insensitive disk."""
    return unicodedata.normalize("NFC", unicodedata.normalize("NFC", path).casefold())


# Why a name was numbered (`PathAllocator.clash`).
SAME = "same"  # another item has exactly this name (as made safe)
CASE = "case"  # another item's name differs only in case or Unicode form


class PathAllocator:
    """Hand out archive paths that are safe and unique within one archive.

    Folders are shared: asking twice for the same original name under the same
    parent gives the same folder (all notes of notebook `Home` land together),
    while different originals that sanitise or case-fold alike get numbered
    folders. Files are exclusive: every request gets a fresh name, numbered
    `name (2).ext`, `name (3).ext`, ... on a clash. Files and folders share one
    namespace, so a note `X` (`X.md`) never collides with a notebook `X.md`.

    `clash(path)` says why a numbered name was numbered: `SAME` (another item has
    exactly this name, as made safe) or `CASE` (the names differ only in case or
    Unicode form, which Windows and macOS treat as one name), so the manifest's
    reason says what happened rather than both at once (user trial).
    """

    def __init__(self, *, scratch: Path | None = None) -> None:
        # Every name handed out, as its collision key: past a few thousand, on disk in `scratch`.
        self._taken: KeySet = SpillingKeys(folder=scratch)
        # And the hash of each exactly as handed out, so a clash can tell the same name from one that
        # differs only in case. Hashes in memory (about 60 bytes a name), not names on disk: a second
        # spilled set made a 150,000-name allocation 40% slower. Two names with one hash (odds about
        # n^2 / 2^65) would only make a case-only clash read "same name".
        self._exact: set[int] = set()
        # Why each numbered name was numbered: files until `clash` reads them, folders kept (notes share them).
        self._file_clashes: dict[str, str] = {}
        self._folder_clashes: dict[str, str] = {}
        self._folders: dict[tuple[str, str], str] = {}
        # Where to resume numbering per (parent, stem, suffixes): without it the
        # thousandth "Untitled" note would retry 999 taken names first.
        self._next: dict[tuple[str, str, tuple[str, ...]], int] = {}

    def _join(self, parent: str, name: str) -> str:
        return f"{parent}/{name}" if parent else name

    def clash(self, path: str) -> str | None:
        """Why `path` (as a method here returned it) was numbered: `SAME`, `CASE`, or None when it was not."""
        return self._file_clashes.pop(path, None) or self._folder_clashes.get(path)

    def _first_free(
        self, parent: str, stem: str, suffixes: Sequence[str], fallback: str, max_bytes: int = MAX_COMPONENT_BYTES
    ) -> tuple[str, str | None]:
        """Pick the first `stem`, `stem (2)`, ... for which every `stem + suffix` is free (and fits `max_bytes`),
        and why it is numbered (`SAME`, `CASE`; None when it is not)."""
        for suffix in suffixes:
            if suffix and sanitize_component("x" + suffix) != "x" + suffix:
                raise ValueError(f"unsafe file name suffix {suffix!r}")
        # The number and the longest suffix are budgeted before cutting the stem.
        longest = max((utf8_len(s) for s in suffixes), default=0)
        full = sanitize_component(stem, fallback=fallback)
        counter = (collision_key(parent), collision_key(full), tuple(suffixes))
        number = self._next.get(counter, 1)
        why = None
        if number > 1:  # resumed: the unnumbered names were taken, by themselves or by ones differing in case
            room = min(max_bytes, MAX_COMPONENT_BYTES) - longest
            base = full if utf8_len(full) <= room else sanitize_component(stem, fallback=fallback, max_bytes=room)
            why = SAME if any(hash(self._join(parent, base + s)) in self._exact for s in suffixes) else CASE
        while True:
            marker = "" if number == 1 else f" ({number})"
            room = min(max_bytes, MAX_COMPONENT_BYTES) - longest - utf8_len(marker)
            base = sanitize_component(stem, fallback=fallback, max_bytes=room)
            names = [base + marker + suffix for suffix in suffixes]
            keys = [collision_key(self._join(parent, n)) for n in names]
            if not any(k in self._taken for k in keys):
                for key, name in zip(keys, names, strict=True):
                    self._taken.add(key)
                    self._exact.add(hash(self._join(parent, name)))
                # Most names are used once: no entry for that (one per file would grow with the
                # account); a second request finds the first's names taken and goes on to 2.
                if number > 1:
                    self._next[counter] = number + 1
                return base + marker, why
            if why is None:  # the unnumbered names are taken: by themselves, or by ones differing only in case
                why = SAME if any(hash(self._join(parent, n)) in self._exact for n in names) else CASE
            number += 1

    def folder(
        self, parent: str, name: str, *, fallback: str = "untitled", max_bytes: int = MAX_COMPONENT_BYTES
    ) -> str:
        """Return the shared folder for the original folder name `name` under `parent`."""
        known = self._folders.get((parent, name))
        if known is not None:
            return known
        stem, why = self._first_free(parent, name, [""], fallback, max_bytes)
        path = self._join(parent, stem)
        self._folders[(parent, name)] = path
        if why is not None:
            self._folder_clashes[path] = why
        return path

    def folders(self, parent: str, names: Sequence[str], *, fallback: str = "untitled") -> str:
        """Return the nested shared folder `parent/names[0]/names[1]/...`."""
        for name in names:
            parent = self.folder(parent, name, fallback=fallback)
        return parent

    def file(
        self, parent: str, filename: str, *, fallback: str = "untitled", max_bytes: int = MAX_COMPONENT_BYTES
    ) -> str:
        """Return a new unique path for a file called `filename`, keeping its extension."""
        stem, ext = split_extension(unicodedata.normalize("NFC", filename))
        free, why = self._first_free(parent, stem, [ext], fallback, max_bytes)
        return self._numbered(self._join(parent, free + ext), why)

    def stem(
        self,
        parent: str,
        title: str,
        suffixes: Sequence[str],
        *,
        fallback: str = "untitled",
        max_bytes: int = MAX_COMPONENT_BYTES,
    ) -> str:
        """Reserve `parent/<stem><suffix>` for every suffix at once and return `parent/<stem>`.

        Why several at once: a note and its attachment folder (`X.md`, `X.assets`)
        must carry the same number, or the pairing would be lost.
        """
        free, why = self._first_free(parent, title, suffixes, fallback, max_bytes)
        return self._numbered(self._join(parent, free), why)

    def _numbered(self, path: str, why: str | None) -> str:
        if why is not None:
            self._file_clashes[path] = why
        return path


_UNSAFE_SEGMENT = re.compile(r"[\x00-\x1f\x7f\\]")
# A path `unsafe_path_reason` finds nothing wrong with, in one C-level match (surrogates aside): segments of
# no controls, backslashes or slashes, none empty, "." or "..", the first not a drive letter's "X:".
_SAFE_PATH = re.compile(
    r"(?![A-Za-z]:)(?!\.\.?(?:/|\Z))[^/\x00-\x1f\x7f\\]+(?:/(?!\.\.?(?:/|\Z))[^/\x00-\x1f\x7f\\]+)*"
)
_DRIVE = re.compile(r"[A-Za-z]:")


def unsafe_path_reason(path: str) -> str | None:
    """Say why an archive member path could escape or break extraction, or None if it is fine.

    Used on both sides: the writer refuses such paths, and readers refuse
    archives containing them (a hostile zip must not write outside the target).
    """
    if _SAFE_PATH.fullmatch(path) and (path.isascii() or not _has_surrogate(path)):
        # Why a fast path: every check of an archive asks this of every member (15,000 at 1x HEAVY, several
        # times per export); the steps cost ~3x the match (tests/formats/test_member_paths.py holds them equal).
        return None
    return unsafe_path_steps(path)


def unsafe_path_steps(path: str) -> str | None:
    """`unsafe_path_reason` step by step, without its quick match: the reason a path is refused."""
    if not path:
        return "the path is empty"
    if path.startswith("/") or _DRIVE.match(path):
        return "the path is absolute"
    if _UNSAFE_SEGMENT.search(path):
        return "the path contains a backslash or a control character"
    for segment in path.split("/"):
        if segment in ("", ".", ".."):
            return f"the path has an empty, '.' or '..' segment ({segment!r})"
    try:
        path.encode("utf-8")
    except UnicodeEncodeError:
        return "the path is not valid Unicode"
    return None


def _has_surrogate(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return True
    return False


class PathRegistry:
    """Collect the paths written to one archive and say what is wrong with a new one.

    Why beyond `unsafe_path_reason`: a path can be harmless alone and still fail
    on extraction: a name Windows refuses, or `a.md` beside `A.md` (one
    overwrites the other on macOS and Windows), or a file `x` beside `x/y`.
    """

    def __init__(self, files: KeySet | None = None) -> None:
        # One key per file, so `files` may live on disk (a `SpoolKeys`); folders are few and stay here.
        self._files: KeySet = set() if files is None else files
        self._folders: set[str] = set()
        # Folder names found portable: the same few (`contacts`, `cards`, a notebook) lead every
        # path, so each is checked once per archive rather than once per file under it.
        self._portable_folders: set[str] = set()

    def add(self, path: str) -> str | None:
        """Record `path` and return None, or return why it cannot be written."""
        reason = unsafe_path_reason(path)
        if reason is not None:
            return reason
        *folders_of, name = path.split("/")
        for part in folders_of:
            if part not in self._portable_folders:
                if sanitize_component(part, max_bytes=255) != part:
                    return _not_portable(part)
                self._portable_folders.add(part)
        if sanitize_component(name, max_bytes=255) != name:
            return _not_portable(name)
        key = collision_key(path)
        parts = key.split("/")
        folders = ["/".join(parts[:i]) for i in range(1, len(parts))]
        # A known folder was checked not to be a file when it was recorded, and no
        # file is recorded under a known folder's name: only new folders need a look.
        new = [f for f in folders if f not in self._folders]
        if key in self._folders or any(f in self._files for f in new) or key in self._files:
            return "it clashes with another entry (names ignore case on some systems)"
        self._files.add(key)
        self._folders.update(new)
        return None


def _not_portable(part: str) -> str:
    return (
        f"{part!r} is not a name every system accepts (reserved, forbidden "
        "character, leading dot, trailing dot or space, too long, or not NFC)"
    )
