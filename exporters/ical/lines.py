"""iCalendar content lines: VEVENT/VALARM lines assembled by hand, and the header's values.

Events and alarms are joined here directly rather than through `icalendar.Component`.

Why by hand: building an `icalendar.Event` per event and calling `to_ical()` cost about
60 % of a typical account's export (measured with `bench/export_account.py` and a
profile of `jobs.execute.execute_run`), almost all of it in `Component.add`, the
`Parameters` dictionaries created for every property and `Contentline.from_parts`,
not in encoding values. So icalendar still encodes what needs a rule (RRULE through
`vRecur`, durations through `vDuration`, parameter values through its `param_value`
with RFC 6868 escaping, zone ids through `tzid_from_dt`), and this module only joins
`NAME;PARAMS:VALUE` in the order icalendar writes them (the canonical properties
first, then the rest alphabetically; parameters sorted) and folds each line with
`exporters.contentlines`. The output is byte-for-byte what the Component path wrote;
`tests/formats/test_ical_content.py` holds the two side by side on hostile events.

The calendar header is still an icalendar component (once per calendar), so the
second half of this module fixes icalendar's own text handling for it: icalendar 7
writes a literal backslash-N as a line break, drops a leading U+FEFF, accepts any
text for enumerated properties (strict parsers such as `ical` reject the file) and
may fold a blank continuation line (vobject drops it). Each helper fixes one of those.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterable, Mapping
from functools import lru_cache
from zoneinfo import ZoneInfo

from icalendar import Component
from icalendar.parser import Parameters, param_value
from icalendar.prop import vDuration, vRecur, vText
from icalendar.timezone.tzid import tzid_from_dt, tzid_from_tzinfo

from account.records import When
from account.recurrence import zone
from exporters.contentlines import ContentLines, fold_line
from exporters.ical.values import MARK, clean, mailto, value_of

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
# Parameters marking a value the writer had to add (see `exporters.ical.values.MARK`).
MARKED: Params = {MARK: "TRUE"}


class Props(ContentLines):
    """One VEVENT's or VALARM's lines, in icalendar's order, with iCalendar parameter encoding."""

    __slots__ = ()

    def add(self, name: str, value: str, params: Params | None = None) -> None:
        """Add `value`, already encoded for its type, with optional parameters."""
        self.add_line(name, f"{name};{encode_params(params)}:{value}" if params else f"{name}:{value}")


def encode_params(
    params: Params,
    always_quoted: frozenset[str] = _ALWAYS_QUOTED,
    quote_also: Mapping[str, str] = _QUOTE_ALSO,
) -> str:
    """Parameters as `Parameters.to_ical` writes them: sorted, quoted by its rules.

    Remembered per process for the default and the address rules: a calendar
    repeats a few parameter sets (`TZID=Europe/Berlin`, `VALUE=DATE`, the marker,
    its owner's CN) on most of its lines, and icalendar's `param_value` costs more
    than the lookup.
    """
    if always_quoted is _ALWAYS_QUOTED and quote_also is _QUOTE_ALSO:
        rules = 0
    elif always_quoted is ADDRESS_ALWAYS_QUOTED and quote_also is ADDRESS_QUOTE_ALSO:
        rules = 1
    else:
        return _encode_params(params, always_quoted, quote_also)
    key = (rules, *params.items())
    found = _ENCODED.get(key)
    if found is None:
        if len(_ENCODED) >= _ENCODED_MAX:
            _ENCODED.clear()
        found = _ENCODED[key] = _encode_params(params, always_quoted, quote_also)
    return found


_ENCODED: dict[tuple[object, ...], str] = {}
_ENCODED_MAX = 4096


def _encode_params(params: Params, always_quoted: frozenset[str], quote_also: Mapping[str, str]) -> str:
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
    """RFC 5545 TEXT escaping of cleaned text (see `escape_text`)."""
    return value.replace("\\", "\\\\").replace(";", "\\;").replace(",", "\\,").replace("\n", "\\n")


def text(value: str) -> str:
    """Any string as a TEXT value: cleaned of what TEXT cannot carry, then escaped.

    Text with nothing to clean or escape (most summaries and locations) is returned
    after one regex scan instead of three substitutions and four replacements.
    """
    if _NOT_PLAIN.search(value) is None:
        return value
    return escape(clean(value))


# What `clean` or `escape` would change (LF included); text without any is written as it is.
_NOT_PLAIN = re.compile(r"[\x00-\x08\x0a-\x1f\x7f-\x9f\ud800-\udfff\\;,]")


def categories(values: Iterable[str]) -> str:
    return ",".join(escape(v) for v in values)


def _tzid(value: dt.date | dt.datetime) -> str | None:
    """The zone id icalendar gives an aware DATE-TIME ("UTC" for UTC); None for dates and floating times."""
    if not isinstance(value, dt.datetime) or value.tzinfo is None:
        return None
    tzinfo = value.tzinfo
    if tzinfo is dt.UTC:
        return "UTC"  # what tzid_from_dt gives it
    if type(tzinfo) is ZoneInfo and tzinfo.key is not None:
        found = _zone_tzid(tzinfo.key)
        if found is not None:
            return found
    return tzid_from_dt(value)  # its fallback (the zone's name at this time) depends on the time


@lru_cache(maxsize=1024)
def _zone_tzid(key: str) -> str | None:
    """`tzid_from_dt` of a time in the IANA zone `key`: it depends on the zone alone (icalendar
    looks its equivalent ids up by the key), and that lookup cost more than the rest of a
    DTSTART line."""
    found: str | None = tzid_from_tzinfo(ZoneInfo(key))
    return found


def _stamp_text(value: dt.date | dt.datetime, tzid: str | None) -> str:
    # %-formatting: the same digits as format specs, at about half the cost here (timeit)
    if not isinstance(value, dt.datetime):
        return "%04d%02d%02d" % (value.year, value.month, value.day)  # noqa: UP031 (see above)
    out = "%04d%02d%02dT%02d%02d%02d" % (value.year, value.month, value.day, value.hour, value.minute, value.second)  # noqa: UP031
    return out + "Z" if tzid == "UTC" else out


def when_value(when: When, params: Params | None = None) -> tuple[str, dict[str, str]]:
    """`date_or_time(value_of(when), params)` for a normalised `When`.

    Why: for a wall time in a zone, `value_of` makes an aware copy only for
    `date_or_time` to read the zone's id back from it; that copy and the zone
    lookup cost more than the rest of a DTSTART line. Here the id comes from the
    zone's name (remembered per name; an unknown zone still raises ValueError).
    """
    value, tz = when.datetime, when.tz
    if tz and when.date is None and value is not None and value.tzinfo is None:
        tzid = _ZONED.get(tz, _UNSEEN)
        if tzid is _UNSEEN:
            if len(_ZONED) >= 1024:
                _ZONED.clear()
            tzid = _ZONED[tz] = tzid_from_tzinfo(zone(tz))
        if isinstance(tzid, str):
            out = dict(params) if params else {}
            if tzid != "UTC":
                out["TZID"] = tzid
            return _stamp_text(value, tzid), out
    return date_or_time(value_of(when), params)


_UNSEEN = object()
_ZONED: dict[str, object] = {}  # IANA name -> the id icalendar gives a time in that zone (None: none)


def date_or_time(value: dt.date | dt.datetime, params: Params | None = None) -> tuple[str, dict[str, str]]:
    """A DATE or DATE-TIME value and its parameters (VALUE=DATE, or TZID unless UTC)."""
    out = dict(params or {})
    tzid = _tzid(value)
    if not isinstance(value, dt.datetime):
        out["VALUE"] = "DATE"
    elif tzid and tzid != "UTC":
        out["TZID"] = tzid
    return _stamp_text(value, tzid), out


def date_list(values: list[dt.date | dt.datetime]) -> tuple[str, dict[str, str]]:
    """RDATE/EXDATE values on one line, as icalendar's vDDDLists writes them."""
    params: dict[str, str] = {}
    if all(not isinstance(v, dt.datetime) for v in values):
        params["VALUE"] = "DATE"
    texts = []
    for value in values:
        tzid = _tzid(value)
        if tzid and tzid != "UTC":
            params["TZID"] = tzid
        texts.append(_stamp_text(value, tzid))
    return ",".join(texts), params


def utc_stamp(value: dt.datetime) -> str:
    """A DATE-TIME already in UTC (DTSTAMP, CREATED, LAST-MODIFIED)."""
    return _stamp_text(value, "UTC")


@lru_cache(maxsize=4096)
def recur(rule: str) -> str:
    """A canonical RRULE as icalendar's vRecur writes it; ValueError if it is not a rule."""
    text: str = vRecur.from_ical(rule).to_ical().decode()
    return text


@lru_cache(maxsize=1024)
def duration(value: dt.timedelta) -> str:
    text: str = vDuration(value).to_ical().decode()  # vDuration.to_ical is unannotated
    return text


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


def serialise(component: Component) -> bytes:
    """A component's bytes, folded by `exporters.contentlines` rather than by icalendar.

    Why: icalendar may leave a continuation line of only blanks (a long run of spaces
    in a description), which vobject, and so Radicale, drops as an empty line.
    """
    return b"".join(fold_line(str(line)) for line in component.content_lines() if line)


def cn_params(name: str | None) -> dict[str, str]:
    return {"CN": clean(name)} if name and clean(name) else {}


# Values RFC 5545 allows for enumerated properties (`None`: any iana-token or x-name).
TOKENS: dict[str, frozenset[str] | None] = {
    "STATUS": frozenset({"TENTATIVE", "CONFIRMED", "CANCELLED"}),
    "TRANSP": frozenset({"OPAQUE", "TRANSPARENT"}),
    "ACTION": None,
}
_TOKEN_RE = re.compile(r"[A-Z0-9-]+")


def token(value: str, name: str) -> str | None:
    """The value as RFC 5545 writes it (upper case), or None if it is not a valid one."""
    upper = clean(value).strip().upper()
    allowed = TOKENS[name]
    valid = upper in allowed if allowed is not None else _TOKEN_RE.fullmatch(upper)
    return upper if valid else None


def add_token(comp: Props, name: str, value: str) -> None:
    """An enumerated property; a value strict parsers would reject goes to X-LIFEBOAT-<name>."""
    valid = token(value, name)
    if valid:
        comp.add(name, valid)
    elif clean(value):
        comp.add(f"X-LIFEBOAT-{name}", escape(clean(value)))


_BOM = "\ufeff".encode()


def escape_text(value: str) -> bytes:
    """RFC 5545 TEXT escaping of cleaned text (no CR left).

    Why not icalendar's: it first turns a literal backslash-N into a line break, so
    "C:\\New folder" would come back as two lines.
    """
    return escape(value).encode()


def _keep_bom(data: bytes) -> bytes:
    # icalendar decodes each written value as utf-8-sig, dropping one leading U+FEFF
    return _BOM + data if data.startswith(_BOM) else data


class Text(vText):
    def to_ical(self) -> bytes:
        return _keep_bom(escape_text(str(self)))


def text_value(value: str) -> vText:
    """A TEXT value for the icalendar-built calendar header (our escaping, leading U+FEFF kept)."""
    return Text(clean(value))
