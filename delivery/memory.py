"""An in-process destination: keeps each delivered archive's bytes, for tests and dry runs.

Why it exists: `jobs` and the web can be tested end to end with a destination
that really receives the archive (and can be read back) without a bucket or a
mail server, and the delivery contract suite runs against it first. It keeps
the same promises as the real backends: it reads the archive and checks its
size and SHA-256, never replaces an archive already stored under the same
name, and accepts the very same archive again as already delivered.
"""

from __future__ import annotations

import hashlib
import threading

from delivery.contract import Delivery, Payload, Receipt, archive_unreadable
from errors import DeliveryError


class MemoryDelivery(Delivery):
    """Keep archives in `self.archives`, keyed by file name. `name` tells instances apart in receipts.

    `failure`, when set, is raised by every call instead: how a test plays a
    destination that is down (transient) or misconfigured (permanent).
    """

    kind = "memory"

    def __init__(self, name: str = "default", *, failure: DeliveryError | None = None) -> None:
        self.name = name
        self.failure = failure
        self.archives: dict[str, bytes] = {}
        self.manifests: dict[str, bytes] = {}
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        return f"MemoryDelivery({self.name!r}, {len(self.archives)} archive(s))"

    def location(self, filename: str) -> str:
        return f"memory://{self.name}/{filename}"

    def deliver(self, payload: Payload) -> Receipt:
        """Store the archive's bytes after checking them against the payload's size and SHA-256."""
        if self.failure is not None:
            raise self.failure
        data = read_verified(payload)
        where = self.location(payload.filename)
        with self._lock:
            existing = self.archives.get(payload.filename)
            if existing is not None and existing != data:
                raise DeliveryError(
                    f"{where} already holds a different archive",
                    permanent=True,
                    user_message=f"A different archive named {payload.filename} was already delivered; "
                    "Lifeboat never overwrites.",
                )
            self.archives[payload.filename] = data
            if payload.manifest:
                self.manifests[payload.filename] = payload.manifest
        detail = "already delivered by an earlier attempt" if existing is not None else "kept in memory"
        return Receipt(location=where, detail=f"{detail}; size and SHA-256 match")

    def test_connection(self) -> str:
        if self.failure is not None:
            raise self.failure
        return f"in-memory destination {self.name!r} holds {len(self.archives)} archive(s)"


def read_verified(payload: Payload) -> bytes:
    """The archive's bytes, or a permanent `DeliveryError` if they are not what was verified."""
    try:
        data = payload.path.read_bytes()
    except OSError as exc:
        raise archive_unreadable(payload, exc) from None
    if len(data) != payload.size or hashlib.sha256(data).hexdigest() != payload.sha256.lower():
        raise DeliveryError(
            f"{payload.path} is not the verified archive (size or SHA-256 differ)",
            permanent=True,
            user_message="The archive changed on disk after it was verified. Run the export again.",
        )
    return data
