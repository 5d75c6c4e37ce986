"""The delivery contract on a local folder."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from delivery.contract import Payload, Receipt
from delivery.folder import FolderDelivery, FolderSettings
from tests.delivery.contract import DeliveryContract, Plant, ReadBack


class TestFolderDelivery(DeliveryContract):
    REDELIVERY = "idempotent"
    BROKEN_IS_PERMANENT = True  # the folder does not exist: a person has to create or mount it

    @pytest.fixture
    def folder(self, tmp_path: Path) -> Path:
        path = tmp_path / "backups"
        path.mkdir()
        return path

    @pytest.fixture
    def destination(self, folder: Path) -> FolderDelivery:
        return FolderDelivery(FolderSettings(folder))

    @pytest.fixture
    def read_back(self, folder: Path) -> ReadBack:
        def read(receipt: Receipt) -> list[bytes]:
            path = Path(receipt.location)
            assert path.parent == folder
            leftovers = [p.name for p in folder.iterdir() if p.name.startswith(".")]
            assert leftovers == []  # no temporary file is left behind
            return [path.read_bytes()] if path.is_file() else []

        return read

    @pytest.fixture
    def plant(self, folder: Path) -> Plant:
        def put(payload: Payload, data: bytes) -> Callable[[], bytes]:
            (folder / payload.filename).write_bytes(data)
            return (folder / payload.filename).read_bytes

        return put

    @pytest.fixture
    def broken_destination(self, tmp_path: Path) -> FolderDelivery:
        return FolderDelivery(FolderSettings(tmp_path / "not-mounted"))
