"""S3 Object Lock: each delivered archive kept, unchangeable, for the days the user chose.

Why: retention and the checks after delivery protect against Lifeboat's own
mistakes and against decay; they do not protect against someone holding the
bucket's keys (a leaked key, a hostile insider at the provider, ransomware),
who can delete or overwrite every past archive. With Object Lock on the
bucket, each archive is written with a retention date, and until then:

- **governance** mode: nobody deletes or overwrites that version unless they
  hold `s3:BypassGovernanceRetention` and ask for it explicitly;
- **compliance** mode: nobody at all, not even the account's root user, and the
  date can only be moved later.

Object Lock can only be turned on for a bucket (with versioning) by its owner,
on AWS at creation or later through the console or `PutObjectLockConfiguration`;
Lifeboat never changes bucket settings, it only asks for retention per object
(`x-amz-object-lock-mode` and `-retain-until-date` on the PUT, which needs the
Content-MD5 or checksum headers every upload here carries). Pruning
(`delivery.s3.pruning`) reads each object's date first and leaves locked ones.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

from botocore.exceptions import ClientError

MODES = ("governance", "compliance")
MAX_DAYS = 36_500  # a hundred years: S3's own limit is far above anything a person means

MODE_WORDS = {
    "governance": "governance mode: only someone allowed to bypass governance retention can delete it early",
    "compliance": "compliance mode: nobody, not even the bucket owner's root user, can delete it early",
}
NOT_ENABLED = (
    "This bucket does not have S3 Object Lock turned on, so archives cannot be locked in it. "
    "Turn Object Lock on for the bucket (the bucket owner does, in the provider's console), "
    "or switch locking off in this destination's settings."
)


@dataclass(frozen=True)
class LockRule:
    """Lock each archive for `days` days from its delivery, in `mode` (governance or compliance)."""

    mode: str
    days: int

    def retain_until(self, now: dt.datetime) -> dt.datetime:
        """The retention date of an archive delivered at `now` (aware), to the whole second."""
        return (now.astimezone(dt.UTC) + dt.timedelta(days=self.days)).replace(microsecond=0)

    def put_args(self, now: dt.datetime) -> dict[str, Any]:
        """The PutObject / CreateMultipartUpload parameters that lock the object."""
        return {"ObjectLockMode": self.mode.upper(), "ObjectLockRetainUntilDate": self.retain_until(now)}

    def summary(self) -> str:
        day_words = "1 day" if self.days == 1 else f"{self.days} days"
        return f"Each archive is locked for {day_words} after delivery ({MODE_WORDS[self.mode]})."


def lock_problems(mode: object, days: object) -> list[tuple[str, str]]:
    """What is wrong with a lock setting, per field (empty: off, or a valid rule).

    Off (no mode, or "off") ignores the days, so switching a lock off is one field.
    """
    if mode in (None, "", "off"):
        return []
    if mode not in MODES:
        return [("lock_mode", "Choose governance or compliance mode, or off.")]
    if isinstance(days, bool) or not isinstance(days, int) or not 1 <= days <= MAX_DAYS:
        return [("lock_days", f"Lock archives for a whole number of days from 1 to {MAX_DAYS}.")]
    return []


def lock_rule(mode: object, days: object) -> LockRule | None:
    """The rule the two settings hold, or None when locking is off; call `lock_problems` first."""
    if mode in MODES and isinstance(days, int) and not isinstance(days, bool) and days > 0:
        return LockRule(str(mode), days)
    return None


def bucket_lock(client: Any, bucket: str) -> dict[str, Any] | None:
    """The bucket's Object Lock configuration, or None when Object Lock is off.

    Raises `ClientError` for anything but "no configuration" (access denied among them).
    """
    try:
        answer = client.get_object_lock_configuration(Bucket=bucket)
    except ClientError as exc:
        code = str((exc.response.get("Error", {}) or {}).get("Code", ""))
        if code in ("ObjectLockConfigurationNotFoundError", "ObjectLockConfigurationNotFound"):
            return None
        raise
    config = dict(answer.get("ObjectLockConfiguration") or {})
    return config if str(config.get("ObjectLockEnabled", "")).lower() == "enabled" else None


def describe_bucket_lock(config: dict[str, Any] | None, rule: LockRule | None) -> str:
    """What the connection test says about Object Lock, in words."""
    if config is None:
        return "S3 Object Lock is off for this bucket: anyone holding its keys can delete or overwrite past archives"
    default = (config.get("Rule") or {}).get("DefaultRetention") or {}
    text = "S3 Object Lock is on for this bucket"
    if default:
        amount, unit = (default["Days"], "days") if default.get("Days") else (default.get("Years"), "years")
        text += f" (its default retention: {str(default.get('Mode', '')).lower()} mode, {amount} {unit})"
    if rule is None:
        return text + "; this destination does not lock archives itself (choose a mode and days to)"
    said = rule.summary()
    return f"{text}; {said[0].lower()}{said[1:].rstrip('.')}"


def refused_for_lock(exc: ClientError) -> bool:
    """Whether a PUT was refused because the bucket has no Object Lock (the store's words vary)."""
    error = exc.response.get("Error", {}) or {}
    text = f"{error.get('Code', '')} {error.get('Message', '')}".lower()
    return "object lock" in text or "objectlock" in text


__all__ = [
    "MAX_DAYS",
    "MODES",
    "NOT_ENABLED",
    "LockRule",
    "bucket_lock",
    "describe_bucket_lock",
    "lock_problems",
    "lock_rule",
    "refused_for_lock",
]
