"""The delivery contract on email (aiosmtpd on loopback)."""

from __future__ import annotations

import pytest

from delivery.contract import Receipt
from delivery.email import EmailDelivery
from tests.delivery.contract import DeliveryContract, Plant, ReadBack
from tests.delivery.test_email import ALICE, smtp_settings
from tests.servers.smtp import SmtpServer


@pytest.mark.server
class TestEmailDelivery(DeliveryContract):
    # Each email is a new message: a retried run sends a second copy, which cannot
    # replace the first. SMTP gives no way to ask whether a message already arrived.
    REDELIVERY = "duplicates"
    BROKEN_IS_PERMANENT = False  # nothing listens: the server may come back

    @pytest.fixture
    def destination(self, smtp_server: SmtpServer) -> EmailDelivery:
        return EmailDelivery(smtp_settings(smtp_server), ALICE)

    @pytest.fixture
    def read_back(self, smtp_server: SmtpServer) -> ReadBack:
        def read(receipt: Receipt) -> list[bytes]:
            rcpt = receipt.location.removeprefix("mailto:")
            found = []
            for received in smtp_server.received:
                if rcpt not in received.rcpt_tos:
                    continue
                for part in received.message().iter_attachments():
                    if part.get_content_type() == "application/zip":
                        found.append(part.get_content())
            return found

        return read

    @pytest.fixture
    def plant(self) -> Plant:
        pytest.skip("every email is a new message: there is no archive of the same name to overwrite")

    @pytest.fixture
    def broken_destination(self, closed_port: int) -> EmailDelivery:
        return EmailDelivery(smtp_settings(port=closed_port), ALICE)
