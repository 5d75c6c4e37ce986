"""The delivery contract on S3 (moto's server on loopback)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from urllib.parse import urlsplit

import pytest

from delivery.contract import Payload, Receipt
from delivery.s3 import S3Delivery
from tests.delivery.contract import DeliveryContract, Plant, ReadBack
from tests.delivery.test_s3 import delivery
from tests.servers.s3 import MotoS3


@pytest.mark.server
class TestS3Delivery(DeliveryContract):
    REDELIVERY = "idempotent"  # an identical object at the key is verified and accepted
    BROKEN_IS_PERMANENT = True  # no such bucket

    @pytest.fixture
    def destination(self, moto_server: MotoS3, s3_bucket: str) -> Iterator[S3Delivery]:
        with delivery(moto_server.url, s3_bucket) as target:
            yield target

    @pytest.fixture
    def read_back(self, moto_server: MotoS3) -> ReadBack:
        def read(receipt: Receipt) -> list[bytes]:
            parts = urlsplit(receipt.location)
            assert parts.scheme == "s3"
            return [moto_server.client().get_object(Bucket=parts.netloc, Key=parts.path[1:])["Body"].read()]

        return read

    @pytest.fixture
    def plant(self, moto_server: MotoS3, s3_bucket: str, destination: S3Delivery) -> Plant:
        def put(payload: Payload, data: bytes) -> Callable[[], bytes]:
            key = destination.object_key(payload)
            client = moto_server.client()
            client.put_object(Bucket=s3_bucket, Key=key, Body=data)
            return lambda: client.get_object(Bucket=s3_bucket, Key=key)["Body"].read()

        return put

    @pytest.fixture
    def broken_destination(self, moto_server: MotoS3) -> Iterator[S3Delivery]:
        with delivery(moto_server.url, "lifeboat-no-such-bucket") as target:
            yield target
