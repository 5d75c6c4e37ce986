"""Retention in a user's bucket: choose the policy, preview it (dry run), and prune after each delivery.

Why in `jobs/`: the policy's inputs meet here. The policy and its counts live
in the destination's settings JSON (`retention_keep`, `retention_daily`, ...;
`delivery.retention_policy`), the user's time zone on their row, and which
archives are *verified* in the history: a key is verified when a delivery
attempt of this user recorded it as delivered to this bucket, i.e. Lifeboat
HEADed (or downloaded) that very object and it matched the archive's size and
SHA-256. `delivery.s3` then lists and deletes; it never sees a row.

Network calls (listing, deleting) happen outside any transaction; only the
outcome is written afterwards, in a short write.
"""

from __future__ import annotations

import datetime as dt
import logging
from dataclasses import dataclass
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from sqlalchemy import select
from sqlalchemy.orm import Session

from delivery.contract import Delivery, Receipt
from delivery.retention_policy import SETTING_NAMES, RetentionPolicy
from delivery.s3 import S3Delivery
from delivery.s3.pruning import PruneReport
from errors import DeliveryError, InvalidInput, LifeboatError
from jobs import run_lifecycle as runs
from jobs.destination_backends import Registry
from jobs.export import archive_filename
from store import Database, DeliveryAttempt, Destination, ExportRun, User
from store.base import is_row_id

log = logging.getLogger("lifeboat.retention")
JUST_DELIVERED = "just delivered"
NOT_S3 = "Retention applies to S3-compatible buckets only; an email destination keeps nothing to prune."


def user_zone(user: User) -> dt.tzinfo:
    """The zone days, weeks and months are counted in: the user's own, UTC if it is unknown here."""
    try:
        return ZoneInfo(user.timezone or "UTC")
    except (ZoneInfoNotFoundError, ValueError):
        return dt.UTC


def name_prefix(user: User) -> str:
    """`lifeboat-<who>-`: this account's archive names, so another account's in a shared bucket never match.

    Taken from `jobs.export.archive_filename` itself, so the two cannot drift.
    """
    return archive_filename(user, dt.datetime(2000, 1, 1, tzinfo=dt.UTC)).rsplit("-", 1)[0] + "-"


def verified_keys(session: Session, user_id: int, bucket: str) -> set[str]:
    """Object keys in `bucket` that one of this user's delivery attempts verified there."""
    rows = session.scalars(
        select(DeliveryAttempt.object_key)
        .join(ExportRun, ExportRun.id == DeliveryAttempt.run_id)
        .where(
            ExportRun.user_id == user_id,
            DeliveryAttempt.outcome == "delivered",
            DeliveryAttempt.object_key.is_not(None),
            DeliveryAttempt.location.startswith(f"s3://{bucket}/", autoescape=True),
        )
    )
    return {key for key in rows if key}


def policy_of(destination: Destination) -> RetentionPolicy:
    """The destination's stored policy (every count 0 for an email destination or an unset one)."""
    return RetentionPolicy.from_settings(destination.settings) if destination.kind == "s3" else RetentionPolicy()


def policy_from_form(values: dict[str, Any]) -> RetentionPolicy:
    """A policy from request values named like the settings; absent, None or "" is 0 (off)."""
    unknown = sorted(set(values) - set(SETTING_NAMES))
    if unknown:
        raise InvalidInput(f"Unknown retention setting {unknown[0]!r}: use {', '.join(SETTING_NAMES)}.")
    return RetentionPolicy.from_settings({k: (None if v == "" else v) for k, v in values.items()})


# -- choosing the policy --------------------------------------------------------------------


def set_retention(
    session: Session, registry: Registry, user_id: int, destination_id: int, policy: RetentionPolicy
) -> Destination | None:
    """Store `policy` in the destination's settings; None if it is not `user_id`'s. The backend re-checks all."""
    row = _own(session, destination_id, user_id)
    if row is None:
        return None
    if row.kind != "s3":
        raise InvalidInput(NOT_S3, [("kind", NOT_S3)])
    user = session.get(User, user_id)
    assert user is not None
    settings = {k: v for k, v in row.settings.items() if k not in SETTING_NAMES}
    settings.update({k: v for k, v in policy.as_settings().items() if v is not None})
    row.settings = settings
    try:
        registry.backend(row, user)  # the same validation as when it was added
    except (ValueError, TypeError) as exc:
        problems = exc.problems if isinstance(exc, InvalidInput) else None
        raise InvalidInput(f"The retention policy is not valid: {str(exc).splitlines()[0]}", problems) from None
    return row


def _own(session: Session, destination_id: int, user_id: int) -> Destination | None:
    # Ids are 64-bit at most: a larger number names nothing (and would overflow the database driver).
    row = session.get(Destination, destination_id) if is_row_id(destination_id) else None
    return row if row is not None and row.user_id == user_id else None


# -- dry run and prune now ------------------------------------------------------------------


@dataclass(frozen=True)
class Preview:
    """A dry run (or a pruning on demand) of one destination: the policy used and what it found."""

    destination_id: int
    label: str
    policy: RetentionPolicy
    report: PruneReport


def run_retention(
    database: Database,
    registry: Registry,
    destination_id: int,
    user_id: int,
    *,
    policy: RetentionPolicy | None = None,
    dry_run: bool = True,
) -> Preview | None:
    """Apply `policy` (default: the stored one) to the destination's bucket; None if it is not `user_id`'s.

    Raises `InvalidInput` for an email destination and `DeliveryError` when the
    bucket cannot be listed (its `user_message` says what to fix).
    """
    with database.session() as session:
        row = _own(session, destination_id, user_id)
        user = session.get(User, user_id)
        if row is None or user is None:
            return None
        if row.kind != "s3":
            raise InvalidInput(NOT_S3, [("kind", NOT_S3)])
        chosen = policy if policy is not None else policy_of(row)
        backend = registry.backend(row, user)
        assert isinstance(backend, S3Delivery)
        verified = verified_keys(session, user_id, backend.settings.bucket)
        zone, prefix, label = user_zone(user), name_prefix(user), row.label
    with backend:
        report = backend.prune(chosen, zone, name_prefix=prefix, verified=verified, dry_run=dry_run)
    return Preview(destination_id, label, chosen, report)


# -- after a delivery -------------------------------------------------------------------------


def prune_after_delivery(
    database: Database,
    run_id: str,
    destination_id: int | None,
    backend: Delivery,
    receipt: Receipt,
    *,
    at: dt.datetime,
) -> PruneReport | None:
    """Prune the bucket just delivered to, if its destination has a policy; note the outcome in the run's history.

    Never raises: the archive is delivered whatever happens here, so a failure
    is a warning line in the run's history (and a log line), never a failed run.
    """
    if not isinstance(backend, S3Delivery) or destination_id is None or not backend.settings.retention.active:
        return None
    report: PruneReport | None = None
    try:
        with database.session() as session:
            run = session.get(ExportRun, run_id)
            user = session.get(User, run.user_id) if run is not None else None
            if user is None:
                return None
            verified = verified_keys(session, user.id, backend.settings.bucket)
            zone, prefix = user_zone(user), name_prefix(user)
        if receipt.object_key:
            verified.add(receipt.object_key)  # verified by the delivery that just returned
        pinned = {receipt.object_key: JUST_DELIVERED} if receipt.object_key else {}
        report = backend.prune(backend.settings.retention, zone, name_prefix=prefix, verified=verified, pinned=pinned)
        level = "warning" if report.refused or report.warnings else "info"  # a lock kept what the user asked
        text = " ".join([report.summary(), *report.warnings])
    except DeliveryError as exc:
        level, text = "warning", f"Retention: old archives were not pruned this time: {exc.user_message}"
    except (LifeboatError, ValueError, TypeError, OSError) as exc:
        log.warning("pruning failed", extra={"run_id": run_id}, exc_info=True)
        level, text = "warning", f"Retention: old archives were not pruned this time ({type(exc).__name__})."
    except Exception:
        log.exception("pruning crashed", extra={"run_id": run_id})
        level, text = "warning", "Retention: old archives were not pruned this time; support can see why."
    try:
        with database.session(write=True) as session:
            runs.add_event(session, run_id, "retention", text, at=at, level=level)
    except Exception:
        log.warning("could not record the pruning outcome", extra={"run_id": run_id}, exc_info=True)
    return report
