"""Value rules shared by the iCalendar writer (`exporters.ical.writer`) and reader (`exporters.ical.reader`).

Why one module: every rule here has two directions (record -> property, property ->
record) and a round trip only holds when both sides agree, so they live side by side.
The canonical text forms of RRULE and durations, which the importer applies too, are
part of the records contract (`account.recurrence`).
"""

from __future__ import annotations

import datetime as dt
import re
import unicodedata
from urllib.parse import unquote

from account.canonical import is_utc_zone  # zones meaning UTC: written as `Z`
from account.records import When
from account.recurrence import frame, zone  # shared with the records contract

# Parameter marking a value the writer had to add (an RFC-required property the record
# leaves empty, or an override value inherited from its series); the reader drops it.
MARK = "X-LIFEBOAT-DEFAULT"
_LINE_BREAKS = re.compile(r"\r\n|\r")
_CONTROLS = re.compile(r"[\x00-\x08\x0b-\x1f\x7f\x80-\x9f]")
_SURROGATES = re.compile(r"[\ud800-\udfff]")
_UNCLEAN = re.compile(r"[\x00-\x08\x0b-\x1f\x7f\x80-\x9f\ud800-\udfff]")  # what `clean` changes (CR is in \x0b-\x1f)


def clean(value: str) -> str:
    """Make any `str` safe for a TEXT value or parameter: canonical text passes unchanged.

    Why: the writer must never emit a corrupt file, even for records that skipped
    canonicalisation; RFC 5545 TEXT cannot carry control characters other than TAB.
    """
    if _UNCLEAN.search(value) is None:  # the usual case: one scan instead of three substitutions
        return value
    value = _SURROGATES.sub("\ufffd", value)
    return _CONTROLS.sub("", _LINE_BREAKS.sub("\n", value))


def optional(value: object) -> str | None:
    """A parsed TEXT value as a canonical optional string (empty means absent)."""
    if value is None:
        return None
    return clean(str(value)) or None


# --- URIs -----------------------------------------------------------------------------

# RFC 6068 `qchar` without ',' (a list separator in mailto:): kept as is in the address.
_MAILTO_SAFE = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-._~!$'()*+;:@")
# Characters no URI may contain raw; a URL holding one is written encoded, its text kept aside.
_URI_UNSAFE = frozenset(' "<>\\^`{|}')


def _invisible(ch: str) -> bool:
    return unicodedata.category(ch)[0] in "CZ"


def _pct(ch: str) -> str:
    return "".join(f"%{b:02X}" for b in ch.encode("utf-8", "surrogatepass"))


def mailto(email: str) -> str:
    """`mailto:` URI for an address; reversible by `email_of` for every string.

    `%` is always encoded, so decoding restores the address exactly; other printable
    non-ASCII stays readable (an IRI), as calendar clients expect.
    """
    out = []
    for ch in clean(email):
        if ch in _MAILTO_SAFE or (ord(ch) > 0x7F and not _invisible(ch)):
            out.append(ch)
        else:
            out.append(_pct(ch))
    return "mailto:" + "".join(out)


def email_of(uri: str) -> str:
    """The address in a CAL-ADDRESS value; other URI schemes are kept whole."""
    text = clean(str(uri)).strip()
    if text[:7].lower() == "mailto:":
        return unquote(text[7:])
    return text


def url_is_clean(url: str) -> bool:
    """True if `url` can be written as a URI value verbatim."""
    return bool(url) and not any(
        ch in _URI_UNSAFE or ord(ch) < 0x20 or ch == "\x7f" or (ord(ch) > 0x7F and _invisible(ch)) for ch in url
    )


def encode_url(url: str) -> str:
    """A valid URI for any text: unsafe characters percent-encoded (as a browser would)."""
    return (
        "".join(
            _pct(ch)
            if ch in _URI_UNSAFE or ord(ch) < 0x21 or ch == "\x7f" or (ord(ch) > 0x7F and _invisible(ch))
            else ch
            for ch in url
        )
        or "about:blank"
    )


# --- Times ----------------------------------------------------------------------------


def normalise(when: When, uid: str) -> When:
    """Bring a `When` into canonical form (what a round trip gives back).

    Aware times become UTC (or wall time in `tz` if both were given), zones that
    mean UTC become absolute times, microseconds go (iCalendar has none).
    """
    if (when.date is None) == (when.datetime is None):
        raise ValueError(f"event {uid!r}: a time needs exactly one of an all-day date or a date-time")
    if when.date is not None:
        d = when.date
        return when if type(d) is dt.date and when.tz is None else When(date=dt.date(d.year, d.month, d.day))
    value = when.datetime
    assert value is not None
    if not value.microsecond:  # already canonical (what the store gives): the same value, without copies
        if value.tzinfo is None and (when.tz is None or (when.tz != "" and not is_utc_zone(when.tz))):
            return when
        if value.tzinfo is dt.UTC and when.tz is None:
            return when
    value = value.replace(microsecond=0)
    tz = when.tz if when.tz and not is_utc_zone(when.tz) else None
    if value.tzinfo is not None:
        if tz is None:
            return When(datetime=value.astimezone(dt.UTC))
        return When(datetime=value.astimezone(zone(tz)).replace(tzinfo=None), tz=tz)
    if when.tz and tz is None:  # a zone meaning UTC
        return When(datetime=value.replace(tzinfo=dt.UTC))
    return When(datetime=value, tz=tz)


def instant(when: When) -> dt.datetime:
    """An aware datetime for comparisons; floating times and dates are read as UTC."""
    if when.date is not None:
        return dt.datetime.combine(when.date, dt.time(), dt.UTC)
    assert when.datetime is not None
    if when.datetime.tzinfo is not None:
        return when.datetime
    if when.tz:
        return when.datetime.replace(tzinfo=zone(when.tz))
    return when.datetime.replace(tzinfo=dt.UTC)


def conform(when: When, like: When) -> When:
    """`when` expressed in the kind and zone of `like` (both normalised).

    Why: RECURRENCE-ID and EXDATE only match instances of the same value type and zone
    as DTSTART (RFC 5545 3.8.4.4); converting keeps the meaning when a record mixes them.
    """
    target, tz = frame(like)
    kind, _ = frame(when)
    if (kind, when.tz if kind == "zoned" else None) == (target, tz):
        return when
    if target == "date":
        if when.date is not None:
            return when
        assert when.datetime is not None
        return When(date=when.datetime.date())
    assert like.datetime is not None
    if when.date is not None:  # an all-day value for a timed series: same time of day
        wall = dt.datetime.combine(when.date, like.datetime.time().replace(tzinfo=None))
        return When(datetime=wall.replace(tzinfo=dt.UTC)) if target == "utc" else When(datetime=wall, tz=tz)
    assert when.datetime is not None
    if target == "floating":  # keep the wall time the value shows
        return When(datetime=when.datetime.replace(tzinfo=None))
    if kind == "floating":  # wall time read in the series' zone
        value = when.datetime.replace(tzinfo=dt.UTC if target == "utc" else zone(tz or "UTC"))
    else:
        value = instant(when)
    if target == "utc":
        return When(datetime=value.astimezone(dt.UTC))
    return When(datetime=value.astimezone(zone(tz or "UTC")).replace(tzinfo=None), tz=tz)


def fit_end(start: When, end: When | None) -> When | None:
    """DTEND of the same value type as DTSTART (RFC 5545), converted if a record mixes them."""
    if end is None:
        return None
    if _FLOATING[frame(start)[0]] != _FLOATING[frame(end)[0]]:
        return conform(end, start)
    return end


_FLOATING = {"date": 0, "floating": 1, "utc": 2, "zoned": 2}  # `fit_end`: kinds that DTSTART and DTEND may share


def value_of(when: When) -> dt.date | dt.datetime:
    """The Python value icalendar writes as DATE, floating, UTC `Z` or TZID date-time."""
    if when.date is not None:
        return when.date
    assert when.datetime is not None
    if when.tz:
        return when.datetime.replace(tzinfo=zone(when.tz))
    return when.datetime


def duration_between(start: When, end: When) -> dt.timedelta:
    """Length of an event: calendar days for dates, wall-clock time within one frame."""
    if start.date is not None and end.date is not None:
        return end.date - start.date
    if start.datetime is not None and end.datetime is not None and frame(start) == frame(end):
        return end.datetime - start.datetime
    return instant(end) - instant(start)


def shift(when: When, delta: dt.timedelta) -> When:
    """`when` moved by `delta` in its own frame (wall clock for zoned times)."""
    if when.date is not None:
        return When(date=when.date + dt.timedelta(days=delta.days))
    assert when.datetime is not None
    return When(datetime=when.datetime + delta, tz=when.tz)
