"""The delivery contract: put one verified archive somewhere the provider cannot lose it.

Why a tiny base class: each destination (local disk, S3, email, memory for
tests) implements the same two calls, so one contract test suite runs against
every backend, and `jobs/` never needs to know which one it is driving.
"""

from __future__ import annotations

import datetime as dt
from abc import ABC, abstractmethod
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from errors import DeliveryError


@dataclass(frozen=True)
class Payload:
    """One verified archive, ready to deliver."""

    path: Path  # the verified zip on local disk
    sha256: str  # hex SHA-256 of the whole zip
    size: int
    filename: str  # e.g. lifeboat-alice-20261125T040000Z.zip
    user_email: str
    user_display_name: str | None
    created_at: dt.datetime  # aware UTC
    counts: Mapping[str, int] = field(default_factory=dict)  # contacts, events, notes, ...
    manifest: bytes = b""  # manifest.json of the archive, delivered beside it where possible
    download_url: str | None = None  # signed, expiring link (for emails of large archives)
    # Set when the archive was sealed to the user's own key (`delivery.sealing`): then `path`,
    # `sha256`, `size` and `filename` are the ciphertext's, and these say what it holds and how to open it.
    sealed_to: str = ""  # e.g. "age key age1abc…wxyz"
    plain_sha256: str = ""  # the archive's own SHA-256, once decrypted
    decrypt_hint: str = ""  # the standard tool's command that opens it


@dataclass(frozen=True)
class Receipt:
    """Where the archive landed and how it was checked; shown in the run history.

    The optional fields are the destination's own proof, as its server returned
    it, so a user (or support) can find the very object or message: the S3 object
    key with the version id (versioned buckets) and ETag it was stored under, or
    the Message-ID header the email was sent with. None where it does not apply.
    """

    location: str  # e.g. s3://bucket/prefix/2026/11/lifeboat-...zip or mailto:alice@example.com
    detail: str = ""  # e.g. "verified by HEAD: size and SHA-256 match"
    warnings: tuple[str, ...] = ()  # e.g. "store lacks SHA-256 checksum headers; verified by re-download"
    object_key: str | None = None  # S3: the key inside the bucket
    version_id: str | None = None  # S3: the version the store gave this object (versioned buckets only)
    etag: str | None = None  # S3: the ETag the store returned, without its quotes
    message_id: str | None = None  # email: the Message-ID header, e.g. <...@example.net>


class Delivery(ABC):
    """A destination for archives. Missing settings mean "disabled", not a crash."""

    kind: str = "base"

    @abstractmethod
    def deliver(self, payload: Payload) -> Receipt:
        """Deliver `payload` and confirm it arrived intact, or raise `errors.DeliveryError`."""

    def test_connection(self) -> str:
        """Check the destination works without delivering an archive; return a summary.

        Raise `errors.DeliveryError` naming precisely what failed.
        """
        return "nothing to test"


def archive_unreadable(payload: Payload, exc: OSError) -> DeliveryError:
    """The permanent error for an archive file a backend cannot open: the same words from every backend."""
    return DeliveryError(
        f"cannot read the archive {payload.path}: {exc.strerror}",
        permanent=True,
        user_message="The archive file is missing on the server. Run the export again.",
    )
