"""Deliver archives to an S3-compatible bucket the user owns, and prove they arrived intact.

One concern per module, as Radicale's storage package is split:

- `settings`: what the user enters (bucket, region, endpoint, keys or role) and tuning
- `client`: botocore configuration, credentials (keys or STS AssumeRole), the address guard
- `upload`: single and multipart conditional puts
- `checksums`: the values we expect and the verdict on what the store reports
- `errors`: botocore and socket failures mapped to `DeliveryError`s that say what to fix
- `retention`: which keys are this account's archives (Lifeboat's layout), and their manifests
- `pruning`: list them and delete what `delivery.retention_policy` decides (batches, Object Lock)
- `policy`: the least-privilege IAM and trust policy text to show the user
- `redaction`: secrets kept out of botocore's logs
- `addresses`: which network addresses are off limits (SSRF policy, operator allow-list)
- `network_guard`: every connection checked at connect time (DNS rebinding)
- `endpoint_check`: a user-typed endpoint checked when it is saved
- `backend`: `S3Delivery`, which ties them together
"""

from __future__ import annotations

from delivery.s3.backend import S3Delivery
from delivery.s3.policy import iam_policy, trust_policy_json
from delivery.s3.retention import manifest_key
from delivery.s3.settings import S3Settings, Timeouts, TransferSettings

__all__ = [
    "S3Delivery",
    "S3Settings",
    "Timeouts",
    "TransferSettings",
    "iam_policy",
    "manifest_key",
    "trust_policy_json",
]
