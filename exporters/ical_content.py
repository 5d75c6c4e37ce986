"""Content lines of one VEVENT or VALARM, assembled directly rather than through `icalendar.Component`.

Why by hand: building an `icalendar.Event` per event and calling `to_ical()` cost about
60 % of a typical account's export (measured with `bench/export_account.py` and a
profile of `jobs.execute.execute_run`), almost all of it in `Component.add`, the
`Parameters` dictionaries created for every property and `Contentline.from_parts`,
not in encoding values. So icalendar still encodes what needs a rule (RRULE through
`vRecur`, durations through `vDuration`, parameter values through its `param_value`
with RFC 6868 escaping, zone ids through `tzid_from_dt`), and this module only joins
`NAME;PARAMS:VALUE` in the order icalendar writes them (the canonical properties
first, then the rest alphabetically; parameters sorted) and folds each line with
`exporters.folding`. The output is byte-for-byte what the Component path wrote;
`tests/formats/test_ical_content.py` holds the two side by side on hostile events.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping
from functools import lru_cache

from icalendar.parser import Parameters, param_value
from icalendar.prop import vDuration, vRecur
from icalendar.timezone.tzid import tzid_from_dt

from exporters.folding import fold_line
from exporters.ical_values import MARK, clean, mailto

# The order icalendar's Event writes its leading properties in; the rest follow sorted.
EVENT_ORDER = (
    "SUMMARY",
    "DTSTART",
    "DTEND",
    "DURATION",
    "DTSTAMP",
    "UID",
    "RECURRENCE-ID",
    "SEQUENCE",
    "RRULE",
    "RDATE",
    "EXDATE",
)

# Parameter quoting: icalendar's defaults, and for calendar addresses CN always quoted
# and ROLE/PARTSTAT quoted when they hold odd characters (its lenient parser strips an
# unquoted TAB at the edges).
_ALWAYS_QUOTED = frozenset(Parameters.always_quoted)
_QUOTE_ALSO: dict[str, str] = dict(Parameters.quote_also)
ADDRESS_ALWAYS_QUOTED = _ALWAYS_QUOTED | {"CN"}
ADDRESS_QUOTE_ALSO = {**_QUOTE_ALSO, "ROLE": " '\t\\", "PARTSTAT": " '\t\\"}

Params = Mapping[str, str]
# Parameters marking a value the writer had to add (see `exporters.ical_values.MARK`).
MARKED: Params = {MARK: "TRUE"}


class Props:
    """One component's content lines, in icalendar's order, with subcomponents after them."""

    __slots__ = ("name", "order", "props", "subs")

    def __init__(self, name: str, order: tuple[str, ...] = ()) -> None:
        self.name = name
        self.order = order
        self.props: dict[str, list[str]] = {}
        self.subs: list[Props] = []

    def add(self, name: str, value: str, params: Params | None = None) -> None:
        """Add `value`, already encoded for its type, with optional parameters."""
        line = f"{name};{encode_params(params)}:{value}" if params else f"{name}:{value}"
        self.props.setdefault(name, []).append(line)

    def add_raw_line(self, name: str, line: str) -> None:
        """Add a line whose parameters were encoded by the caller (calendar addresses)."""
        self.props.setdefault(name, []).append(line)

    def add_component(self, sub: Props) -> None:
        self.subs.append(sub)

    def lines(self) -> Iterable[str]:
        yield f"BEGIN:{self.name}"
        first = [key for key in self.order if key in self.props]
        rest = sorted(key for key in self.props if key not in self.order)
        for key in first + rest:
            yield from self.props[key]
        for sub in self.subs:
            yield from sub.lines()
        yield f"END:{self.name}"

    def to_bytes(self) -> bytes:
        return b"".join(fold_line(line) for line in self.lines())


def encode_params(
    params: Params,
    always_quoted: frozenset[str] = _ALWAYS_QUOTED,
    quote_also: Mapping[str, str] = _QUOTE_ALSO,
) -> str:
    """Parameters as `Parameters.to_ical` writes them: sorted, quoted by its rules."""
    out = []
    for key in sorted(params):
        value = params[key]
        if key == "TZID" and value == "UTC":
            continue
        odd = quote_also.get(key)
        always = key in always_quoted or bool(odd and any(c in value for c in odd))
        out.append(f"{key}={param_value(value, always_quote=always)}")
    return ";".join(out)


def escape(value: str) -> str:
    """RFC 5545 TEXT escaping of cleaned text (see `exporters.ical_props.escape_text`)."""
    return value.replace("\\", "\\\\").replace(";", "\\;").replace(",", "\\,").replace("\n", "\\n")


def text(value: str) -> str:
    """Any string as a TEXT value: cleaned of what TEXT cannot carry, then escaped."""
    return escape(clean(value))


def categories(values: Iterable[str]) -> str:
    return ",".join(escape(v) for v in values)


def _stamp_text(value: dt.datetime | dt.date) -> str:
    if not isinstance(value, dt.datetime):
        return f"{value.year:04}{value.month:02}{value.day:02}"
    out = f"{value.year:04}{value.month:02}{value.day:02}T{value.hour:02}{value.minute:02}{value.second:02}"
    return out + "Z" if value.tzinfo is not None and tzid_from_dt(value) == "UTC" else out


def date_or_time(value: dt.date | dt.datetime, params: Params | None = None) -> tuple[str, dict[str, str]]:
    """A DATE or DATE-TIME value and its parameters (VALUE=DATE, or TZID unless UTC)."""
    out = dict(params or {})
    if not isinstance(value, dt.datetime):
        out["VALUE"] = "DATE"
    elif value.tzinfo is not None:
        tzid = tzid_from_dt(value)
        if tzid and tzid != "UTC":
            out["TZID"] = tzid
    return _stamp_text(value), out


def date_list(values: list[dt.date | dt.datetime]) -> tuple[str, dict[str, str]]:
    """RDATE/EXDATE values on one line, as icalendar's vDDDLists writes them."""
    params: dict[str, str] = {}
    if all(not isinstance(v, dt.datetime) for v in values):
        params["VALUE"] = "DATE"
    for value in values:
        if isinstance(value, dt.datetime) and value.tzinfo is not None:
            tzid = tzid_from_dt(value)
            if tzid and tzid != "UTC":
                params["TZID"] = tzid
    return ",".join(_stamp_text(v) for v in values), params


def utc_stamp(value: dt.datetime) -> str:
    """A DATE-TIME already in UTC (DTSTAMP, CREATED, LAST-MODIFIED)."""
    return _stamp_text(value)


@lru_cache(maxsize=4096)
def recur(rule: str) -> str:
    """A canonical RRULE as icalendar's vRecur writes it; ValueError if it is not a rule."""
    return vRecur.from_ical(rule).to_ical().decode()


@lru_cache(maxsize=1024)
def duration(value: dt.timedelta) -> str:
    return vDuration(value).to_ical().decode()


@lru_cache(maxsize=1024)
def duration_text(value: str) -> str:
    """A canonical duration's text as vDuration writes it; ValueError if it is not one."""
    return duration(vDuration.from_ical(value))


def address_line(name: str, email: str, params: Params) -> str:
    """ORGANIZER/ATTENDEE: a `mailto:` URI with CN always quoted."""
    value = mailto(email)
    if not params:
        return f"{name}:{value}"
    return f"{name};{encode_params(params, ADDRESS_ALWAYS_QUOTED, ADDRESS_QUOTE_ALSO)}:{value}"
