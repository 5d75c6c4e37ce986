"""`exporters.ical.lines.when_value` writes every kind of time as `date_or_time(value_of(...))` did."""

from __future__ import annotations

import datetime as dt

import pytest

from account.records import When
from exporters.ical.lines import MARKED, date_or_time, when_value
from exporters.ical.values import value_of

WALL = dt.datetime(2021, 3, 14, 2, 30)
TIMES = [
    When(date=dt.date(2021, 3, 14)),
    When(datetime=WALL),  # floating
    When(datetime=WALL.replace(tzinfo=dt.UTC)),
    When(datetime=WALL, tz="Europe/Berlin"),
    When(datetime=WALL, tz="America/New_York"),  # a wall time that does not exist there
    When(datetime=WALL, tz="Etc/UTC"),  # not normalised: a zone icalendar names UTC
    When(datetime=WALL, tz="Arctic/Longyearbyen"),  # icalendar knows several ids for it
    When(datetime=dt.datetime(999, 1, 2, 3, 4, 5), tz="Europe/Berlin"),  # a year of three digits
]


@pytest.mark.parametrize("when", TIMES, ids=repr)
@pytest.mark.parametrize("params", [None, MARKED, {"VALUE": "DATE-TIME"}])
def test_it_writes_the_same_value_and_parameters_as_the_aware_copy(when: When, params: dict[str, str] | None) -> None:
    for _ in range(2):  # the second time from what it remembered of the zone
        assert when_value(when, params) == date_or_time(value_of(when), params)


def test_an_unknown_zone_is_refused_every_time() -> None:
    for _ in range(2):
        with pytest.raises(ValueError, match="not a known IANA time zone"):
            when_value(When(datetime=WALL, tz="Mars/Olympus_Mons"))
