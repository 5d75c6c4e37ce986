"""Hypothesis strategies for canonical calendar records (`Event`, `CalendarInfo`, `Calendar`).

Why canonical: round-trip equality is promised only for records in the form the
importer stores (see `account.records`), so these strategies produce that form:
text from `tests.strategies.text` (hostile but canonical), times without
microseconds, aware times in UTC, zones by IANA name (none meaning UTC), RRULEs and
alarm triggers in their canonical text, recurrence ids, RDATEs and EXDATEs in the
kind and zone of the event's start, overrides only on recurring events.
"""

from __future__ import annotations

import datetime as dt
import functools

from hypothesis import strategies as st

from account.records import Alarm, Attendee, Calendar, CalendarInfo, Event, Override, Person, When
from exporters.ical.writer import canonical_duration, canonical_rrule
from tests.strategies.text import hostile_line, hostile_text, identifiers, optional

# Zones with odd offsets (+05:45, +13:45, half-hour DST) and southern-hemisphere DST.
ZONES = (
    "Europe/Berlin",
    "America/New_York",
    "Asia/Kathmandu",
    "Australia/Lord_Howe",
    "Pacific/Chatham",
    "America/St_Johns",
    "Europe/London",
    "America/Sao_Paulo",
    "Asia/Tokyo",
)
KINDS = ("date", "floating", "utc", "zoned")

_dates = st.dates(dt.date(1900, 1, 1), dt.date(2099, 12, 31))


@functools.cache
def _naive(first_year: int) -> st.SearchStrategy[dt.datetime]:
    return st.datetimes(dt.datetime(first_year, 1, 1), dt.datetime(2099, 12, 31, 23, 59, 59)).map(
        lambda d: d.replace(microsecond=0, fold=0)
    )


@functools.cache
def whens(kind: str | None = None, tz: str | None = None) -> st.SearchStrategy[When]:
    """A canonical `When` of `kind` (any if None); zoned times use `tz` (any zone if None)."""
    if kind is None:
        return st.sampled_from(KINDS).flatmap(lambda k: whens(k, tz))
    if kind == "date":
        return _dates.map(lambda d: When(date=d))
    if kind == "floating":
        return _naive(1900).map(lambda d: When(datetime=d))
    if kind == "utc":
        return _naive(1900).map(lambda d: When(datetime=d.replace(tzinfo=dt.UTC)))
    zones = st.just(tz) if tz else st.sampled_from(ZONES)
    # zoned times within the VTIMEZONE span the writer emits by default (1970-2100)
    return st.builds(lambda d, z: When(datetime=d, tz=z), _naive(1970), zones)


def _like(start: When) -> st.SearchStrategy[When]:
    """Times of the same kind and zone as `start` (recurrence ids, RDATE, EXDATE)."""
    if start.date is not None:
        return whens("date")
    assert start.datetime is not None
    if start.datetime.tzinfo is not None:
        return whens("utc")
    return whens("zoned", start.tz) if start.tz else whens("floating")


def _end(start: When) -> st.SearchStrategy[When]:
    """An end with the start's all-day-ness: usually later, in any zone; sometimes odd."""
    if start.date is not None:
        day = start.date
        later = st.integers(0, 400).map(lambda n: When(date=day + dt.timedelta(days=n)))
        return later | whens("date")
    assert start.datetime is not None
    moment = start.datetime
    later = st.integers(0, 3 * 86400).map(lambda s: When(datetime=moment + dt.timedelta(seconds=s), tz=start.tz))
    return st.one_of(later, later, st.sampled_from(("floating", "utc", "zoned")).flatmap(whens))


def rrules(start: When) -> st.SearchStrategy[str]:
    """Canonical RRULE text for a series starting at `start`."""
    days = st.lists(
        st.sampled_from(["MO", "TU", "WE", "TH", "FR", "SA", "SU"]),
        min_size=1,
        max_size=3,
        unique=True,
    )
    limit = st.one_of(
        st.none(),
        st.integers(1, 30).map(lambda n: f"COUNT={n}"),
        _like(start).map(_until_text),
    )

    def build(freq: str, interval: int | None, byday: list[str] | None, end: str | None) -> str:
        parts = [f"FREQ={freq}"]
        if interval:
            parts.append(f"INTERVAL={interval}")
        if byday and freq in ("WEEKLY", "MONTHLY"):
            parts.append("BYDAY=" + ",".join(byday))
        if end:
            parts.append(end)
        return canonical_rrule(";".join(parts), start)

    return st.builds(
        build,
        st.sampled_from(["DAILY", "WEEKLY", "MONTHLY", "YEARLY"]),
        st.none() | st.integers(1, 4),
        st.none() | days,
        limit,
    )


def _until_text(when: When) -> str:
    if when.date is not None:
        return "UNTIL=" + when.date.strftime("%Y%m%d")
    assert when.datetime is not None
    return "UNTIL=" + when.datetime.strftime("%Y%m%dT%H%M%S") + ("Z" if when.datetime.tzinfo else "")


@functools.cache
def alarms() -> st.SearchStrategy[Alarm]:
    trigger = st.builds(
        lambda sign, d, h, m, s: canonical_duration(f"{sign}P{d}DT{h}H{m}M{s}S"),
        st.sampled_from(["", "-", "+"]),
        st.integers(0, 30),
        st.integers(0, 23),
        st.integers(0, 59),
        st.integers(0, 59),
    )
    return st.builds(
        Alarm,
        trigger=trigger,
        action=st.none() | st.sampled_from(["DISPLAY", "EMAIL", "AUDIO"]),
        description=optional(hostile_text()),
    )


@functools.cache
def emails() -> st.SearchStrategy[str]:
    """Mostly real addresses; sometimes any text, which canonical records allow."""
    return st.one_of(st.emails(), st.emails(), hostile_line(1).filter(str.strip))


@functools.cache
def people() -> st.SearchStrategy[Person]:
    return st.builds(Person, email=emails(), name=optional(hostile_text()))


@functools.cache
def attendees() -> st.SearchStrategy[Attendee]:
    def token(values: list[str]) -> st.SearchStrategy[str | None]:
        return st.none() | st.sampled_from(values)

    return st.builds(
        Attendee,
        email=emails(),
        name=optional(hostile_text()),
        role=token(["REQ-PARTICIPANT", "OPT-PARTICIPANT", "NON-PARTICIPANT", "CHAIR", "X-HOST"]),
        partstat=token(["NEEDS-ACTION", "ACCEPTED", "DECLINED", "TENTATIVE", "DELEGATED"]),
    )


_stamps = st.none() | _naive(1970).map(lambda d: d.replace(tzinfo=dt.UTC))
_urls = st.sampled_from(
    [
        "https://example.com/a?b=1&c=2",
        "https://de.wikipedia.org/wiki/Müller",
        "mailto:x@example.com",
        "https://example.com/a,b;c",
    ]
) | hostile_line(1)


@st.composite
def overrides(draw: st.DrawFn, start: When) -> Override:
    rid = draw(_like(start))
    o_start = draw(st.none() | whens())
    base = o_start or rid
    return Override(
        recurrence_id=rid,
        summary=draw(optional(hostile_text())),
        description=draw(optional(hostile_text())),
        location=draw(optional(hostile_text())),
        start=o_start,
        end=draw(st.none() | _end(base)),
        status=draw(st.none() | st.sampled_from(["TENTATIVE", "CONFIRMED", "CANCELLED"])),
    )


@functools.cache
@st.composite
def events(draw: st.DrawFn, uid: st.SearchStrategy[str] | None = None) -> Event:
    """A canonical `Event` with hostile text in every text field."""
    start = draw(whens())
    rrule = draw(st.none() | rrules(start))
    rdates = tuple(draw(st.lists(_like(start), max_size=3, unique=True)))
    recurring = bool(rrule or rdates)
    return Event(
        uid=draw(uid or identifiers()),
        start=start,
        summary=draw(optional(hostile_text())),
        description=draw(optional(hostile_text())),
        location=draw(optional(hostile_line())),
        end=draw(st.none() | _end(start)),
        rrule=rrule,
        rdates=rdates,
        exdates=tuple(draw(st.lists(_like(start), max_size=3, unique=True))) if recurring else (),
        overrides=tuple(draw(st.lists(overrides(start), max_size=3, unique_by=lambda o: o.recurrence_id)))
        if recurring
        else (),
        status=draw(st.none() | st.sampled_from(["TENTATIVE", "CONFIRMED", "CANCELLED"])),
        transparency=draw(st.none() | st.sampled_from(["OPAQUE", "TRANSPARENT"])),
        organizer=draw(st.none() | people()),
        attendees=tuple(draw(st.lists(attendees(), max_size=3))),
        alarms=tuple(draw(st.lists(alarms(), max_size=2))),
        categories=tuple(draw(st.lists(hostile_text(1).filter(bool), max_size=3))),
        url=draw(st.none() | _urls),
        created=draw(_stamps),
        updated=draw(_stamps),
    )


@functools.cache
def calendar_infos() -> st.SearchStrategy[CalendarInfo]:
    # The store holds at most 64 characters of colour on every backend (account.storable).
    colors = st.sampled_from(["#3366cc", "#FF0000FF", "red"]) | hostile_line(1).map(lambda c: c[:64]).filter(bool)
    return st.builds(
        CalendarInfo,
        name=identifiers(),
        color=st.none() | colors,
        description=optional(hostile_text()),
    )


@functools.cache
def calendars(max_events: int = 4) -> st.SearchStrategy[Calendar]:
    """A `Calendar` whose events have distinct UIDs (as the store guarantees)."""
    return st.builds(
        Calendar,
        info=calendar_infos(),
        events=st.lists(events(), max_size=max_events, unique_by=lambda e: e.uid).map(tuple),
    )
