"""Each user's export schedule: one row, with the next run time precomputed.

Why store `next_run_at`: the dispatcher's tick is then one indexed query
("due before now"), however many users there are, and claiming a due
schedule is one conditional UPDATE on that column (healthchecks' pattern).
"""

from __future__ import annotations

import datetime as dt

from sqlalchemy import Boolean, ForeignKey, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from store.base import Base, UTCDateTime


class Schedule(Base):
    __tablename__ = "schedules"
    __table_args__ = (Index("ix_schedules_due", "enabled", "next_run_at"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), unique=True)
    frequency: Mapped[str] = mapped_column(String(8), default="weekly")  # daily, weekly, monthly
    time_of_day: Mapped[str] = mapped_column(String(5), default="02:00")  # HH:MM, user's local time
    weekday: Mapped[int] = mapped_column(Integer, default=0)  # 0 = Monday (weekly)
    day_of_month: Mapped[int] = mapped_column(Integer, default=1)  # 1..31, clamped to month end (monthly)
    timezone: Mapped[str] = mapped_column(String(64), default="UTC")
    enabled: Mapped[bool] = mapped_column(Boolean, default=True)
    next_run_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    last_period_key: Mapped[str | None] = mapped_column(String(64))
    # Set when a permanent failure disabled the schedule: what the user must fix.
    paused_reason: Mapped[str | None] = mapped_column(Text)
    # When the schedule was last switched on (made, or enabled again): a schedule that never
    # delivered is measured from here, not from the account's creation. None on rows made
    # before it was recorded (those count from the account's creation).
    enabled_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)


class MissedRunAlert(Base):
    """The missed-run alert state of one user: which silence it is about, and when the user was last told.

    Why a row per user and not a flag on the schedule: several checkers (one per
    scheduler process) may look at the same overdue user at once; each claims the
    alert with one conditional UPDATE on this row, so exactly one of them sends it.
    `since` names the episode: the last delivery (or the schedule's start) the
    silence is measured from. A new delivery moves it, so an alert row whose
    `since` differs from the user's current one belongs to an episode that ended.
    """

    __tablename__ = "missed_run_alerts"

    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), primary_key=True)
    since: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    alert_count: Mapped[int] = mapped_column(Integer, default=0)  # alerts sent in this episode
    alerted_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)  # the last one
    reason: Mapped[str | None] = mapped_column(Text)  # the last failure, in words, as the last alert gave it
