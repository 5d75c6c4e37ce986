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
