"""A lean decoder for VEVENTs as Lifeboat's writer emits them, giving what icalendar's parser gives.

Why: restoring an archive spent most of its time in icalendar's parser (cProfile
of a restore at 0.1x HEAVY, 5,000 events: 15.2 of 37 s profiled in `_parse_lines`,
about 0.3 ms per VEVENT), almost none of it decoding values: it builds a
`Parameters` dictionary, a property factory and a typed instance for every
line. The reader (`exporters.ical.reader`) only asks a component for a few
things (`in`, `get`, `[]`, `subcomponents`) and each property for its text,
`.dt`, `.dts` or `.params`; this module builds exactly those from the lines.

Exact by construction, or not at all:

- TEXT properties (UID, SUMMARY, DESCRIPTION, LOCATION) take their value through
  icalendar's own `unescape_backslash`, as its parser does before `vText`;
- date and date-time properties are decoded only in the forms the writer emits
  (`20240102`, `20240102T030405`, with `Z` or an IANA `TZID`), by the rules of
  icalendar's `vDDDTypes` (a TZID is applied only to the names its parser
  applies it to; the reader keeps the wall time and the zone's name);
- every other property (RRULE, DURATION, TRIGGER, ATTENDEE, CATEGORIES,
  X-LIFEBOAT-*...) is parsed by icalendar itself, as a one-line component of the
  same kind, and kept by its line: such lines repeat from event to event;
- the parameters of a line are icalendar's own, parsed once per distinct
  property name and parameters (`DTSTART;TZID=Europe/Berlin`).

Anything else (a form the writer does not emit, a parameter with a backslash, a
repeated single property, a nested component other than VALARM, a line icalendar
would refuse) makes `decode` return None, and the caller parses the component
with icalendar. tests/formats/test_ical_lean.py holds the two paths equal on
alice, generated accounts and hypothesis-generated events.
"""

from __future__ import annotations

import datetime as dt
import re
import zoneinfo
from collections.abc import Callable
from functools import lru_cache
from typing import Any

from icalendar.parser.content_line import Contentline
from icalendar.parser.property import unescape_backslash

from errors import InvalidInput

# The names icalendar's parser passes a TZID to (`ComponentIcalParser.datetime_names`, those we read).
_ZONED = frozenset({"DTSTART", "DTEND", "RECURRENCE-ID", "RDATE", "EXDATE"})
_TEXT = frozenset({"UID", "SUMMARY", "DESCRIPTION", "LOCATION"})
_TIMES = frozenset({"DTSTART", "DTEND", "RECURRENCE-ID", "X-LIFEBOAT-DTEND", "CREATED", "LAST-MODIFIED", "DTSTAMP"})
_LISTS = frozenset({"RDATE", "EXDATE"})
_TIME_KINDS = frozenset({None, "DATE", "DATE-TIME"})
REPEATABLE = frozenset({"ATTENDEE", "CATEGORIES", "RDATE", "EXDATE"})  # the others may appear once
_VALUE = re.compile(r"([0-9]{4})([0-9]{2})([0-9]{2})(?:T([0-9]{2})([0-9]{2})([0-9]{2})(Z?))?\Z", re.ASCII)
_NAME = re.compile(r"[A-Z0-9-]+\Z", re.ASCII)
_KEPT = 4096  # distinct heads and other-property lines remembered
# Only lines this short are remembered: a long one (an HTML X-ALT-DESC of 50 KB) is parsed each time, so the
# memory the memos hold stays bounded by their entries, whatever a file holds.
KEPT_LINE_CHARS = 512


class LeanComponent(dict[str, Any]):
    """A VEVENT or VALARM as the reader reads icalendar's: properties by upper-case name, a list if repeated."""

    __slots__ = ("name", "subcomponents")

    def __init__(self, name: str) -> None:
        super().__init__()
        self.name = name
        self.subcomponents: list[LeanComponent] = []

    def add(self, name: str, prop: Any) -> bool:
        """Add a property as icalendar's parser adds it; False for a repeat of one that may appear once."""
        if name not in self:
            self[name] = prop
            return True
        if name not in REPEATABLE:
            return False
        old = self[name]
        self[name] = [*old, prop] if isinstance(old, list) else [old, prop]
        return True


class _Text(str):
    """A TEXT value (what `vText` is: the unescaped string) with its parameters."""

    __slots__ = ("params",)
    params: dict[str, str]


class _Time:
    """A DATE or DATE-TIME value, as `vDDDTypes` gives it (`.dt`)."""

    __slots__ = ("dt", "params")

    def __init__(self, value: dt.date, params: dict[str, str]) -> None:
        self.dt = value
        self.params = params


class _Times:
    """RDATE/EXDATE values, as `vDDDLists` gives them (`.dts`, each with `.dt`)."""

    __slots__ = ("dts", "params")

    def __init__(self, values: list[_Time], params: dict[str, str]) -> None:
        self.dts = values
        self.params = params


class Refused(Exception):
    """The line is not one this decoder can give exactly: icalendar must parse the component."""


ParseLines = Callable[[list[str]], list[Any]]


class LeanDecoder:
    """`decode` VEVENT blocks; `parse_lines` is the icalendar parse used for the other properties."""

    def __init__(self, parse_lines: ParseLines) -> None:
        self._parse_lines = parse_lines
        self._other = lru_cache(maxsize=_KEPT)(self._parse_other)

    def decode(self, lines: list[str]) -> LeanComponent | None:
        """The component of a BEGIN:VEVENT...END:VEVENT block, or None if icalendar must parse it."""
        if len(lines) < 2 or lines[0] != "BEGIN:VEVENT" or lines[-1] != "END:VEVENT":
            return None
        event = LeanComponent("VEVENT")
        current = event
        try:
            for line in lines[1:-1]:
                if line == "BEGIN:VALARM" and current is event:
                    current = LeanComponent("VALARM")
                    continue
                if line == "END:VALARM" and current is not event:
                    event.subcomponents.append(current)
                    current = event
                    continue
                if not current.add(*self.property(current.name, line)):
                    return None
        except Refused:
            return None
        if current is not event or "UID" not in event or not event["UID"].strip():
            return None  # an unfinished VALARM; no UID (the reader hashes icalendar's text)
        return event

    def time_head(self, name: str, head: str) -> tuple[str | None, dict[str, str]]:
        """For a DTSTART or DTEND line's `head` (before its ':'), as `decode` reads it: the zone its value is
        read in (`time_value`) and its parameters (`.params`); raises `Refused`."""
        if '"' in head:
            raise Refused  # quoted parameters: `property` finds the ':' with care
        _, params = _head(head)
        if params.get("VALUE") not in _TIME_KINDS:
            raise Refused
        return _tzid(name, params), params

    @staticmethod
    def time_value(raw: str, tzid: str | None) -> dt.date:
        """A DTSTART or DTEND line's value (`.dt`), read in the zone `time_head` gave; raises `Refused`.

        Not remembered (`_value` is): most events' start and end differ from every other's, so
        the cache missed more than it hit and cost more than it saved (`_value_read`).
        """
        return _value_read(raw, tzid)

    def property(self, kind: str, line: str) -> tuple[str, Any]:
        """One content line of a `kind` component as `decode` reads it: (upper-case name, value); raises `Refused`."""
        colon = line.find(":")
        if colon <= 0:
            raise Refused
        head = line[:colon]
        if '"' in head:
            colon = _separator(line)
            head = line[:colon]
        name, params = _head(head)
        raw = line[colon + 1 :]
        if name in _TEXT:
            if "VALUE" in params:
                raise Refused  # another value type: another icalendar class
            text = _Text(unescape_backslash(raw) if "\\" in raw else raw)
            text.params = params
            return name, text
        if name in _TIMES or name in _LISTS:
            kind_of_value = params.get("VALUE")
            if kind_of_value not in _TIME_KINDS or (kind_of_value is None and name.startswith("X-")):
                raise Refused  # another value type (an X- name without VALUE is icalendar's UNKNOWN)
        if name in _TIMES:
            return name, _Time(_value(raw, _tzid(name, params)), params)
        if name in _LISTS:
            if not raw:
                raise Refused  # icalendar skips an empty RDATE
            tzid = _tzid(name, params)
            return name, _Times([_Time(_value(item, tzid), params) for item in raw.split(",")], params)
        if name in ("BEGIN", "END"):
            raise Refused
        return name, (self._other if len(line) <= KEPT_LINE_CHARS else self._parse_other)(kind, line)

    def _parse_other(self, kind: str, line: str) -> Any:
        """icalendar's property for one line, parsed in a component of the same kind."""
        try:
            (component,) = self._parse_lines([f"BEGIN:{kind}", line, f"END:{kind}"])
        except InvalidInput:  # icalendar refuses the line: it says so again when it parses the whole
            raise Refused from None
        if len(component) != 1 or component.subcomponents or getattr(component, "errors", None):
            raise Refused
        (value,) = component.values()
        if isinstance(value, list):
            raise Refused
        return value


def _separator(line: str) -> int:
    """The ':' before the value when the parameters hold quotes (a CN): the first one outside them."""
    quoted = False
    for i, ch in enumerate(line):
        if ch == '"':
            quoted = not quoted
        elif ch == "\\" and not quoted:
            raise Refused  # icalendar reads a backslash there as an escape: let it decide
        elif ch == ":" and not quoted:
            return i
    raise Refused


@lru_cache(maxsize=_KEPT)
def _head(head: str) -> tuple[str, dict[str, str]]:
    """The upper-case name and the parameters of `NAME;PARAMS`, as icalendar's parser reads them."""
    if ";" not in head:
        name = head.upper()
        if not _NAME.match(name):
            raise Refused
        return name, {}
    if "\\" in head:
        raise Refused
    try:
        name, params, _ = Contentline(head + ":").raw_parts()
    except ValueError:
        raise Refused from None
    plain = {}
    for key, value in params.items():
        if not isinstance(value, str):
            raise Refused  # a list of values: icalendar's own objects only
        plain[key.upper()] = value
    name = name.upper()
    if not _NAME.match(name):
        raise Refused
    return name, plain


def _tzid(name: str, params: dict[str, str]) -> str | None:
    """The TZID icalendar's parser applies to the value: only for its date-time names, only IANA ones here."""
    tzid = params.get("TZID")
    if tzid is None or name not in _ZONED:
        return None
    if not is_zone(tzid):
        raise Refused  # a zone only the file's VTIMEZONE (or icalendar's guess) defines
    return tzid


@lru_cache(maxsize=256)
def is_zone(tzid: str) -> bool:
    """Whether `zoneinfo` knows `tzid` (the reader's first test of a TZID), remembered per name."""
    try:
        zoneinfo.ZoneInfo(tzid)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError, OSError):
        return False
    return True


def _value_read(text: str, tzid: str | None) -> dt.date:
    """`_value`, with the shapes our writer emits read by the standard library's ISO 8601 parser.

    Why: the fidelity drill reads two date-times per event (100,000 at 1x HEAVY); a
    regular expression's groups and six `int`s cost about 3.5x what `fromisoformat`
    does on 8 digits, 'T', 6 digits (108,000 values of 45,000 distinct: 0.11 s
    against 0.03 s CPU, best of 5). The test of the shape admits exactly what
    `_VALUE` does, ASCII digits only, and hour 24 goes the long way, so both
    accept and refuse the same texts (tests/formats/test_ical_lean.py).
    """
    size = len(text)
    if (
        (size == 15 or (size == 16 and text[15] == "Z" and tzid is None))
        and text[8] == "T"
        and text.isascii()
        and text[:8].isdigit()
        and text[9:15].isdigit()
        and text[9:11] != "24"
    ):
        try:
            return dt.datetime.fromisoformat(text)  # a Z gives `dt.UTC`, as `_value` does
        except ValueError:
            raise Refused from None
    if size == 8 and tzid is None and text.isascii() and text.isdigit():  # a DATE (all-day)
        try:
            return dt.date.fromisoformat(text)
        except ValueError:
            raise Refused from None
    return _value.__wrapped__(text, tzid)


@lru_cache(maxsize=_KEPT)  # DTSTAMPs repeat, and a series' times: values are immutable, safe to share
def _value(text: str, tzid: str | None) -> dt.date:
    """A DATE or DATE-TIME as `vDDDTypes.from_ical` gives it, less the zone of a TZID (the reader drops it).

    With a TZID icalendar gives an aware time that the reader turns back into
    wall time and the zone's name (`_when_of`), so the naive wall time is the same.
    """
    match = _VALUE.match(text)
    if match is None:
        raise Refused
    year, month, day, hour, minute, second, utc = match.groups()
    try:
        if hour is None:
            if tzid is not None:
                raise Refused  # icalendar makes a date with a TZID a zoned midnight
            return dt.date(int(year), int(month), int(day))
        if utc and tzid is not None:
            raise Refused
        value = dt.datetime(int(year), int(month), int(day), int(hour), int(minute), int(second))
    except ValueError:
        raise Refused from None
    return value.replace(tzinfo=dt.UTC) if utc else value
