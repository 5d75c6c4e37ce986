"""The delivery contract on the in-memory destination."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from delivery.contract import Payload, Receipt
from delivery.memory import MemoryDelivery
from errors import DeliveryError
from tests.delivery.contract import DeliveryContract, Plant, ReadBack


class TestMemoryDelivery(DeliveryContract):
    REDELIVERY = "idempotent"
    BROKEN_IS_PERMANENT = False

    @pytest.fixture
    def destination(self) -> MemoryDelivery:
        return MemoryDelivery("contract")

    @pytest.fixture
    def read_back(self, destination: MemoryDelivery) -> ReadBack:
        def read(receipt: Receipt) -> list[bytes]:
            name = receipt.location.removeprefix(destination.location(""))
            return [destination.archives[name]] if name in destination.archives else []

        return read

    @pytest.fixture
    def plant(self, destination: MemoryDelivery) -> Plant:
        def put(payload: Payload, data: bytes) -> Callable[[], bytes]:
            destination.archives[payload.filename] = data
            return lambda: destination.archives[payload.filename]

        return put

    @pytest.fixture
    def broken_destination(self) -> MemoryDelivery:
        down = DeliveryError("memory destination is down", permanent=False, user_message="The store is down.")
        return MemoryDelivery("down", failure=down)
