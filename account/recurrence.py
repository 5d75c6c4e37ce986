"""The canonical text of recurrence rules and alarm durations, as records hold them.

Why in the records contract: an imported RRULE or TRIGGER is brought into this
form before it is stored (`account.jsonio`), the iCalendar writer writes it and
its reader gives it back, so "import, export, restore" returns equal records.
Every side needs the same rule; here it belongs to none of them. The text form
is the icalendar library's (`vRecur`, `vDuration`), so the writer's bytes are
unchanged.
"""

from __future__ import annotations

import datetime as dt
import re
import zoneinfo
from functools import lru_cache

from dateutil.rrule import rrulestr
from icalendar.prop import vDuration, vRecur

from account.records import When


def zone(name: str) -> zoneinfo.ZoneInfo:
    """The IANA zone `name`, or ValueError naming it."""
    try:
        return zoneinfo.ZoneInfo(name)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError, OSError):
        raise ValueError(f"{name!r} is not a known IANA time zone (e.g. Europe/Berlin)") from None


def frame(when: When) -> tuple[str, str | None]:
    """The kind of a normalised time: ('date'|'floating'|'utc'|'zoned', tz)."""
    if when.date is not None:
        return ("date", None)
    assert when.datetime is not None
    if when.datetime.tzinfo is not None:
        return ("utc", None)
    return ("zoned", when.tz) if when.tz else ("floating", None)


_RRULE_KEYS = (
    "FREQ",
    "UNTIL",
    "COUNT",
    "INTERVAL",
    "BYSECOND",
    "BYMINUTE",
    "BYHOUR",
    "BYDAY",
    "BYMONTHDAY",
    "BYYEARDAY",
    "BYWEEKNO",
    "BYMONTH",
    "BYSETPOS",
    "WKST",
    "RSCALE",
    "SKIP",
)
_RANGES = {
    "COUNT": (1, 2**31),
    "INTERVAL": (1, 2**31),
    "BYSECOND": (0, 60),
    "BYMINUTE": (0, 59),
    "BYHOUR": (0, 23),
    "BYMONTHDAY": (1, 31),
    "BYYEARDAY": (1, 366),
    "BYWEEKNO": (1, 53),
    "BYMONTH": (1, 12),
    "BYSETPOS": (1, 366),
}
_SIGNED = frozenset({"BYMONTHDAY", "BYYEARDAY", "BYWEEKNO", "BYSETPOS"})
_DURATION = re.compile(r"[+-]?P(?:\d+W|(?:\d+D)?(?:T(?:\d+H)?(?:\d+M)?(?:\d+S)?)?)")


def canonical_duration(value: str) -> str:
    """An RFC 5545 duration in the text form the reader returns, e.g. `-PT15M`, `P1D`.

    Weeks become days and exact times are normalised (`PT90M` -> `PT1H30M`,
    `PT24H` -> `P1D`), as the icalendar library writes them.
    """
    raw = value.strip().upper()
    if not _DURATION.fullmatch(raw) or raw.rstrip("T").lstrip("+-") == "P":
        raise ValueError(f"{value!r} is not an RFC 5545 duration such as -PT15M, PT1H or P1D")
    try:
        text: str = vDuration(vDuration.from_ical(raw)).to_ical().decode()  # vDuration is unannotated
        return text
    except (ValueError, OverflowError):
        raise ValueError(f"{value!r} is too long a duration") from None


def canonical_rrule(value: str, start: When | None = None) -> str:
    """An RRULE value in the text form the reader returns (the icalendar library's).

    Keys are upper case in RFC order (`FREQ=WEEKLY;BYDAY=MO;COUNT=10` becomes
    `FREQ=WEEKLY;COUNT=10;BYDAY=MO`). Given the series' `start`, UNTIL takes the value
    type RFC 5545 requires: a date for all-day series, a floating time for floating
    ones and UTC otherwise (a date UNTIL on a timed series means the end of that day).
    """
    kind = frame(start) if start is not None else None
    return _canonical_rrule(value, kind)


@lru_cache(maxsize=4096)
def _canonical_rrule(value: str, kind: tuple[str, str | None] | None) -> str:
    raw = value.strip()
    if raw[:6].upper() == "RRULE:":
        raw = raw[6:]
    parts = [p for p in raw.split(";") if p.strip()]
    keys = []
    for part in parts:
        key, sep, _ = part.partition("=")
        key = key.strip().upper()
        if not sep or key not in _RRULE_KEYS:
            raise ValueError(f"{value!r} is not a valid RRULE: {part!r} is not a rule part such as FREQ=DAILY")
        if key in keys:
            raise ValueError(f"{value!r} is not a valid RRULE: {key} is given twice")
        keys.append(key)
    if "FREQ" not in keys:
        raise ValueError(f"{value!r} is not a valid RRULE: FREQ is missing (e.g. FREQ=WEEKLY;BYDAY=MO)")
    if "COUNT" in keys and "UNTIL" in keys:
        raise ValueError(f"{value!r} is not a valid RRULE: give COUNT or UNTIL, not both")
    try:
        rule = vRecur.from_ical(";".join(p.strip() for p in parts).upper())
    except (ValueError, TypeError) as exc:
        raise ValueError(f"{value!r} is not a valid RRULE: {exc}") from None
    for key, (low, high) in _RANGES.items():
        for number in rule.get(key, []):
            if isinstance(number, int) and not (low <= abs(number) <= high and (number >= 0 or key in _SIGNED)):
                raise ValueError(f"{value!r} is not a valid RRULE: {key}={number} is out of range")
    if "UNTIL" in rule and kind is not None:
        rule["UNTIL"] = [_until(rule["UNTIL"][0], kind)]
    text: str = rule.to_ical().decode()
    if "RSCALE" not in rule and "SKIP" not in rule:
        until = rule.get("UNTIL", [None])[0]
        aware = isinstance(until, dt.datetime) and until.tzinfo is not None
        try:
            rrulestr(text, dtstart=dt.datetime(2000, 1, 1, tzinfo=dt.UTC if aware else None))
        except (ValueError, TypeError, OverflowError) as exc:
            raise ValueError(f"{value!r} is not a valid RRULE: {exc}") from None
    return text


def _until(until: dt.date | dt.datetime, kind: tuple[str, str | None]) -> dt.date | dt.datetime:
    target, tz = kind
    if target == "date":
        return until.date() if isinstance(until, dt.datetime) else until
    if not isinstance(until, dt.datetime):  # inclusive: the whole last day counts
        until = dt.datetime.combine(until, dt.time(23, 59, 59))
    if target == "floating":
        return until.replace(tzinfo=None)
    if until.tzinfo is None:
        until = until.replace(tzinfo=zone(tz) if tz else dt.UTC)
    return until.astimezone(dt.UTC)
