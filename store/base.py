"""Declarative base and column types shared by every model.

Why a UTC type by hand: SQLite has no time zone support, so SQLAlchemy's
`DateTime(timezone=True)` hands back naive values there and aware ones on
PostgreSQL. Storing naive UTC and re-attaching UTC on load gives the same
aware datetimes on both.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import DateTime, MetaData, String, TypeDecorator
from sqlalchemy.orm import DeclarativeBase

from account.records import When

NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)


class UTCDateTime(TypeDecorator[dt.datetime]):
    impl = DateTime
    cache_ok = True

    def process_bind_param(self, value: dt.datetime | None, dialect: Any) -> dt.datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given for a UTC column")
        return value.astimezone(dt.UTC).replace(tzinfo=None)

    def process_result_value(self, value: dt.datetime | None, dialect: Any) -> dt.datetime | None:
        return None if value is None else value.replace(tzinfo=dt.UTC)


class WhenText(TypeDecorator[When]):
    """A calendar `When` as ISO 8601 text: `2009-10-05`, `2009-10-05T09:00:00` or `...Z`.

    The zone lives in a separate column (`*_tz`); see `store.calendars.when_columns`.
    Text keeps floating times floating on every database.
    """

    impl = String(32)
    cache_ok = True

    def process_bind_param(self, value: When | None, dialect: Any) -> str | None:
        if value is None:
            return None
        if value.date is not None:
            return value.date.isoformat()
        assert value.datetime is not None
        if value.datetime.tzinfo is not None:
            return value.datetime.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        return value.datetime.strftime("%Y-%m-%dT%H:%M:%S")

    def process_result_value(self, value: str | None, dialect: Any) -> When | None:
        return None if value is None else parse_when(value, None)


def parse_when(value: str, tz: str | None) -> When:
    """A `WhenText` value and its zone column as one `When` (`store.reading` reads the text raw)."""
    if len(value) == 10:
        return When(date=dt.date.fromisoformat(value), tz=tz)
    if value.endswith("Z"):
        return When(datetime=dt.datetime.fromisoformat(value[:-1]).replace(tzinfo=dt.UTC), tz=tz)
    return When(datetime=dt.datetime.fromisoformat(value), tz=tz)


# Integer primary keys are 32-bit on PostgreSQL (SQLite's are 64-bit): a larger id names
# nothing, and asking the database for it would fail in the driver (a 500) instead of a 404.
MAX_ROW_ID = 2**31 - 1


def is_row_id(value: int) -> bool:
    """Whether `value` can be the id of a row with an Integer key, on every database Lifeboat runs on."""
    return 0 < value <= MAX_ROW_ID


def utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC).replace(microsecond=0)
