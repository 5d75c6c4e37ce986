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
import os
import threading
import time

from sqlalchemy import ForeignKey, Index, Integer, String, Text, UniqueConstraint, text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from store.base import Base, UTCDateTime, utcnow


class RunState(enum.StrEnum):
    QUEUED = "queued"
    RUNNING = "running"
    RETRYING = "retrying"  # waiting for `not_before` after a transient failure
    DELIVERED = "delivered"
    FAILED = "failed"
    CANCELLED = "cancelled"  # by the user (jobs.run_lifecycle.cancel); its executor stops at its next report

    @property
    def active(self) -> bool:
        return self in ACTIVE_STATES


ACTIVE_STATES = frozenset({RunState.QUEUED, RunState.RUNNING, RunState.RETRYING})
# The trigger of a run that exports and sends nothing (`lifeboat export` without --deliver):
# History lists it, but it is no delivery (a missed-run alert does not count it).
KEPT_HERE = "cli-local"
_ACTIVE_SQL = "state IN ('queued', 'running', 'retrying')"


_id_lock = threading.Lock()
_last_stamp = 0  # the last (milliseconds << 12 | sequence) handed out by this process


def new_id() -> str:
    """A new row id: 32 hex digits laid out as a UUIDv7 (RFC 9562), so ids sort by creation time.

    Why not uuid4: a random primary key puts each new row on a random page of the
    key's B-tree (and of every index holding it, such as `run_events.run_id`). With a
    million runs, inserting a dispatcher tick's 1,000 runs dirtied ~2,000 pages with
    uuid4 keys and ~1,200 with these (EXPLAIN (ANALYZE, BUFFERS), bench/scheduler_scale.py);
    each dirtied page is also a full-page image in the WAL after a checkpoint. Time-ordered
    ids land on the right-most pages. Layout: 48-bit Unix milliseconds, version 7, a 12-bit
    sequence that keeps ids from one process strictly increasing within a
    millisecond (and across a clock step back), the variant, then 62 random bits
    from `os.urandom`, which keep ids from different processes unique and unguessable.
    """
    global _last_stamp
    with _id_lock:
        stamp = _last_stamp = max(time.time_ns() // 1_000_000 << 12, _last_stamp + 1)
    random_bits = int.from_bytes(os.urandom(8), "big") >> 2
    value = (stamp >> 12) << 80 | 0x7 << 76 | (stamp & 0xFFF) << 64 | 0b10 << 62 | random_bits
    return f"{value:032x}"


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
    # No index of its own: the unique (user_id, period_key) index starts with it (migration 0002).
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    trigger: Mapped[str] = mapped_column(String(16))  # manual, schedule, cli, cli-local (KEPT_HERE), upgrade, support
    # For scheduled runs: the period this run covers (e.g. "daily:2026-11-25"); unique per user,
    # which is what makes a second dispatcher or a redelivered task unable to double-run it.
    period_key: Mapped[str | None] = mapped_column(String(64))
    state: Mapped[str] = mapped_column(String(16), default=RunState.QUEUED)
    stage: Mapped[str | None] = mapped_column(String(32))  # contacts, calendars, notes, verify, deliver
    progress: Mapped[int] = mapped_column(Integer, default=0)  # percent
    attempt: Mapped[int] = mapped_column(Integer, default=0)
    max_attempts: Mapped[int] = mapped_column(Integer, default=5)
    not_before: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    # When the run was last handed to a worker queue, and when it may be handed again if
    # no worker has claimed it by then (a lost message must not lose the run); the wait
    # doubles with each re-send so a long backlog is not sent over and over (jobs.run_lifecycle).
    dispatched_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    redispatch_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    lease_owner: Mapped[str | None] = mapped_column(String(128))
    lease_expires_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    started_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    finished_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    error: Mapped[str | None] = mapped_column(Text)  # safe to show the user: what went wrong and the fix
    archive_id: Mapped[str | None] = mapped_column(ForeignKey("archives.id", ondelete="SET NULL"))
    # A re-send of `archive` (attached when queued; never exported anew): "destinations" or "email".
    resend_to: Mapped[str | None] = mapped_column(String(16))

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
