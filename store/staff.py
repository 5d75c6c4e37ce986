"""What support staff leave behind: the audit trail, and their second factor's recovery codes.

Why the audit table has no foreign keys: it is append-only (no update or delete
path in the application; triggers refuse both on SQLite and PostgreSQL), and a
foreign key with ON DELETE SET NULL or CASCADE would have to update or delete
audit rows when a user is removed. So each row keeps the ids and a snapshot of
the email addresses as they were when the action happened.
"""

from __future__ import annotations

import datetime as dt

from sqlalchemy import ForeignKey, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from store.base import Base, UTCDateTime, utcnow

ROLES = ("user", "support", "admin")
STAFF_ROLES = ("support", "admin")


class AuditEvent(Base):
    """One staff action or staff sign-in: who, in which role, did what to whom, why, from where, and how it ended."""

    __tablename__ = "audit_events"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow, index=True)
    actor_id: Mapped[int | None] = mapped_column(Integer)  # None: the system (e.g. a bulk re-send's own steps)
    actor_email: Mapped[str] = mapped_column(String(320))
    actor_role: Mapped[str] = mapped_column(String(16))
    action: Mapped[str] = mapped_column(String(64))  # e.g. sign_in, resend_archive, export_now, pause_schedule
    target_user_id: Mapped[int | None] = mapped_column(Integer, index=True)
    target_email: Mapped[str | None] = mapped_column(String(320))
    reason: Mapped[str] = mapped_column(Text, default="")
    address: Mapped[str | None] = mapped_column(String(64))  # the client's IP address
    outcome: Mapped[str] = mapped_column(String(16))  # ok, refused, failed
    detail: Mapped[str] = mapped_column(Text, default="")  # JSON: ids acted on (archive, run, destination), counts
    # One per form submission or API request: a second click or a retried request finds it and does nothing.
    request_key: Mapped[str | None] = mapped_column(String(128), unique=True)


class RecoveryCode(Base):
    """A one-time code a staff member uses when their authenticator is lost; stored only as its SHA-256."""

    __tablename__ = "recovery_codes"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    code_sha256: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    used_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)


class BulkResendRunner(Base):
    """Which process is running an unfinished bulk re-send, until when; the row goes when the job finishes.

    Why beside the audit log, not in it: the audit log is append-only and says
    what was done; this says who is doing it now, which changes every minute.
    A row whose `expires_at` has passed is a job whose runner died (a web
    process restarted): the next dispatch tick, in any process, claims it and
    goes on. The row is written with the job's start, in the same transaction.
    """

    __tablename__ = "bulk_resend_runners"

    job_id: Mapped[str] = mapped_column(String(16), primary_key=True)
    owner: Mapped[str] = mapped_column(String(128), default="")
    expires_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)
