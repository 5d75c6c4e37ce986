"""Keep credentials out of the logs, even at DEBUG.

Why this exists: at DEBUG botocore logs request parameters (the ExternalId of
AssumeRole), response bodies (the temporary SecretAccessKey and SessionToken
STS returns), canonical requests (the security token) and headers
(`Authorization` with the access key ID). An operator who turns on DEBUG to
chase a delivery problem must not collect users' secrets.

Two layers: patterns for the shapes botocore prints, and the exact values of
secrets Lifeboat knows about (registered while a client is in use). The filter
sits on each AWS SDK logger, so it runs before any handler (pytest's caplog
included) sees the record.
"""

from __future__ import annotations

import logging
import re
import threading
from collections import Counter
from collections.abc import Iterable

MASK = "***"
_MIN_SECRET = 6  # shorter values would blank out ordinary words

_PATTERNS = [
    # XML bodies: <SecretAccessKey>…</SecretAccessKey>
    re.compile(r"(<(SecretAccessKey|SessionToken|ExternalId|AccessKeyId)>)[^<]*(</\2>)"),
    # dict reprs and query strings: 'ExternalId': 'x', ExternalId=x, "SecretAccessKey": "x"
    re.compile(
        r"((?:ExternalId|SecretAccessKey|SessionToken|AccessKeyId|aws_secret_access_key|"
        r"aws_session_token|secret_access_key|session_token|external_id)['\"]?\s*[:=]\s*b?['\"]?)"
        r"[^'\"&,\s}<]+",
        re.IGNORECASE,
    ),
    # headers and canonical requests: x-amz-security-token: …
    re.compile(r"(x-amz-security-token['\"]?\s*[:=]\s*b?['\"]?)[^'\"\s,}]+", re.IGNORECASE),
    # Authorization: … Credential=AKIA…/20261125/…
    re.compile(r"(Credential=)[^/\s,'\"]+"),
]
_LOGGER_PREFIXES = ("botocore", "boto3", "s3transfer", "urllib3")


def redact(text: str, secrets: Iterable[str] = ()) -> str:
    """Mask known credential shapes and the given secret values in `text`."""
    for value in sorted(set(secrets), key=len, reverse=True):
        if len(value) >= _MIN_SECRET:
            text = text.replace(value, MASK)
    for pattern in _PATTERNS:
        text = pattern.sub(lambda m: m.group(1) + MASK + (m.group(3) if m.re.groups >= 3 else ""), text)
    return text


class RedactingFilter(logging.Filter):
    """A logging filter that rewrites each record's message with secrets masked."""

    def __init__(self) -> None:
        super().__init__("lifeboat-redact")
        self._lock = threading.Lock()
        self._secrets: Counter[str] = Counter()

    def register(self, *values: str | None) -> None:
        """Start masking these exact values (counted, so overlapping clients can share one)."""
        with self._lock:
            self._secrets.update(v for v in values if v and len(v) >= _MIN_SECRET)

    def unregister(self, *values: str | None) -> None:
        """Stop masking values registered by a client that is done."""
        with self._lock:
            self._secrets.subtract(v for v in values if v and len(v) >= _MIN_SECRET)
            self._secrets = +self._secrets

    def known(self) -> list[str]:
        """The exact values being masked right now."""
        with self._lock:
            return list(self._secrets)

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:  # a broken format string is not ours to fix; mask what we can
            message = str(record.msg)
        cleaned = redact(message, self.known())
        if cleaned != message or record.args:
            record.msg, record.args = cleaned, None
        return True


FILTER = RedactingFilter()
_install_lock = threading.Lock()


def install() -> RedactingFilter:
    """Attach the filter to every AWS SDK and urllib3 logger that exists (idempotent).

    Called after botocore is imported and whenever a client is built, so
    loggers created by late imports are covered too.
    """
    with _install_lock:
        names = [name for name in list(logging.Logger.manager.loggerDict) if name.split(".", 1)[0] in _LOGGER_PREFIXES]
        for name in {*names, *_LOGGER_PREFIXES}:
            logger = logging.getLogger(name)
            if FILTER not in logger.filters:
                logger.addFilter(FILTER)
    return FILTER
