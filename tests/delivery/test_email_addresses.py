"""Address headers read back as exactly the intended addresses, whatever the display name.

Python 3.11.7 refolds a long display name without its quotes, so
`"Bcc: evil@attacker.test; xxx…" <alice@example.com>` came out as a `Bcc:` group
holding the attacker plus a second address: reply-all reached the attacker.
"""

from __future__ import annotations

import datetime as dt
from email import policy
from email.parser import BytesParser
from pathlib import Path

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from delivery.contract import Payload
from delivery.email import EmailDelivery
from delivery.email.headers import clean_text, mailbox
from delivery.email.message import UnsafeAddressError, build_message, check_addresses
from errors import DeliveryError
from tests.delivery.test_email import ALICE, SENDER, make_payload, smtp_settings
from tests.profiles import examples
from tests.servers.smtp import SmtpServer
from tests.strategies.text import hostile_text

REPORTED = "Bcc: evil@attacker.test; " + "x" * 80


def _to_and_from(name: str) -> tuple[list[str], list[str], str | None]:
    payload = Payload(
        path=Path("unused.zip"),
        sha256="0" * 64,
        size=0,
        filename="a.zip",
        user_email=ALICE,
        user_display_name=name,
        created_at=dt.datetime(2026, 11, 25, tzinfo=dt.UTC),
        counts={"contacts": 2},
    )
    message = build_message(payload, mailbox(SENDER, "Lifeboat"), mailbox(ALICE, name), attach=False, reason="t")
    parsed = BytesParser(policy=policy.default).parsebytes(message.head)
    to = [a.addr_spec for a in parsed["To"].addresses]
    sender = [a.addr_spec for a in parsed["From"].addresses]
    display = parsed["To"].addresses[0].display_name if to else None
    assert not any(group.display_name for group in parsed["To"].groups)
    return to, sender, display


def test_the_reported_display_name_no_longer_adds_a_recipient() -> None:
    to, sender, _ = _to_and_from(REPORTED)
    assert to == [ALICE] and sender == [SENDER]


_SPECIALS = st.sampled_from(["Bcc: ", "evil@attacker.test", ";", ",", "<", ">", '"', "\\", "(", ")", ":", " ", "x"])


@settings(max_examples=examples(300), deadline=None)
@given(
    st.one_of(
        hostile_text(),
        st.text(max_size=150),
        st.lists(_SPECIALS, max_size=40).map("".join),
        st.tuples(st.lists(_SPECIALS, max_size=8).map("".join), st.integers(0, 120)).map(lambda t: t[0] + "x" * t[1]),
    )
)
@example(REPORTED)
@example('"' + REPORTED + '"')
@example("a, Bcc: evil@attacker.test; " + "é" * 60)
def test_any_display_name_reads_back_as_exactly_the_recipient(name: str) -> None:
    to, sender, display = _to_and_from(name)
    assert to == [ALICE] and sender == [SENDER]
    # The name survives whenever the library can carry it, otherwise it is dropped; never turned
    # into something else (3.11.7 may add spaces between folded encoded words, and reads the
    # user's own quotes and backslashes as quoting).
    assert display == "" or _letters(display or "") == _letters(clean_text(name))


def _letters(text: str) -> str:
    return "".join(c for c in text if not c.isspace() and c not in '"\\')


@pytest.mark.parametrize(
    "header",
    [
        b"To: Bcc: evil@attacker.test;\r\n xxxx <alice@example.com>",
        b"To: alice@example.com, evil@attacker.test",
        b"To: evil@attacker.test",
        b"To: Friends: alice@example.com;",
        b"To: ",
    ],
)
def test_it_refuses_a_header_that_does_not_read_back_as_the_recipient(header: bytes) -> None:
    raw = b"From: lifeboat@example.net\r\n" + header + b"\r\nSubject: x\r\n\r\nbody"
    with pytest.raises(UnsafeAddressError):
        check_addresses(raw, {"from": ["lifeboat@example.net"], "to": [ALICE]})


def test_it_refuses_a_second_to_header() -> None:
    raw = b"From: a@example.net\r\nTo: alice@example.com\r\nTo: alice@example.com\r\n\r\n"
    with pytest.raises(UnsafeAddressError, match="2 headers"):
        check_addresses(raw, {"from": ["a@example.net"], "to": [ALICE]})


def test_an_unbuildable_message_is_a_permanent_delivery_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, closed_port: int
) -> None:
    import delivery.email.backend as email_module

    def never(*_: object, **__: object) -> None:
        raise UnsafeAddressError("to: reads back as a group of addresses")

    class NoServer:
        def __init__(self, *_: object, **__: object) -> None:
            pass

        def close(self) -> None:
            pass

    monkeypatch.setattr(email_module, "build_message", never)
    monkeypatch.setattr(EmailDelivery, "_open", lambda self, progress: NoServer())
    with pytest.raises(DeliveryError) as caught:
        EmailDelivery(smtp_settings(port=closed_port), ALICE).deliver(make_payload(tmp_path, size=100))
    assert caught.value.permanent and "display name" in caught.value.user_message


@pytest.mark.server
def test_the_reported_name_is_delivered_to_the_recipient_alone(smtp_server: SmtpServer, tmp_path: Path) -> None:
    EmailDelivery(smtp_settings(smtp_server), ALICE).deliver(make_payload(tmp_path, user_display_name=REPORTED))
    received = smtp_server.received[0]
    assert received.rcpt_tos == [ALICE]
    message = received.message()
    assert [a.addr_spec for a in message["To"].addresses] == [ALICE]
    assert b"evil@attacker.test" not in received.data.split(b"\r\n\r\n")[0].split(b"\r\nSubject:")[0]
