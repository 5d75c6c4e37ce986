"""Where a user's archives go (an S3-compatible bucket, an email address), and each attempt.

Why settings and secrets are separate columns: the settings (bucket, region,
prefix, recipient) are shown back to the user; the secret (access keys) is a
Fernet token decrypted only by the delivery layer at delivery time and never
shown, logged or returned by any page or API.
"""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

from sqlalchemy import BigInteger, Boolean, ForeignKey, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from store.base import Base, UTCDateTime, utcnow


class Destination(Base):
    __tablename__ = "destinations"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    kind: Mapped[str] = mapped_column(String(16))  # s3, email
    label: Mapped[str] = mapped_column(String(200))
    settings_json: Mapped[str] = mapped_column(Text, default="{}")
    secret_token: Mapped[str | None] = mapped_column(Text)  # encrypted; see delivery.secrets
    enabled: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    # The outcome of the last delivery or connection test, shown beside the destination.
    status: Mapped[str] = mapped_column(String(16), default="untested")  # untested, ok, warning, error
    status_message: Mapped[str | None] = mapped_column(Text)
    status_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    # When the owner of an email destination's address agreed to receive archives (the link mailed
    # to it, revision 0018); None: waiting, and nothing is sent there (`jobs.destination_confirmation`).
    # Rows made before 0018 are confirmed as of their creation; a bucket needs no confirmation.
    confirmed_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    confirm_sent_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)  # the latest link mailed
    # The mail server's answer when it refused that link (revision 0020); None once a new one goes out.
    confirm_refused: Mapped[str | None] = mapped_column(Text)

    @property
    def settings(self) -> dict[str, Any]:
        value = json.loads(self.settings_json or "{}")
        return value if isinstance(value, dict) else {}

    @settings.setter
    def settings(self, value: dict[str, Any]) -> None:
        self.settings_json = json.dumps(value, sort_keys=True)


class DeliveryAttempt(Base):
    """One try to deliver one run's archive to one destination: the truth the history shows."""

    __tablename__ = "delivery_attempts"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    run_id: Mapped[str] = mapped_column(ForeignKey("export_runs.id", ondelete="CASCADE"), index=True)
    destination_id: Mapped[int | None] = mapped_column(ForeignKey("destinations.id", ondelete="SET NULL"))
    at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    outcome: Mapped[str] = mapped_column(String(16))  # delivered, transient, permanent
    location: Mapped[str | None] = mapped_column(Text)
    message: Mapped[str] = mapped_column(Text)
    # The receipt, as the destination reported it (None where it does not apply):
    # the S3 object key, version id (versioned buckets) and ETag, or the email's Message-ID.
    object_key: Mapped[str | None] = mapped_column(Text)
    version_id: Mapped[str | None] = mapped_column(String(1024))
    etag: Mapped[str | None] = mapped_column(String(256))
    message_id: Mapped[str | None] = mapped_column(String(998))
    # The SHA-256 of the archive file delivered (`lifeboat verify --expect`); NULL before revision 0012.
    archive_sha256: Mapped[str | None] = mapped_column(String(64))
    # Set when the archive was sealed to the user's key first (revision 0015): the ciphertext the
    # destination holds (what scrub checks) and the key it was encrypted to, as shown to people.
    sealed_sha256: Mapped[str | None] = mapped_column(String(64))
    sealed_size: Mapped[int | None] = mapped_column(BigInteger)
    sealed_to: Mapped[str | None] = mapped_column(String(300))


class DestinationCheck(Base):
    """The latest later check of the newest archive delivered to one destination (`jobs.scrub`).

    Why a row per destination, not per check: what a user and support need is
    "is my latest copy still there, and since when do we know"; each check's
    words also go into the run's history (`RunEvent`), which keeps the past.
    `checked_at` orders the work (oldest first), so a scrub stopped half-way
    resumes where it stopped; `deep_checked_at` paces the full downloads.
    """

    __tablename__ = "destination_checks"

    destination_id: Mapped[int] = mapped_column(ForeignKey("destinations.id", ondelete="CASCADE"), primary_key=True)
    object_key: Mapped[str] = mapped_column(Text)
    run_id: Mapped[str | None] = mapped_column(ForeignKey("export_runs.id", ondelete="SET NULL"))
    state: Mapped[str] = mapped_column(String(16))  # healthy, missing, changed, unreadable, error
    detail: Mapped[str] = mapped_column(Text)
    checked_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, index=True)
    deep_checked_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    # When a check first found `state` (a failed check, "error", keeps it): pages say "missing since …".
    # NULL: checked before revision 0018 (pages then fall back to `checked_at`).
    since: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
