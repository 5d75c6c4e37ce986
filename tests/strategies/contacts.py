"""Hypothesis strategies for canonical `Contact` records with hostile text in every field.

Why the non-text fields are drawn from narrow pools: canonical form fixes their
shape (type tokens, `YYYY-MM-DD`/`--MM-DD` dates, UTC timestamps in whole
seconds, upper-case property names, lower-case media types), so the only room
for hostility is the free text, and that gets `hostile_text` everywhere.
"""

from __future__ import annotations

import datetime as dt
import functools

from hypothesis import strategies as st

from account.records import Address, Blob, Contact, Name, Typed
from exporters.vcard.writer import RESERVED_PROPERTIES
from tests.strategies.text import hostile_line, hostile_text, identifiers, optional

# `pref` is not a type in canonical form: it is `preferred=True`.
TYPE_TOKENS = ["home", "work", "cell", "fax", "voice", "internet", "other", "x-custom", "iphone",
               "main-number", "2nd_line", "x400", "dom", "intl", "postal", "parcel"]  # fmt: skip
MEDIA_TYPES = ["image/png", "image/jpeg", "image/gif", "image/webp", "image/svg+xml",
               "image/vnd.microsoft.icon", "application/octet-stream"]  # fmt: skip
EXTRA_NAMES = ["X-SPOUSE", "RELATED", "GENDER", "X-ABUID", "X-PHONETIC-FIRST-NAME", "TZ", "GEO",
               "KIND", "X-LIFEBOAT-OTHER", "X-1", "CLASS"]  # fmt: skip


@functools.cache
def some_text() -> st.SearchStrategy[str | None]:
    return optional(hostile_text(min_size=1))


@functools.cache
def type_tokens() -> st.SearchStrategy[tuple[str, ...]]:
    token = st.sampled_from(TYPE_TOKENS) | st.from_regex(r"[a-z0-9][a-z0-9_-]{0,8}", fullmatch=True)
    return st.lists(token.filter(lambda t: t != "pref"), max_size=3, unique=True).map(tuple)


@functools.cache
def typed() -> st.SearchStrategy[Typed]:
    return st.builds(Typed, value=hostile_text(min_size=1), types=type_tokens(), preferred=st.booleans())


@functools.cache
def names() -> st.SearchStrategy[Name | None]:
    """None, or a name with at least one part: an all-empty name is canonically None."""
    name = st.builds(
        Name,
        family=some_text(),
        given=some_text(),
        additional=some_text(),
        prefix=some_text(),
        suffix=some_text(),
    )
    return st.none() | name.filter(lambda n: any(vars(n).values()))


@functools.cache
def addresses() -> st.SearchStrategy[Address]:
    return st.builds(
        Address,
        types=type_tokens(),
        po_box=some_text(),
        extended=some_text(),
        street=some_text(),
        locality=some_text(),
        region=some_text(),
        postal_code=some_text(),
        country=some_text(),
        label=some_text(),
        preferred=st.booleans(),
    )


@functools.cache
def dates() -> st.SearchStrategy[str | None]:
    """YYYY-MM-DD, or --MM-DD for a year-less date (29 February included)."""
    full = st.dates().map(lambda d: f"{d.year:04d}-{d:%m-%d}")  # %Y does not pad years < 1000
    yearless = st.dates(dt.date(2000, 1, 1), dt.date(2000, 12, 31)).map(lambda d: f"--{d:%m-%d}")
    return st.none() | full | yearless


@functools.cache
def timestamps() -> st.SearchStrategy[dt.datetime | None]:
    instants = st.datetimes(dt.datetime(1, 1, 2), timezones=st.just(dt.UTC))
    return st.none() | instants.map(lambda d: d.replace(microsecond=0))


@functools.cache
def photos() -> st.SearchStrategy[Blob | None]:
    blob = st.builds(Blob, media_type=st.sampled_from(MEDIA_TYPES), data=st.binary(max_size=300))
    return st.none() | blob


@functools.cache
def extras() -> st.SearchStrategy[dict[str, str]]:
    """Other properties kept verbatim: any canonical single-line value, escapes and all."""
    generated = st.from_regex(r"X-[A-Z0-9][A-Z0-9-]{0,10}", fullmatch=True)
    name = st.sampled_from(EXTRA_NAMES) | generated
    value = hostile_line(min_size=0) | st.sampled_from([r"a\,b\;c\\n", "urn:uuid:1;x=y", ""])
    return st.dictionaries(name.filter(lambda n: n not in RESERVED_PROPERTIES), value, max_size=3)


@functools.cache
def contacts() -> st.SearchStrategy[Contact]:
    """A canonical contact; every optional field is sometimes absent, sometimes hostile."""
    return st.builds(
        Contact,
        uid=identifiers(),
        formatted_name=some_text(),
        name=names(),
        nickname=some_text(),
        organization=some_text(),
        department=some_text(),
        title=some_text(),
        role=some_text(),
        emails=st.lists(typed(), max_size=3).map(tuple),
        phones=st.lists(typed(), max_size=3).map(tuple),
        addresses=st.lists(addresses(), max_size=2).map(tuple),
        urls=st.lists(typed(), max_size=2).map(tuple),
        impps=st.lists(typed(), max_size=2).map(tuple),
        birthday=dates(),
        anniversary=dates(),
        categories=st.lists(hostile_text(min_size=1).filter(bool), max_size=4).map(tuple),
        note=some_text(),
        photo=photos(),
        extra=extras(),
        created=timestamps(),
        updated=timestamps(),
    )
