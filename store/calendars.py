"""Calendars and events, with recurrence data, overrides, attendees and alarms."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import ForeignKey, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from account.records import When
from store.base import Base, UTCDateTime, WhenText


class CalendarRow(Base):
    __tablename__ = "calendars"
    __table_args__ = (UniqueConstraint("user_id", "name"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    position: Mapped[int] = mapped_column(Integer)
    name: Mapped[str] = mapped_column(Text)
    color: Mapped[str | None] = mapped_column(String(64))
    description: Mapped[str | None] = mapped_column(Text)


class EventRow(Base):
    __tablename__ = "events"
    __table_args__ = (UniqueConstraint("calendar_id", "uid"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    calendar_id: Mapped[int] = mapped_column(ForeignKey("calendars.id", ondelete="CASCADE"), index=True)
    position: Mapped[int] = mapped_column(Integer)
    uid: Mapped[str] = mapped_column(Text)
    summary: Mapped[str | None] = mapped_column(Text)
    description: Mapped[str | None] = mapped_column(Text)
    location: Mapped[str | None] = mapped_column(Text)
    start: Mapped[When] = mapped_column(WhenText)
    start_tz: Mapped[str | None] = mapped_column(String(64))
    end: Mapped[When | None] = mapped_column(WhenText)
    end_tz: Mapped[str | None] = mapped_column(String(64))
    rrule: Mapped[str | None] = mapped_column(Text)
    status: Mapped[str | None] = mapped_column(String(16))
    transparency: Mapped[str | None] = mapped_column(String(16))
    organizer_email: Mapped[str | None] = mapped_column(Text)
    organizer_name: Mapped[str | None] = mapped_column(Text)
    url: Mapped[str | None] = mapped_column(Text)
    created: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    updated: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    # `account.versions.record_digest` of the record the row was built from; None: unknown (never reused).
    content_sha256: Mapped[str | None] = mapped_column(String(64))

    dates: Mapped[list[EventDateRow]] = relationship(
        order_by="EventDateRow.position", cascade="all, delete-orphan", passive_deletes=True
    )
    overrides: Mapped[list[EventOverrideRow]] = relationship(
        order_by="EventOverrideRow.position", cascade="all, delete-orphan", passive_deletes=True
    )
    attendees: Mapped[list[EventAttendeeRow]] = relationship(
        order_by="EventAttendeeRow.position", cascade="all, delete-orphan", passive_deletes=True
    )
    alarms: Mapped[list[EventAlarmRow]] = relationship(
        order_by="EventAlarmRow.position", cascade="all, delete-orphan", passive_deletes=True
    )
    categories: Mapped[list[EventCategoryRow]] = relationship(
        order_by="EventCategoryRow.position", cascade="all, delete-orphan", passive_deletes=True
    )


class EventDateRow(Base):
    """An RDATE or EXDATE of a recurring event (`kind`)."""

    __tablename__ = "event_dates"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    event_id: Mapped[int] = mapped_column(ForeignKey("events.id", ondelete="CASCADE"), index=True)
    kind: Mapped[str] = mapped_column(String(8))  # rdate, exdate
    position: Mapped[int] = mapped_column(Integer)
    value: Mapped[When] = mapped_column(WhenText)
    tz: Mapped[str | None] = mapped_column(String(64))


class EventOverrideRow(Base):
    __tablename__ = "event_overrides"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    event_id: Mapped[int] = mapped_column(ForeignKey("events.id", ondelete="CASCADE"), index=True)
    position: Mapped[int] = mapped_column(Integer)
    recurrence_id: Mapped[When] = mapped_column(WhenText)
    recurrence_id_tz: Mapped[str | None] = mapped_column(String(64))
    summary: Mapped[str | None] = mapped_column(Text)
    description: Mapped[str | None] = mapped_column(Text)
    location: Mapped[str | None] = mapped_column(Text)
    start: Mapped[When | None] = mapped_column(WhenText)
    start_tz: Mapped[str | None] = mapped_column(String(64))
    end: Mapped[When | None] = mapped_column(WhenText)
    end_tz: Mapped[str | None] = mapped_column(String(64))
    status: Mapped[str | None] = mapped_column(String(32))


class EventAttendeeRow(Base):
    __tablename__ = "event_attendees"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    event_id: Mapped[int] = mapped_column(ForeignKey("events.id", ondelete="CASCADE"), index=True)
    position: Mapped[int] = mapped_column(Integer)
    email: Mapped[str] = mapped_column(Text)
    name: Mapped[str | None] = mapped_column(Text)
    role: Mapped[str | None] = mapped_column(String(64))
    partstat: Mapped[str | None] = mapped_column(String(64))


class EventAlarmRow(Base):
    __tablename__ = "event_alarms"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    event_id: Mapped[int] = mapped_column(ForeignKey("events.id", ondelete="CASCADE"), index=True)
    position: Mapped[int] = mapped_column(Integer)
    trigger: Mapped[str] = mapped_column(String(64))
    action: Mapped[str | None] = mapped_column(String(16))
    description: Mapped[str | None] = mapped_column(Text)


class EventCategoryRow(Base):
    __tablename__ = "event_categories"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    event_id: Mapped[int] = mapped_column(ForeignKey("events.id", ondelete="CASCADE"), index=True)
    position: Mapped[int] = mapped_column(Integer)
    value: Mapped[str] = mapped_column(Text)
