"""VTIMEZONE components for the iCalendar writer, built from the zone database itself.

Why not icalendar's `Timezone.from_tzid`: it searches for each change in *local*
time and writes the first local time that shows the new offset. That is right for
a fall-back but one gap late for every spring-forward (New York 2021:
`DTSTART:20210314T030000` under `TZOFFSETFROM:-0500`, i.e. 08:00Z instead of
07:00Z), so readers that trust the VTIMEZONE put the first hour after the change at
a local time that does not exist (see docs/icalendar-upstream.md). It also covers
only the span it is given (we asked for 1970-2100, so a 2101 or 1965 event was read
with a guessed offset), and writes a COMMENT where RFC 5545 allows none.

What we write instead covers every instant, so no span is needed and one VTIMEZONE
per zone serves every calendar (cached per process):

- the state before the zone's first change (usually local mean time), from 1601;
- every change the zone database lists, each at its exact onset: DTSTART/RDATE is the
  UTC instant of the change plus TZOFFSETFROM, the local time *before* the change, as
  RFC 5545 3.6.5 defines it;
- the zone's rule for the future (the POSIX TZ string at the end of its TZif file) as
  unbounded yearly RRULEs, from where the listed changes begin to follow it. So an
  unbounded series needs no horizon at all. A zone with no rule keeps its last
  offset for ever, which its last observance already says.

A rule RRULE cannot express (none in tzdata 2025-2026; see `_pieces`) is written as
RDATEs up to `HORIZON`, 2200: beyond the century anyone plans in, and no tzdata
rule has survived that long unchanged.

The offsets and names come from `zoneinfo` itself (queried either side of each
change), the instants of the changes from the same TZif file zoneinfo reads; the
tests compare every onset with zoneinfo for every zone in tzdata.
"""

from __future__ import annotations

import datetime as dt
import os
import re
import struct
import zoneinfo
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from functools import lru_cache
from importlib import resources

from account.recurrence import zone
from exporters.contentlines import fold_line
from exporters.ical.lines import escape

__all__ = ["HORIZON", "vtimezone"]

# The first observance's onset: what Outlook and Exchange write, early enough for any
# date a calendar holds, late enough for every reader's date arithmetic.
EARLIEST = dt.datetime(1601, 1, 1)
HORIZON = 2200  # last year of RDATEs for a rule RRULE cannot express (see module docstring)
_EPOCH = dt.datetime(1970, 1, 1)
_FIRST_TS = int((EARLIEST - _EPOCH).total_seconds()) + 86_400 * 2
_LAST_TS = int((dt.datetime(9000, 1, 1) - _EPOCH).total_seconds())


@lru_cache(maxsize=512)
def vtimezone(tzid: str) -> bytes:
    """The serialised VTIMEZONE for the IANA zone `tzid`, valid for every instant (cached)."""
    tz = zone(tzid)  # a clear ValueError for unknown names
    lines = ["BEGIN:VTIMEZONE", f"TZID:{tzid}"]
    for observance in _ordered(_observances(tzid, tz)):
        lines += observance.lines()
    lines.append("END:VTIMEZONE")
    return b"".join(fold_line(line) for line in lines)


# --- what zoneinfo says -----------------------------------------------------------------


@dataclass(frozen=True)
class State:
    """The zone's offset (seconds east of UTC), daylight flag and abbreviation at one instant."""

    offset: int
    dst: bool
    name: str


def state_at(tz: zoneinfo.ZoneInfo, timestamp: int) -> State:
    local = dt.datetime.fromtimestamp(timestamp, tz)
    offset = int(local.utcoffset().total_seconds())  # type: ignore[union-attr]  # aware: never None
    return State(offset, bool(local.dst()), local.tzname() or _offset_text(offset))


@dataclass(frozen=True)
class Change:
    """One transition: its UTC instant (seconds since 1970) and the states either side."""

    at: int
    before: State
    after: State

    @property
    def onset(self) -> dt.datetime:
        """The local time at which the change happens, on the clock before it (RFC 5545 3.6.5)."""
        return _clock(self.at + self.before.offset)


def listed_changes(tzid: str, tz: zoneinfo.ZoneInfo) -> tuple[list[Change], str]:
    """The changes zoneinfo makes at the instants the TZif file lists, and the file's TZ rule."""
    times, rule = _read_tzif(tzid)
    changes = []
    for at in times:
        if _FIRST_TS < at < _LAST_TS:
            before, after = state_at(tz, at - 1), state_at(tz, at)
            if before != after:
                changes.append(Change(at, before, after))
    return changes, rule


def _read_tzif(tzid: str) -> tuple[list[int], str]:
    """Transition instants and the POSIX TZ footer of the TZif file (RFC 8536) zoneinfo reads.

    Why parse it: zoneinfo answers "what offset at this instant" but does not list its
    transitions; the file does. Only the instants are taken from it.
    """
    data = _tzif_bytes(tzid)
    if data[:4] != b"TZif":
        raise ValueError(f"{tzid!r}: not a TZif file")
    version = data[4:5]

    def block(start: int, time_size: int) -> tuple[list[int], int]:
        isut, isstd, leap, count, types, chars = struct.unpack(">6l", data[start + 20 : start + 44])
        body = start + 44
        fmt = f">{count}{'q' if time_size == 8 else 'l'}"
        times = list(struct.unpack(fmt, data[body : body + count * time_size]))
        size = count * time_size + count + types * 6 + chars + leap * (time_size + 4) + isstd + isut
        return times, body + size

    times, end = block(0, 4)
    if version < b"2":
        return sorted(times), ""
    times, end = block(end, 8)
    footer = data[end:].strip(b"\n").split(b"\n")[0].decode("ascii") if data[end:].strip() else ""
    return sorted(times), footer


def _tzif_bytes(tzid: str) -> bytes:
    """The file zoneinfo itself uses: the first match on `zoneinfo.TZPATH`, else `tzdata`."""
    for root in zoneinfo.TZPATH:
        path = os.path.join(root, tzid)
        if os.path.isfile(path):
            with open(path, "rb") as handle:
                return handle.read()
    *package, name = tzid.split("/")
    return resources.files(".".join(["tzdata.zoneinfo", *package])).joinpath(name).read_bytes()


# --- the POSIX TZ rule --------------------------------------------------------------------

_NAME = r"(?:[A-Za-z]{3,}|<[A-Za-z0-9+-]+>)"
_OFFSET = r"[+-]?\d{1,3}(?::\d{1,2}){0,2}"
_DATE = r"(?:M\d{1,2}\.\d\.\d|J\d{1,3}|\d{1,3})"
_TZ = re.compile(
    rf"(?P<std>{_NAME})(?P<stdoff>{_OFFSET})"
    rf"(?:(?P<dst>{_NAME})(?P<dstoff>{_OFFSET})?"
    rf",(?P<on>{_DATE})(?:/(?P<ontime>{_OFFSET}))?,(?P<off>{_DATE})(?:/(?P<offtime>{_OFFSET}))?)?"
)


def _seconds(text: str) -> int:
    sign = -1 if text.startswith("-") else 1
    parts = [int(p) for p in text.lstrip("+-").split(":")] + [0, 0]
    return sign * (parts[0] * 3600 + parts[1] * 60 + parts[2])


@dataclass(frozen=True)
class Rule:
    """A yearly change of a POSIX TZ rule: its date form and local time (before the change)."""

    date: str  # "Mm.w.d", "Jn" or "n"
    time: int  # seconds after midnight; may be negative or beyond a day

    def onset(self, year: int) -> dt.datetime:
        """The local onset (wall clock before the change) in `year`."""
        if self.date.startswith("M"):
            month, week, weekday = (int(p) for p in self.date[1:].split("."))
            first = dt.date(year, month, 1)
            day = 1 + (weekday - (first.weekday() + 1) % 7) % 7 + 7 * (week - 1)
            while day > _month_length(year, month):
                day -= 7
            date = dt.date(year, month, day)
        elif self.date.startswith("J"):  # 1..365, February 29 never counted
            n = int(self.date[1:])
            date = dt.date(year, 1, 1) + dt.timedelta(days=n - 1 + (n >= 60 and _leap(year)))
        else:  # 0..365, February 29 counted
            date = dt.date(year, 1, 1) + dt.timedelta(days=int(self.date))
        return dt.datetime.combine(date, dt.time()) + dt.timedelta(seconds=self.time)


@dataclass(frozen=True)
class Posix:
    std: int  # offsets in seconds east of UTC
    dst: int
    on: Rule  # standard -> daylight, at a time on the standard clock
    off: Rule  # daylight -> standard, at a time on the daylight clock

    def changes(self, year: int) -> list[tuple[int, Rule, int, int]]:
        """(UTC instant, rule, offset before, offset after) of the year's two changes, in order."""
        out = []
        for rule, before, after in ((self.on, self.std, self.dst), (self.off, self.dst, self.std)):
            at = int((rule.onset(year) - _EPOCH).total_seconds()) - before
            out.append((at, rule, before, after))
        return sorted(out, key=lambda change: change[0])


def parse_posix(text: str) -> Posix | None:
    """The TZ rule's yearly changes; None for a zone without daylight time (or no rule)."""
    match = _TZ.fullmatch(text)
    if match is None or match["dst"] is None:
        return None
    std = -_seconds(match["stdoff"])  # POSIX counts west of UTC as positive
    dst = -_seconds(match["dstoff"]) if match["dstoff"] else std + 3600
    on = Rule(match["on"], _seconds(match["ontime"]) if match["ontime"] else 7200)
    off = Rule(match["off"], _seconds(match["offtime"]) if match["offtime"] else 7200)
    return Posix(std, dst, on, off)


_DAYS = ("SU", "MO", "TU", "WE", "TH", "FR", "SA")


def _pieces(rule: Rule) -> list[tuple[int, str]] | None:
    """The rule as yearly RRULEs: [(month, rule text)], or None if RRULE cannot say it.

    `Mm.w.d/t` with 0 <= t < 24h is `BYMONTH=m;BYDAY=wD` (w=5: -1D). Times outside a day
    (tzdata has /24, /25, /26, /50 and /-1) move the weekday: "the Saturday after the
    fourth Thursday" is the Saturday among days 24-30, so the RRULE lists those days.
    A window that leaves its month is split into one RRULE per month it touches
    (days before a month counted from the previous month's end, so February's
    length never matters there); only a window past February 28 cannot be said.
    """
    if not rule.date.startswith("M"):
        return None
    month, week, weekday = (int(p) for p in rule.date[1:].split("."))
    shift = rule.time // 86_400
    if shift == 0:
        ordinal = -1 if week == 5 else week
        return [(month, f"FREQ=YEARLY;BYMONTH={month};BYDAY={ordinal}{_DAYS[weekday]}")]
    day = _DAYS[(weekday + shift) % 7]
    if week == 5:  # counted from the month's end: -7..-1, shifted
        window = range(-7 + shift, shift)
        here = [d for d in window if d < 0]
        after = [d + 1 for d in window if d >= 0]  # 0 is the next month's first day
        before: list[int] = []
        if min(here, default=-1) < -28:
            return None
    else:
        window = range(7 * (week - 1) + 1 + shift, 7 * week + 1 + shift)
        length = _month_length(2001, month)
        if month == 2 and max(window) > 28:  # where February ends depends on the year
            return None
        here = [d for d in window if 1 <= d <= length]
        after = [d - length for d in window if d > length]
        before = [d - 1 for d in window if d < 1]  # 0 is the previous month's last day
        if min(before, default=-1) < -28:
            return None
    out = []
    for m, days in ((month - 1 or 12, before), (month, here), (month % 12 + 1, after)):
        if days:
            listed = ",".join(str(d) for d in days)
            out.append((m, f"FREQ=YEARLY;BYMONTH={m};BYDAY={day};BYMONTHDAY={listed}"))
    return out


def _leap(year: int) -> bool:
    return year % 4 == 0 and (year % 100 != 0 or year % 400 == 0)


def _month_length(year: int, month: int) -> int:
    return (dt.date(year + month // 12, month % 12 + 1, 1) - dt.date(year, month, 1)).days


# --- observances ------------------------------------------------------------------------


@dataclass
class Observance:
    """One STANDARD or DAYLIGHT: onsets as DTSTART plus RDATEs, or DTSTART plus an RRULE."""

    before: int
    after: State
    onsets: list[dt.datetime]
    rrule: str | None = None

    @property
    def kind(self) -> str:
        return "DAYLIGHT" if self.after.dst else "STANDARD"

    def lines(self) -> Iterator[str]:
        yield f"BEGIN:{self.kind}"
        yield f"DTSTART:{_local(self.onsets[0])}"
        if self.rrule:
            yield f"RRULE:{self.rrule}"
        # Every onset as an RDATE, the first too (as tzurl.org writes them): the `ical`
        # package counts DTSTART only with an RRULE. One RDATE per line: vobject (so
        # Radicale) keeps only the first value of a list here.
        for onset in () if self.rrule else self.onsets:
            yield f"RDATE:{_local(onset)}"
        yield f"TZNAME:{escape(self.after.name)}"
        yield f"TZOFFSETFROM:{_offset_text(self.before)}"
        yield f"TZOFFSETTO:{_offset_text(self.after.offset)}"
        yield f"END:{self.kind}"


def _observances(tzid: str, tz: zoneinfo.ZoneInfo) -> list[Observance]:
    changes, footer = listed_changes(tzid, tz)
    first = state_at(tz, _FIRST_TS)
    out = [Observance(first.offset, first, [EARLIEST])]
    posix = parse_posix(footer)
    ruled: list[Observance] = []
    if posix is not None:
        changes, ruled = _rule_observances(tz, posix, changes)
    groups: dict[tuple[int, State], Observance] = {}
    for change in changes:
        key = (change.before.offset, change.after)
        if key not in groups:
            groups[key] = Observance(change.before.offset, change.after, [])
            out.append(groups[key])
        groups[key].onsets.append(change.onset)
    return out + ruled


def _rule_observances(
    tz: zoneinfo.ZoneInfo, posix: Posix, changes: list[Change]
) -> tuple[list[Change], list[Observance]]:
    """Split the listed changes into those kept as RDATEs and RRULE observances for the rest.

    The listed changes that the rule reproduces, counted back from the last one, are
    dropped: the RRULEs start with the earliest of them (or after the last listed
    change if none matches), and zoneinfo applies the rule after its last listed change.
    """
    last = changes[-1].at if changes else int((dt.datetime(1970, 1, 1) - _EPOCH).total_seconds())
    first_year = _clock(changes[0].at).year if changes else 1970

    def predicted() -> Iterator[tuple[int, Rule, int, int]]:  # latest first, none after `last`
        for year in range(_clock(last).year + 1, first_year - 2, -1):
            yield from (c for c in reversed(posix.changes(year)) if c[0] <= last)

    kept = len(changes)
    for at, _, before, after in predicted():
        change = changes[kept - 1] if kept else None
        if change is None or (change.at, change.before.offset, change.after.offset) != (at, before, after):
            break
        kept -= 1
    start = changes[kept].at if kept < len(changes) else (changes[-1].at + 1 if changes else _FIRST_TS)
    rule_year = _clock(start).year
    ruled: list[Observance] = []
    for rule in (posix.on, posix.off):

        def occurrences(last: int, rule: Rule = rule) -> Iterator[tuple[int, Rule, int, int]]:
            for year in range(rule_year, last + 1):
                yield from (c for c in posix.changes(year) if c[1] is rule and c[0] >= start)

        pieces = _pieces(rule)
        if pieces is None:
            ruled += _enumerated(tz, [c[0] for c in occurrences(HORIZON)])
            continue
        for month, text in pieces:  # each piece's first occurrence: within one 400-year cycle
            at = next(c[0] for c in occurrences(rule_year + 400) if _clock(c[0] + c[2]).month == month)
            change = Change(at, state_at(tz, at - 1), state_at(tz, at))
            ruled.append(Observance(change.before.offset, change.after, [change.onset], text))
    return changes[:kept], ruled


def _enumerated(tz: zoneinfo.ZoneInfo, instants: Iterable[int]) -> list[Observance]:
    groups: dict[tuple[int, State], Observance] = {}
    for at in instants:
        change = Change(at, state_at(tz, at - 1), state_at(tz, at))
        key = (change.before.offset, change.after)
        groups.setdefault(key, Observance(change.before.offset, change.after, [])).onsets.append(change.onset)
    return list(groups.values())


def _ordered(observances: list[Observance]) -> list[Observance]:
    """Observances by onset, then grouped by kind, first kind first: the order vobject (Radicale) serves back."""
    ordered = sorted(observances, key=lambda o: o.onsets[0])
    kinds = list(dict.fromkeys(o.kind for o in ordered))
    return sorted(ordered, key=lambda o: kinds.index(o.kind))


def _clock(timestamp: int) -> dt.datetime:
    """Seconds since 1970 as a naive date-time (UTC, or a local clock if an offset was added)."""
    return _EPOCH + dt.timedelta(seconds=timestamp)


def _local(value: dt.datetime) -> str:
    return f"{value.year:04}{value.month:02}{value.day:02}T{value.hour:02}{value.minute:02}{value.second:02}"


def _offset_text(seconds: int) -> str:
    """A UTC-OFFSET value: +HHMM, with seconds only when there are some (local mean times)."""
    sign = "-" if seconds < 0 else "+"
    hours, rest = divmod(abs(seconds), 3600)
    minutes, secs = divmod(rest, 60)
    return f"{sign}{hours:02}{minutes:02}" + (f"{secs:02}" if secs else "")
