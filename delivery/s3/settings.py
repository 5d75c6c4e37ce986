"""What a user tells Lifeboat about their bucket, checked before it is used.

Why strict: every field ends up in a URL, a header or a signing scope. A
region such as `x@evil.example:443/#` would move the AWS endpoint host, and a
prefix with `..` would escape the folder the IAM policy covers, so values are
checked against their real grammar here, once, with messages the settings
form can show next to each field.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, fields
from urllib.parse import urlsplit

from delivery.retention_policy import RetentionPolicy
from delivery.s3.object_lock import LockRule, lock_problems, lock_rule
from errors import InvalidInput

MIB = 1024 * 1024

_BUCKET = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{1,61}[A-Za-z0-9]$")
_REGION = re.compile(r"^[a-z0-9]+(-[a-z0-9]+)*$")
_ACCESS_KEY = re.compile(r"^[\x21-\x7e]{3,128}$")
_ROLE_ARN = re.compile(r"^arn:aws[a-z-]*:iam::\d{12}:role/[\w+=,.@/-]{1,512}$")
_EXTERNAL_ID = re.compile(r"^[\w+=,.@:/-]{2,1224}$")
_SECRET_FIELDS = ("secret_access_key", "external_id")


def mask(value: str | None, *, keep: int = 0) -> str:
    """Show that a secret is set without showing it (optionally its last `keep` chars)."""
    if not value:
        return "None"
    if keep and len(value) >= 12:
        return f"'…{value[-keep:]}'"
    return "'***'"


@dataclass(frozen=True, kw_only=True, repr=False)
class S3Settings:
    """One user's S3 destination. Authenticate with keys, or with a role and ExternalId."""

    bucket: str = ""  # required: "" (or leaving it out) is refused below, in words, like any other bad name
    region: str = "us-east-1"
    endpoint_url: str | None = None  # None means AWS S3
    prefix: str = "lifeboat"
    path_style: bool = False
    access_key_id: str | None = None
    secret_access_key: str | None = None
    role_arn: str | None = None
    external_id: str | None = None
    # Retention (delivery.retention_policy): keep the last N, one a day/week/month/year; None or 0 is off.
    retention_keep: int | None = None
    retention_daily: int | None = None
    retention_weekly: int | None = None
    retention_monthly: int | None = None
    retention_yearly: int | None = None
    # S3 Object Lock per archive (`delivery.s3.object_lock`): "governance" or "compliance" and days; None is off.
    lock_mode: str | None = None
    lock_days: int | None = None

    def __post_init__(self) -> None:
        problems: list[tuple[str, str]] = []
        clean = {f.name: getattr(self, f.name) for f in fields(self)}
        for name in ("bucket", "region", "endpoint_url", "prefix", "access_key_id", "role_arn"):
            value = clean[name]
            if isinstance(value, str):
                clean[name] = value.strip() or None
        clean["bucket"] = clean["bucket"] or ""
        clean["region"] = (clean["region"] or "us-east-1").lower()
        clean["prefix"] = _normalise_prefix(clean["prefix"] or "", problems)

        if not _BUCKET.match(clean["bucket"]) or ".." in clean["bucket"]:
            problems.append(("bucket", "Enter the bucket name: 3 to 63 letters, digits, dots or hyphens."))
        if not _REGION.match(clean["region"]) or len(clean["region"]) > 32:
            problems.append(
                (
                    "region",
                    "Enter a region such as eu-west-1 (lower-case letters, digits, hyphens).",
                )
            )
        if clean["endpoint_url"] is not None:
            problem = _endpoint_problem(clean["endpoint_url"])
            if problem:
                problems.append(("endpoint_url", problem))
            else:
                clean["endpoint_url"] = clean["endpoint_url"].rstrip("/")
        _check_auth(clean, problems)
        try:
            RetentionPolicy.from_settings(clean)
        except InvalidInput as exc:
            problems += exc.problems
        if isinstance(clean["lock_mode"], str):
            clean["lock_mode"] = clean["lock_mode"].strip().lower()
            if clean["lock_mode"] in ("", "off"):
                clean["lock_mode"] = None
        problems += lock_problems(clean["lock_mode"], clean["lock_days"])
        if problems:
            raise InvalidInput("The S3 settings need fixing.", problems)
        for name, value in clean.items():
            object.__setattr__(self, name, value)

    @property
    def retention(self) -> RetentionPolicy:
        """The retention policy these settings hold (every count 0: keep everything)."""
        return RetentionPolicy.from_settings({f.name: getattr(self, f.name) for f in fields(self)})

    @property
    def lock(self) -> LockRule | None:
        """How each archive is locked (S3 Object Lock), or None when this destination does not lock."""
        return lock_rule(self.lock_mode, self.lock_days)

    @property
    def uses_role(self) -> bool:
        return self.role_arn is not None

    def __repr__(self) -> str:
        shown = []
        for f in fields(self):
            value = getattr(self, f.name)
            if f.name in _SECRET_FIELDS:
                shown.append(f"{f.name}={mask(value)}")
            elif f.name == "access_key_id":
                shown.append(f"{f.name}={mask(value, keep=4)}")
            else:
                shown.append(f"{f.name}={value!r}")
        return f"S3Settings({', '.join(shown)})"

    __str__ = __repr__


def folder(prefix: str) -> str:
    """The folder a prefix names, as the backend writes under it: `/a//b/` is `a/b`."""
    return "/".join(part for part in prefix.split("/") if part)


def _normalise_prefix(prefix: str, problems: list[tuple[str, str]]) -> str:
    parts = [part for part in prefix.split("/") if part]
    bad = any(p in (".", "..") or any(ord(c) < 32 or c in "\\\x7f" for c in p) for p in parts)
    if bad or len(prefix) > 512:
        problems.append(
            (
                "prefix",
                "Use a folder such as lifeboat/alice: no '..', backslashes or control characters.",
            )
        )
    return folder(prefix)


def _endpoint_problem(url: str) -> str | None:
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 (raises on a bad port)
    except ValueError:
        return "Enter the endpoint as a URL such as https://s3.example.com."
    if parts.scheme not in ("http", "https") or not parts.hostname:
        return "Enter the endpoint as a URL such as https://s3.example.com."
    if parts.username or parts.password:
        return "Leave user names and passwords out of the endpoint URL; use the key fields."
    if parts.path not in ("", "/") or parts.query or parts.fragment:
        return "Enter only the scheme, host and port of the endpoint (no path or query)."
    return None


def _check_auth(clean: dict[str, object], problems: list[tuple[str, str]]) -> None:
    key, secret = clean["access_key_id"], clean["secret_access_key"]
    role, external = clean["role_arn"], clean["external_id"]
    if role is not None or external is not None:
        if key is not None or secret is not None:
            problems.append(("role_arn", "Use either access keys or a role, not both."))
        if not isinstance(role, str) or not _ROLE_ARN.match(role):
            problems.append(("role_arn", "Enter the role ARN, e.g. arn:aws:iam::123456789012:role/lifeboat."))
        if not isinstance(external, str) or not _EXTERNAL_ID.match(external):
            problems.append(("external_id", "A role needs the external ID Lifeboat generated for you."))
        return
    if not isinstance(key, str) or not key:
        problems.append(("access_key_id", "Enter the access key ID (or use a role instead)."))
    elif not _ACCESS_KEY.match(key):
        problems.append(
            ("access_key_id", "An access key ID is 3 to 128 letters, digits or symbols, without spaces: check it.")
        )
    if not isinstance(secret, str) or not secret or any(c.isspace() for c in secret):
        problems.append(("secret_access_key", "Enter the secret access key (no spaces)."))


@dataclass(frozen=True)
class TransferSettings:
    """How archives are cut into parts (larger parts when one would need over 10,000)."""

    multipart_threshold: int = 64 * MIB
    part_size: int = 16 * MIB
    concurrency: int = 8

    def __post_init__(self) -> None:
        if self.part_size < 5 * MIB:
            raise ValueError("S3 parts must be at least 5 MiB (except the last).")
        if self.concurrency < 1 or self.multipart_threshold < 1:
            raise ValueError("concurrency and multipart_threshold must be positive")

    def part_size_for(self, size: int) -> int:
        """The part size to use for an archive of `size` bytes (S3 allows 10,000 parts)."""
        return max(self.part_size, -(-size // 10_000))


@dataclass(frozen=True)
class Timeouts:
    """Network timeouts in seconds; the job layer retries across attempts."""

    connect: float = 10.0
    read: float = 60.0
    max_attempts: int = 3  # botocore's own retries inside one attempt (standard mode)
