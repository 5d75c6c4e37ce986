"""Export runs, their history, and the archives they produce.

Why the run is a row with a lease: whoever executes it (a thread in the
embedded process or a Celery worker) claims it with a conditional UPDATE and
keeps `lease_expires_at` in the future while it works. A crashed executor stops
renewing, so the dispatcher can tell a dead run from a slow one and requeue it.
The partial unique index allows at most one active run per user on both
SQLite and PostgreSQL.
"""

from __future__ import annotations

import datetime as dt
import enum
import uuid

from sqlalchemy import ForeignKey, Index, Integer, String, Text, UniqueConstraint, text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from store.base import Base, UTCDateTime, utcnow


class RunState(enum.StrEnum):
    QUEUED = "queued"
    RUNNING = "running"
    RETRYING = "retrying"  # waiting for `not_before` after a transient failure
    DELIVERED = "delivered"
    FAILED = "failed"

    @property
    def active(self) -> bool:
        return self in ACTIVE_STATES


ACTIVE_STATES = frozenset({RunState.QUEUED, RunState.RUNNING, RunState.RETRYING})
_ACTIVE_SQL = "state IN ('queued', 'running', 'retrying')"


def new_id() -> str:
    return uuid.uuid4().hex


class Archive(Base):
    __tablename__ = "archives"

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    filename: Mapped[str] = mapped_column(String(255))
    relpath: Mapped[str] = mapped_column(String(512))  # under the archive directory
    sha256: Mapped[str] = mapped_column(String(64))
    size: Mapped[int] = mapped_column(Integer)
    contacts: Mapped[int] = mapped_column(Integer, default=0)
    calendars: Mapped[int] = mapped_column(Integer, default=0)
    events: Mapped[int] = mapped_column(Integer, default=0)
    notes: Mapped[int] = mapped_column(Integer, default=0)
    attachments: Mapped[int] = mapped_column(Integer, default=0)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    verified_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    expires_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    deleted_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)

    @property
    def counts(self) -> dict[str, int]:
        return {
            "contacts": self.contacts,
            "calendars": self.calendars,
            "events": self.events,
            "notes": self.notes,
            "attachments": self.attachments,
        }


class ExportRun(Base):
    __tablename__ = "export_runs"
    __table_args__ = (
        UniqueConstraint("user_id", "period_key"),
        Index(
            "uq_export_runs_one_active_per_user",
            "user_id",
            unique=True,
            sqlite_where=text(_ACTIVE_SQL),
            postgresql_where=text(_ACTIVE_SQL),
        ),
        Index("ix_export_runs_state_not_before", "state", "not_before"),
    )

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    trigger: Mapped[str] = mapped_column(String(16))  # manual, schedule, cli, upgrade, support
    # For scheduled runs: the period this run covers (e.g. "daily:2026-11-25"); unique per user,
    # which is what makes a second dispatcher or a redelivered task unable to double-run it.
    period_key: Mapped[str | None] = mapped_column(String(64))
    state: Mapped[str] = mapped_column(String(16), default=RunState.QUEUED)
    stage: Mapped[str | None] = mapped_column(String(32))  # contacts, calendars, notes, verify, deliver
    progress: Mapped[int] = mapped_column(Integer, default=0)  # percent
    attempt: Mapped[int] = mapped_column(Integer, default=0)
    max_attempts: Mapped[int] = mapped_column(Integer, default=5)
    not_before: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    # When the run was last handed to a worker queue; a queued run not picked up
    # for a while is handed again (a lost message must not lose the run).
    dispatched_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    lease_owner: Mapped[str | None] = mapped_column(String(128))
    lease_expires_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    started_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    finished_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    error: Mapped[str | None] = mapped_column(Text)  # safe to show the user: what went wrong and the fix
    archive_id: Mapped[str | None] = mapped_column(ForeignKey("archives.id", ondelete="SET NULL"))

    archive: Mapped[Archive | None] = relationship()
    history: Mapped[list[RunEvent]] = relationship(
        order_by="RunEvent.id", cascade="all, delete-orphan", passive_deletes=True
    )


class RunEvent(Base):
    """One line of a run's history: state changes, attempts, delivery outcomes."""

    __tablename__ = "run_events"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    run_id: Mapped[str] = mapped_column(ForeignKey("export_runs.id", ondelete="CASCADE"), index=True)
    at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    level: Mapped[str] = mapped_column(String(8), default="info")  # info, warning, error
    kind: Mapped[str] = mapped_column(String(32))  # queued, started, exported, verified, delivered, retry, failed
    message: Mapped[str] = mapped_column(Text)
