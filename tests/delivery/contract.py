"""One delivery contract, run against every destination (vdirsyncer's `StorageTests` pattern).

A backend's test module subclasses `DeliveryContract` and only supplies
fixtures and two class attributes; a new destination is a fixture, not a new
test file. What every destination promises:

- it delivers the exact bytes (SHA-256 of what is read back) and the receipt
  says where they are;
- it never overwrites an archive of the same name that is not this archive;
- the same archive delivered again (a retried run) is either accepted as
  already delivered (`REDELIVERY = "idempotent"`) or sent as a second copy
  where copies cannot collide (`"duplicates"`: each email is a new message);
- a failure is a `DeliveryError` with a `permanent` flag and a `user_message`
  that says what to fix, and an archive that is missing or changed on disk is
  refused permanently.

Fixtures a subclass provides:
- `destination`: a working `Delivery`;
- `read_back(receipt) -> list[bytes]`: every archive copy found at the receipt's location;
- `plant(payload, data) -> reader`: put other bytes where `payload` would land and return a
  function reading them back, or `pytest.skip` if the destination has no such place;
- `broken_destination`: a `Delivery` that cannot work (with `BROKEN_IS_PERMANENT` saying
  whether that failure is permanent).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import os
from collections.abc import Callable
from pathlib import Path
from typing import ClassVar, Literal

import pytest

from delivery.contract import Delivery, Payload, Receipt
from errors import DeliveryError

WHEN = dt.datetime(2026, 11, 25, 4, 0, tzinfo=dt.UTC)
NAME = "lifeboat-alice-20261125T040000Z.zip"

ReadBack = Callable[[Receipt], list[bytes]]
Plant = Callable[[Payload, bytes], Callable[[], bytes]]


def archive_payload(folder: Path, size: int = 50_000, *, name: str = NAME, data: bytes | None = None) -> Payload:
    """A payload for a file of random bytes (or `data`) written to `folder`."""
    data = os.urandom(size) if data is None else data
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    path.write_bytes(data)
    return Payload(
        path=path,
        sha256=hashlib.sha256(data).hexdigest(),
        size=len(data),
        filename=name,
        user_email="alice@example.com",
        user_display_name="Alice",
        created_at=WHEN,
        counts={"contacts": 3, "events": 2, "notes": 1},
        manifest=json.dumps({"format": 1, "name": name}).encode(),
    )


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


class DeliveryContract:
    """The tests every destination must pass; subclasses supply the fixtures listed above."""

    REDELIVERY: ClassVar[Literal["idempotent", "duplicates"]] = "idempotent"
    BROKEN_IS_PERMANENT: ClassVar[bool] = True

    @pytest.fixture
    def payload(self, tmp_path: Path) -> Payload:
        return archive_payload(tmp_path / "outbox")

    def test_it_delivers_the_exact_bytes(self, destination: Delivery, read_back: ReadBack, payload: Payload) -> None:
        receipt = destination.deliver(payload)
        copies = read_back(receipt)
        assert [sha(copy) for copy in copies] == [payload.sha256]

    def test_the_receipt_names_where_the_archive_is(self, destination: Delivery, payload: Payload) -> None:
        receipt = destination.deliver(payload)
        assert receipt.location
        assert payload.filename in receipt.location or receipt.location.startswith("mailto:")
        assert receipt.detail

    def test_it_delivers_a_large_archive_intact(
        self, destination: Delivery, read_back: ReadBack, tmp_path: Path
    ) -> None:
        payload = archive_payload(tmp_path / "large", size=3 * 1024 * 1024 + 7)
        receipt = destination.deliver(payload)
        assert [sha(copy) for copy in read_back(receipt)] == [payload.sha256]

    def test_it_never_overwrites_a_different_archive_of_the_same_name(
        self, destination: Delivery, read_back: ReadBack, plant: Plant, payload: Payload
    ) -> None:
        plant(payload, b"someone else's file")
        with pytest.raises(DeliveryError) as caught:
            destination.deliver(payload)
        assert caught.value.permanent
        assert "overwrite" in caught.value.user_message

    def test_the_refused_name_keeps_its_file_and_other_names_still_deliver(
        self, destination: Delivery, plant: Plant, payload: Payload, tmp_path: Path
    ) -> None:
        planted = plant(payload, b"someone else's file")
        with pytest.raises(DeliveryError):
            destination.deliver(payload)
        assert planted() == b"someone else's file"
        other = archive_payload(tmp_path / "other", name="lifeboat-alice-20261126T040000Z.zip")
        assert destination.deliver(other).location

    def test_delivering_the_same_archive_twice_is_safe(
        self, destination: Delivery, read_back: ReadBack, payload: Payload
    ) -> None:
        first = destination.deliver(payload)
        second = destination.deliver(payload)
        copies = read_back(second)
        if self.REDELIVERY == "idempotent":
            assert second.location == first.location
            assert [sha(copy) for copy in copies] == [payload.sha256]
        else:
            assert [sha(copy) for copy in copies] == [payload.sha256, payload.sha256]

    def test_a_missing_archive_file_is_a_permanent_error(self, destination: Delivery, payload: Payload) -> None:
        payload.path.unlink()
        with pytest.raises(DeliveryError) as caught:
            destination.deliver(payload)
        assert caught.value.permanent and caught.value.user_message

    def test_an_archive_changed_after_verification_is_not_delivered(
        self, destination: Delivery, read_back: ReadBack, payload: Payload
    ) -> None:
        payload.path.write_bytes(b"X" * payload.size)  # same size, other bytes
        with pytest.raises(DeliveryError) as caught:
            destination.deliver(payload)
        assert caught.value.permanent and caught.value.user_message

    def test_a_broken_destination_fails_with_a_delivery_error_that_says_what_to_fix(
        self, broken_destination: Delivery, payload: Payload
    ) -> None:
        with pytest.raises(DeliveryError) as caught:
            broken_destination.deliver(payload)
        assert caught.value.permanent is self.BROKEN_IS_PERMANENT
        assert caught.value.user_message and caught.value.user_message[:1].isupper()

    def test_the_connection_test_answers_in_words(self, destination: Delivery) -> None:
        assert isinstance(destination.test_connection(), str)

    def test_a_broken_destination_fails_its_connection_test(self, broken_destination: Delivery) -> None:
        with pytest.raises(DeliveryError) as caught:
            broken_destination.test_connection()
        assert caught.value.user_message
