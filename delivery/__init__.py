"""Delivery of verified archives: local download, S3-compatible buckets, email.

`delivery/` knows no runs or HTTP: it takes a `Payload` and returns a
`Receipt` or raises `errors.DeliveryError`.
"""

from __future__ import annotations

from delivery.registry import destinations_for, failure_notifier

__all__ = ["destinations_for", "failure_notifier"]
