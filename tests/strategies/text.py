"""Hypothesis strategies for hostile text, already in canonical form.

Canonical text (see `account.records`) has no CR and no control characters
other than TAB and LF (so no U+0000: the NUL rule turns it into U+FFFD), and no
lone surrogates. Everything else a user could
type is fair game: the separators vCard and iCalendar escape (`;` `,` `\\` `:`),
quotes, emoji, right-to-left and combining marks, very long lines.

Why the factories here and in the other strategy modules are cached: composite
strategies (`events.events`, the edits in tests/formats/test_export_reuse.py)
call them for every value they draw, and each new strategy object is validated
and analysed by Hypothesis again before its first draw, which cost about a
quarter of such a property test's time. A cached factory returns the same,
immutable strategy for the same arguments, so what is drawn is unchanged.
Factories that take a drawn value (`events._like(start)`, `events.rrules(start)`)
are not cached: their arguments are unbounded.
"""

from __future__ import annotations

import functools

from hypothesis import strategies as st

# Characters that break naive writers, weighted in by `sampled_from`.
NASTY = [
    ";",
    ",",
    "\\",
    ":",
    '"',
    "'",
    "\n",
    "\t",
    " ",
    "=",
    "\u00a0",
    "\u200b",
    "\u202e",
    "\u2028",
    "\ufeff",
    "ß",
    "İ",
    "ǅ",
    "𝔘",
    "👩‍👩‍👧",
    "🎉",
    "שלום",
    "مرحبا",
    "日本語",
    "e\u0301",
    "---",
    "#",
    "*",
    "[",
    "]",
    "`",
    "..",
    "/",
]

_char = st.characters(blacklist_categories=("Cs", "Cc"))  # no surrogates, no C0/C1 controls ...
_fragment = _char | st.sampled_from(["\t", "\n"]) | st.sampled_from(NASTY)  # ... but TAB and LF


@functools.cache
def hostile_text(min_size: int = 0, max_size: int = 40) -> st.SearchStrategy[str]:
    """Any canonical text, biased towards separators and odd Unicode."""
    short = st.lists(_fragment, min_size=min_size, max_size=max_size).map("".join)
    long_line = st.builds(
        lambda s, n: s * n,
        st.lists(_fragment, min_size=1, max_size=3).map("".join),
        st.integers(min_value=100, max_value=400),
    )
    return st.one_of(short, short, short, long_line)


@functools.cache
def hostile_line(min_size: int = 1, max_size: int = 40) -> st.SearchStrategy[str]:
    """Canonical text without LF or TAB: titles, names, single-line properties."""
    return (
        hostile_text(min_size, max_size)
        .map(lambda s: s.replace("\n", " ").replace("\t", " "))
        .filter(lambda s: len(s) >= min_size)
    )


@functools.cache
def optional(strategy: st.SearchStrategy[str]) -> st.SearchStrategy[str | None]:
    """None (absent) or a non-empty value: canonical form has no empty optional strings."""
    return st.none() | strategy.filter(bool)


# A unique key (UID, note id, calendar name) must fit a PostgreSQL B-tree entry
# on every backend: `account.storable.KEY_BYTES`.
KEY_BYTES = 1000


def fit_bytes(value: str, limit: int = KEY_BYTES) -> str:
    """`value` cut to at most `limit` UTF-8 bytes, never inside a character."""
    return value.encode("utf-8")[:limit].decode("utf-8", "ignore")


@functools.cache
def identifiers(strategy: st.SearchStrategy[str] | None = None) -> st.SearchStrategy[str]:
    """Hostile, non-empty identifiers that any backend can index (at most `KEY_BYTES`)."""
    return (hostile_text(min_size=1) if strategy is None else strategy).map(fit_bytes).filter(bool)
