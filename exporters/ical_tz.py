"""VTIMEZONE components for the iCalendar writer.

Why a span: icalendar builds a VTIMEZONE from the zone database for a date range
and defaults to 1970-2038, so a weekly meeting would show the wrong offset after
2038 in clients that trust the VTIMEZONE. We default to 1970-2100 and widen the
range to cover the event when exporting one event on its own.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from functools import lru_cache

from icalendar import Timezone

from account.records import When
from exporters.ical_props import serialise
from exporters.ical_values import zone

DEFAULT_SPAN: tuple[dt.date, dt.date] = (dt.date(1970, 1, 1), dt.date(2100, 1, 1))


@lru_cache(maxsize=256)
def vtimezone(tzid: str, first: dt.date = DEFAULT_SPAN[0], last: dt.date = DEFAULT_SPAN[1]) -> bytes:
    """The serialised VTIMEZONE for `tzid` covering `first` to `last` (cached: it is slow-ish)."""
    zone(tzid)  # a clear ValueError for unknown names
    component = Timezone.from_tzid(tzid, first_date=first, last_date=last)
    for observance in component.subcomponents:
        # One RDATE per line: vobject (so Radicale) keeps only the first value of a list here.
        rdates = observance.pop("RDATE", None)
        for rdate in rdates.dts if rdates is not None else ():
            observance.add("RDATE", rdate.dt)
    # Observances grouped by kind, first kind first: the order vobject (Radicale) serves back.
    kinds = list(dict.fromkeys(o.name for o in component.subcomponents))
    component.subcomponents.sort(key=lambda o: kinds.index(o.name))
    return serialise(component)


def span_covering(whens: Iterable[When], span: tuple[dt.date, dt.date] = DEFAULT_SPAN) -> tuple[dt.date, dt.date]:
    """`span`, widened to whole years around every time in `whens`."""
    first, last = span
    for when in whens:
        day = when.date if when.date is not None else when.datetime.date() if when.datetime else None
        if day is None:
            continue
        first = min(first, dt.date(day.year, 1, 1))
        if day.year + 2 <= dt.MAXYEAR:
            last = max(last, dt.date(day.year + 2, 1, 1))
    return first, last
