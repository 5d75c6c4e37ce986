"""Hypothesis strategies for account JSON documents as users send them: not canonical at all.

Why documents rather than records: the import is where raw text meets the
rules, so these carry what a JSON file can hold and a database may not: U+0000,
lone surrogates (JSON's `\\ud800` escapes decode to them), other C0/C1 controls,
CR line breaks, values longer than a column, and now and then a structural or
semantic mistake, so that refusals are exercised as well as acceptances.
"""

from __future__ import annotations

import base64
import functools
from typing import Any

from hypothesis import strategies as st

from tests.strategies.text import hostile_text

# Characters that databases, YAML and Markdown treat specially, weighted in.
RAW = ["\x00", "\x00\x00", "\r\n", "\r", "\x07", "\x1b[31m", "\x7f", "\x85", "\u2028",
       "\ufffd", "\ufeff", "\ufffe", "\U0010ffff", "\t", "\n", "é", "👩‍👩‍👧"]  # fmt: skip
SURROGATES = ["\ud800", "\udfff", "\udbff"]
ZONES = ["Europe/Berlin", "UTC", "America/New_York", "Mars/Olympus", "Europe/Berlin\x00", ""]


@functools.cache
def raw_text(min_size: int = 0, max_size: int = 12, *, wild: bool = True) -> st.SearchStrategy[str]:
    """Any string a JSON file can hold, NUL and controls included, biased to trouble.

    `wild` text is sometimes refused: one draw in eight carries a lone surrogate.
    """
    char = st.characters(blacklist_categories=["Cs"]) | st.sampled_from(RAW)
    short = st.lists(char, min_size=min_size, max_size=max_size).map("".join)
    if not wild:
        return short | hostile_text(min_size=min_size, max_size=max_size)
    broken = st.builds(lambda a, s, b: a + s + b, short, st.sampled_from(SURROGATES), short)
    return st.one_of(*[short] * 6, broken, hostile_text(min_size=min_size, max_size=max_size))


@functools.cache
def long_text() -> st.SearchStrategy[str]:
    """Sometimes longer than a `VARCHAR(n)` column or a B-tree entry allows."""
    return st.builds(lambda s, n: s * n, raw_text(min_size=1, max_size=3), st.sampled_from([20, 70, 300, 1200]))


@functools.cache
def _text(wild: bool, min_size: int = 0) -> st.SearchStrategy[str]:
    text = raw_text(min_size, wild=wild)
    return st.one_of(*[text] * 8, long_text()) if wild else text


def _pick(wild: bool, good: list[Any], bad: list[Any]) -> st.SearchStrategy[Any]:
    """A value from `good`, or from `good + bad` when the document is a wild one."""
    return st.sampled_from(good + bad if wild else good)


def _optional(draw: st.DrawFn, doc: dict[str, Any], key: str, strategy: st.SearchStrategy[Any]) -> None:
    if draw(st.booleans()):
        doc[key] = draw(strategy)


@functools.cache  # see tests/strategies/text.py
@st.composite
def contacts(draw: st.DrawFn, wild: bool) -> dict[str, Any]:
    contact: dict[str, Any] = {"uid": draw(_text(wild, 1))}
    for key in ("formatted_name", "nickname", "organization", "note"):
        _optional(draw, contact, key, _text(wild))
    names = st.fixed_dictionaries({}, optional={"given": _text(wild), "family": _text(wild)})
    _optional(draw, contact, "name", names)
    types = st.lists(_pick(wild, ["home", "work"], ["wo rk", "home\x00"]), max_size=2)
    emails = st.lists(st.fixed_dictionaries({"value": _text(wild, 1)}, optional={"types": types}), max_size=2)
    _optional(draw, contact, "emails", emails)
    _optional(draw, contact, "birthday", _pick(wild, ["1980-02-29", "--12-24"], ["1980-02-30", "1980-02-28\x00"]))
    _optional(draw, contact, "extra", st.dictionaries(_pick(wild, ["X-A", "RELATED"], ["X-\x00", "N"]), _text(wild)))
    _optional(draw, contact, "photo", st.just({"media_type": "image/png", "data_base64": "iVBORw0KGgo="}))
    return contact


@functools.cache  # see tests/strategies/text.py
@st.composite
def events(draw: st.DrawFn, wild: bool) -> dict[str, Any]:
    event: dict[str, Any] = {"uid": draw(_text(wild, 1))}
    if not wild or draw(st.integers(0, 9)):  # now and then no start: a schema error
        zone = draw(_pick(wild, ["Europe/Berlin", "UTC", "America/New_York", ""], ["Mars/Olympus", "UTC\x00"]))
        start = {"datetime": "2009-10-05T09:00:00"} | ({"tz": zone} if zone else {})
        event["start"] = draw(st.just(start) | st.just({"date": "2009-10-05"}))
    for key in ("summary", "description", "location", "url"):
        _optional(draw, event, key, _text(wild))
    _optional(draw, event, "rrule", _pick(wild, ["FREQ=WEEKLY;COUNT=3"], ["FREQ=DAILY;X-A=\x00", "FREQ=SOMETIMES"]))
    _optional(draw, event, "categories", st.lists(_text(wild), max_size=2))
    role = _pick(wild, ["CHAIR", "req-participant"], ["two words", "CHAIR\x00", "X" * 70])
    attendee = st.fixed_dictionaries({"email": _text(wild, 1)}, optional={"name": _text(wild), "role": role})
    _optional(draw, event, "attendees", st.lists(attendee, max_size=2))
    trigger = _pick(wild, ["-PT15M", "P1D"], ["soon"])
    alarm = st.fixed_dictionaries({"trigger": trigger}, optional={"description": _text(wild)})
    _optional(draw, event, "alarms", st.lists(alarm, max_size=1))
    return event


@functools.cache  # see tests/strategies/text.py
@st.composite
def calendars(draw: st.DrawFn, wild: bool) -> dict[str, Any]:
    calendar: dict[str, Any] = {"name": draw(_text(wild, 1)), "events": draw(st.lists(events(wild), max_size=2))}
    _optional(draw, calendar, "color", _text(wild))
    _optional(draw, calendar, "description", _text(wild))
    return calendar


@functools.cache  # see tests/strategies/text.py
@st.composite
def notes(draw: st.DrawFn, wild: bool) -> dict[str, Any]:
    note: dict[str, Any] = {"id": draw(_text(wild, 1)), "title": draw(_text(wild)), "body": draw(_text(wild))}
    _optional(draw, note, "notebook", _text(wild))
    _optional(draw, note, "tags", st.lists(_text(wild), max_size=2))
    attachment = st.fixed_dictionaries(
        {
            "filename": _text(wild, 1),
            "media_type": _pick(wild, ["image/png", "text/plain"], ["image/png\x00", "image/" + "x" * 300]),
            "data_base64": st.binary(max_size=8).map(lambda b: base64.b64encode(b).decode()),
        }
    )
    _optional(draw, note, "attachments", st.lists(attachment, max_size=2))
    return note


@st.composite
def documents(draw: st.DrawFn) -> dict[str, Any]:
    """An account file's parsed JSON, always hostile; a "wild" one also carries values to refuse.

    Tame documents still hold U+0000, controls, CR and odd Unicode in every text
    field, so most of them exercise the NUL rule and are accepted.
    """
    wild = draw(st.booleans())
    valid = st.sampled_from(["same@example.com", "Other@Example.org"]) | st.emails()
    doc: dict[str, Any] = {
        "email": draw(st.one_of(valid, valid, raw_text()) if wild else valid),
        "contacts": draw(st.lists(contacts(wild), max_size=2, unique_by=lambda c: c["uid"])),
        "calendars": draw(st.lists(calendars(wild), max_size=2, unique_by=lambda c: c["name"])),
        "notes": draw(st.lists(notes(wild), max_size=2, unique_by=lambda n: n["id"])),
    }
    _optional(draw, doc, "display_name", _text(wild))
    _optional(draw, doc, "timezone", _pick(wild, ["Europe/Berlin", "UTC"], ["Mars/Olympus", "Europe/Berlin\x00"]))
    return doc
