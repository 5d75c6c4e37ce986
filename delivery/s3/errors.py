"""Translate botocore failures into `DeliveryError`s that say what to fix.

Why one place: the job layer decides retry-or-stop by `permanent` alone, and
the user sees `user_message`. Credentials, missing buckets, denied actions,
wrong regions and refused endpoints will fail the same way on every retry
(permanent); timeouts, resets, throttling and 5xx are worth another attempt.
Messages never contain credentials: the store's own text goes through the
redactor and we never echo request headers.
"""

from __future__ import annotations

import errno
import socket
import ssl
from collections.abc import Iterator
from dataclasses import dataclass

from botocore import exceptions as bex

from delivery.s3.addresses import EndpointNotAllowedError
from delivery.s3.redaction import FILTER, redact
from errors import DeliveryError

_TRANSIENT_CODES = {
    "InternalError",
    "ServiceUnavailable",
    "SlowDown",
    "Throttling",
    "ThrottlingException",
    "RequestTimeout",
    "RequestTimeTooSkewed",  # our clock, not the user's settings
    "BadDigest",  # bytes damaged in transit
    "InvalidDigest",
    "XAmzContentSHA256Mismatch",
    "ExpiredToken",  # temporary credentials: the next attempt gets fresh ones
    "NoSuchUpload",
    "OperationAborted",
}
_REGION_CODES = {
    "PermanentRedirect",
    "AuthorizationHeaderMalformed",
    "IllegalLocationConstraintException",
    "IncorrectEndpoint",
    "301",
}
_DENIED_CODES = {"AccessDenied", "AllAccessDisabled", "AccountProblem", "403"}


@dataclass(frozen=True)
class Where:
    """What the failing call was aimed at, for the message."""

    bucket: str
    region: str
    endpoint: str  # shown to the user: "AWS S3" or the URL they typed
    resource: str  # e.g. arn:aws:s3:::bucket/prefix/* for the action named


def _chain(exc: BaseException) -> Iterator[BaseException]:
    """The exception and everything it wraps (causes, contexts, botocore's `error=` kwarg)."""
    seen: set[int] = set()
    todo: list[BaseException | None] = [exc]
    while todo:
        item = todo.pop()
        if item is None or id(item) in seen:
            continue
        seen.add(id(item))
        yield item
        kwargs = getattr(item, "kwargs", None)
        inner = kwargs.get("error") if isinstance(kwargs, dict) else None
        candidates = [item.__cause__, item.__context__, getattr(item, "reason", None), inner]
        todo += [c for c in candidates if isinstance(c, BaseException)]


def _find(exc: BaseException, kind: type[BaseException]) -> BaseException | None:
    return next((e for e in _chain(exc) if isinstance(e, kind)), None)


def _store_says(message: str) -> str:
    text = redact(message, FILTER.known())
    return f' The store said: "{text[:300]}"' if text else ""


def from_client_error(exc: bex.ClientError, *, action: str, where: Where) -> DeliveryError:
    """Map an S3/STS error response."""
    error = exc.response.get("Error", {}) or {}
    code = str(error.get("Code", "") or "")
    status = int(exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0) or 0)
    store_text = _store_says(str(error.get("Message", "") or ""))
    operation = getattr(exc, "operation_name", "")
    detail = f"{action} failed with {code or status}"

    if operation == "AssumeRole" or action == "sts:AssumeRole":
        transient = status >= 500 or code in _TRANSIENT_CODES
        return DeliveryError(
            f"{detail}.{store_text}",
            permanent=not transient,
            user_message=(
                "Lifeboat could not assume your IAM role. Check the role ARN, and that the "
                "role's trust policy allows Lifeboat's account with exactly the external ID "
                f"shown in your settings.{store_text}"
                if not transient
                else f"AWS STS is not answering properly.{store_text}"
            ),
        )
    if code == "InvalidAccessKeyId":
        return DeliveryError(
            detail,
            permanent=True,
            user_message=(
                f"{where.endpoint} does not recognise the access key ID. Check the access key "
                "ID in your S3 settings, and that the key is active."
            ),
        )
    if code == "SignatureDoesNotMatch":
        return DeliveryError(
            detail,
            permanent=True,
            user_message=(
                f"{where.endpoint} rejected the request signature: the secret access key does "
                "not belong to the access key ID. Enter the secret access key again."
            ),
        )
    if code in {"InvalidToken", "InvalidSecurity"}:
        return DeliveryError(
            detail,
            permanent=True,
            user_message=f"{where.endpoint} rejected the credentials. Enter the access keys again.",
        )
    if code == "NoSuchBucket":
        return DeliveryError(
            detail,
            permanent=True,
            user_message=(
                f"The bucket '{where.bucket}' does not exist at {where.endpoint}. Create it, or "
                "correct the bucket name (and endpoint) in your S3 settings."
            ),
        )
    if code == "InvalidBucketName":
        return DeliveryError(
            detail,
            permanent=True,
            user_message=f"'{where.bucket}' is not a valid bucket name for {where.endpoint}.",
        )
    if code in _REGION_CODES or (status == 301 and not code):
        hint = error.get("Region") or _header(exc, "x-amz-bucket-region")
        where_to = f"region '{hint}'" if hint else "a different region"
        return DeliveryError(
            f"{detail} (bucket in {where_to}, settings say '{where.region}')",
            permanent=True,
            user_message=(
                f"The bucket '{where.bucket}' is in {where_to}, but your S3 settings say "
                f"'{where.region}'. " + (f"Set the region to '{hint}'." if hint else "Set the bucket's region.")
            ),
        )
    if code in _DENIED_CODES or (status == 403 and code not in _TRANSIENT_CODES):
        return DeliveryError(
            f"{detail}.{store_text}",
            permanent=True,
            user_message=(
                f"Access denied for {action} on {where.resource}. Grant {action} on that "
                "resource to the credentials Lifeboat uses (the suggested IAM policy in your "
                f"S3 settings has everything Lifeboat needs).{store_text}"
            ),
        )
    if code in {"QuotaExceeded", "XMinioStorageFull", "InsufficientStorage"} or status == 507:
        return DeliveryError(
            detail,
            permanent=True,
            user_message=f"{where.endpoint} says the storage is full or over quota.{store_text}",
        )
    if code == "EntityTooLarge":
        return DeliveryError(
            detail,
            permanent=True,
            user_message=f"The archive is larger than {where.endpoint} accepts.{store_text}",
        )
    if code in _TRANSIENT_CODES or status >= 500 or status == 429:
        return DeliveryError(
            f"{detail}.{store_text}",
            permanent=False,
            user_message=(
                f"{where.endpoint} answered {code or status} ({action}); this is usually temporary.{store_text}"
            ),
        )
    return DeliveryError(
        f"{detail}.{store_text}",
        permanent=True,
        user_message=f"{where.endpoint} refused {action} with {code or status}.{store_text}",
    )


def _header(exc: bex.ClientError, name: str) -> str | None:
    headers = exc.response.get("ResponseMetadata", {}).get("HTTPHeaders", {}) or {}
    value = headers.get(name)
    return str(value) if value else None


def to_delivery_error(exc: BaseException, *, action: str, where: Where) -> DeliveryError:
    """Classify any failure of an S3 call as a `DeliveryError`."""
    if isinstance(exc, DeliveryError):
        return exc
    refused = _find(exc, EndpointNotAllowedError)
    if isinstance(refused, EndpointNotAllowedError):
        return refused
    wrapped = _find(exc, DeliveryError)
    if isinstance(wrapped, DeliveryError):
        return wrapped
    if isinstance(exc, bex.ClientError):
        return from_client_error(exc, action=action, where=where)
    if isinstance(exc, bex.SSLError) or _find(exc, ssl.SSLError) is not None:
        return DeliveryError(
            f"TLS failure talking to {where.endpoint}",
            permanent=True,
            user_message=(
                f"The TLS certificate of {where.endpoint} could not be verified. Check the "
                "endpoint URL's host name; the store needs a certificate from a public CA."
            ),
        )
    if isinstance(exc, bex.ConnectTimeoutError | bex.ReadTimeoutError) or _find(exc, TimeoutError):
        what = "connecting to" if isinstance(exc, bex.ConnectTimeoutError) else "waiting for"
        return DeliveryError(
            f"timed out {what} {where.endpoint} ({action})",
            permanent=False,
            user_message=f"Timed out {what} {where.endpoint}.",
        )
    gai = _find(exc, socket.gaierror)
    if isinstance(gai, socket.gaierror):
        permanent = gai.errno in {socket.EAI_NONAME, getattr(socket, "EAI_NODATA", -5)}
        return DeliveryError(
            f"name resolution failed for {where.endpoint}: {gai.strerror}",
            permanent=permanent,
            user_message=(
                f"The host name of {where.endpoint} does not exist. Check the endpoint URL."
                if permanent
                else f"Could not look up {where.endpoint} right now."
            ),
        )
    refused_conn = _find(exc, ConnectionRefusedError)
    if refused_conn is not None or _errno_in(exc, {errno.ECONNREFUSED}):
        return DeliveryError(
            f"connection refused by {where.endpoint}",
            permanent=False,
            user_message=(
                f"Nothing accepted the connection at {where.endpoint}. Check the endpoint URL "
                "(host and port) and that the store is running."
            ),
        )
    if isinstance(exc, bex.EndpointConnectionError | bex.ConnectionError | bex.HTTPClientError) or (
        _find(exc, ConnectionError) is not None
    ):
        return DeliveryError(
            f"connection to {where.endpoint} failed ({action})",
            permanent=False,
            user_message=f"The connection to {where.endpoint} failed.",
        )
    if isinstance(exc, bex.NoCredentialsError | bex.PartialCredentialsError):
        return DeliveryError(
            "no usable credentials",
            permanent=True,
            user_message="No S3 credentials are set. Enter an access key and secret, or a role.",
        )
    if isinstance(exc, bex.ParamValidationError):
        return DeliveryError(
            f"invalid request for {action}",
            permanent=True,
            user_message=f"Lifeboat built an invalid {action} request from your S3 settings.",
        )
    return DeliveryError(
        f"{action} failed: {type(exc).__name__}",
        permanent=False,
        user_message=f"Delivery to {where.endpoint} failed unexpectedly.",
    )


def _errno_in(exc: BaseException, numbers: set[int]) -> bool:
    return any(isinstance(e, OSError) and e.errno in numbers for e in _chain(exc))
