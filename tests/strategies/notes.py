"""Hypothesis strategies for canonical `Note` records with hostile names and bodies.

Why a pool of known-bad names on top of random text: random Unicode rarely hits
`CON`, `..` or two titles that differ only in case, and those are exactly what
breaks archives on Windows and macOS. The body is the one field kept byte for
byte (CR, control characters, text that looks like front matter), so it gets
its own, wider strategy.
"""

from __future__ import annotations

import datetime as dt
import functools

from hypothesis import strategies as st

from account.records import Attachment, Note
from tests.strategies.text import hostile_line, hostile_text, identifiers, optional

# Names that a file system or an archive tool treats specially.
HOSTILE_NAMES = [
    "..", ".", "...", "../../etc/passwd", "/etc/passwd", "C:\\Windows", "\\\\server\\share",
    "CON", "con", "Con.txt", "PRN.md", "AUX", "NUL.tar.gz", "COM1", "com9.md", "LPT1",
    "COM\u00b9", "CONIN$", "nul .txt", "a.", "a ", " ", "trailing. . ", ".hidden",
    "Shopping list", "shopping LIST", "SHOPPING list", "Shopping list (2)", "ß", "SS", "ss",
    "e\u0301", "\u00e9", "\u0130", "i\u0307", "\u01c5", "x" * 300, "日本語" * 60,
    "👩‍👩‍👧" * 30, "a<b>c:d\"e|f?g*h", "tab\there", "new\nline", "\u202egnp.exe",
    "x.assets", "note.md", "",
]  # fmt: skip


@functools.cache
def names(min_size: int = 0) -> st.SearchStrategy[str]:
    """A title, notebook level or file name: a known troublemaker or hostile text."""
    pool = st.sampled_from([n for n in HOSTILE_NAMES if len(n) >= min_size])
    return pool | hostile_line(min_size=min_size) | hostile_text(min_size=min_size)


@functools.cache
def bodies() -> st.SearchStrategy[str]:
    """Markdown bodies, kept byte for byte: CR, controls, fake front matter, no final newline.

    Canonical bodies have no U+0000 (the NUL rule makes it U+FFFD on the way in).
    """
    any_text = st.text(st.characters(blacklist_categories=["Cs"], blacklist_characters="\x00"), max_size=60)
    tricky = st.sampled_from(
        [
            "",
            "---\n",
            "---\ntitle: fake\n---\nbody\n",
            "\n---\n",
            "line one\r\nline two\r\n",
            "no final newline",
            "\ufeffBOM first",
            "\r",
            "---",
        ]
    )
    parts = st.lists(tricky | hostile_text() | any_text, max_size=4).map("".join)
    return parts


@functools.cache
def notebooks() -> st.SearchStrategy[str | None]:
    """None or a `/`-nested notebook whose levels are hostile names."""
    nested = st.lists(names(), min_size=1, max_size=4).map("/".join)
    return optional(nested | names(min_size=1))


@functools.cache
def utc_times() -> st.SearchStrategy[dt.datetime | None]:
    return st.none() | st.datetimes(timezones=st.just(dt.UTC))


@functools.cache
def attachments() -> st.SearchStrategy[Attachment]:
    # A small pool of file names makes duplicates within one note likely.
    filenames = st.sampled_from(["pixel.png", "Pixel.PNG", "CON.png", ".env", "a"]) | names()
    return st.builds(
        Attachment,
        filename=filenames,
        media_type=st.sampled_from(
            [
                "image/png",
                "application/pdf",
                "text/plain; charset=utf-8",
                "application/octet-stream",
            ]
        ),
        data=st.binary(max_size=64),
    )


@functools.cache
def notes() -> st.SearchStrategy[Note]:
    """Canonical notes (text fields without CR or controls) with hostile content."""
    return st.builds(
        Note,
        id=identifiers(hostile_line(min_size=1)),
        title=names(),
        body=bodies(),
        notebook=notebooks(),
        tags=st.lists(hostile_line(min_size=1), max_size=4).map(tuple),
        pinned=st.booleans(),
        archived=st.booleans(),
        attachments=st.lists(attachments(), max_size=3).map(tuple),
        created=utc_times(),
        updated=utc_times(),
    )
