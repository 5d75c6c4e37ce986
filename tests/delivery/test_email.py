"""Email delivery against a real aiosmtpd server on loopback.

The server fixtures (`tests/servers/smtp.py`) record what arrives over the
socket, so these tests check the message a mail client would see: parsed back
with the default policy, attachment bytes hashed, headers counted.
"""

from __future__ import annotations

import contextlib
import dataclasses
import datetime as dt
import hashlib
import logging
import random
import socket
import struct
import threading
import time
import tracemalloc
from collections.abc import Iterator
from contextlib import contextmanager
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from delivery.contract import Payload
from delivery.email import EmailDelivery, SmtpSettings
from delivery.email.headers import HeaderValueError, clean_text, mailbox, parse_address, safe_filename
from delivery.email.message import build_message
from errors import DeliveryError
from tests.profiles import examples
from tests.servers.smtp import (
    DROP,
    REJECT_DATA,
    REJECT_RCPT,
    SMTP_PASSWORD,
    SMTP_USER,
    TEMPFAIL_DATA,
    TEMPFAIL_RCPT,
    SmtpServer,
)
from tests.strategies.text import hostile_text

SENDER = "lifeboat@example.net"
ALICE = "alice@example.com"
COUNTS = {"contacts": 12, "calendars": 2, "events": 40, "notes": 5, "attachments": 1}
MANIFEST = b'{"format": 1, "files": {"contacts.vcf": {"sha256": "00", "size": 1}}}\n'
URL = "https://lifeboat.example.net/a/signed-token?expires=1764043200"
INJECTIONS = [
    "Mallory\r\nBcc: x@evil.example",
    "=?UTF-8?Q?=0A?=Bcc: x@evil.example",
    "Eve=?utf-8?q?=0D=0ABcc:_x@evil.example?= Smith",
    "Eve\u2028Bcc: x@evil.example",
    "Eve\u2029Bcc: x@evil.example",
    "Eve\u0085Bcc: x@evil.example",
    "Eve\nBcc: x@evil.example",
    "=?\nUTF-8?Q?=0A?=Bcc: x@evil.example",
    '"Eve" <x@evil.example>, Bcc',
]
EXPECTED_HEADERS = [
    b"from",
    b"to",
    b"subject",
    b"date",
    b"message-id",
    b"auto-submitted",
    b"mime-version",
    b"content-type",
]


def make_payload(tmp_path: Path, size: int = 200_000, **changes: Any) -> Payload:
    """A payload whose file really has `size` random bytes and the matching SHA-256."""
    data = random.Random(size).randbytes(size)
    path = tmp_path / "lifeboat-alice-20261125T040000Z.zip"
    path.write_bytes(data)
    fields: dict[str, object] = {
        "path": path,
        "sha256": hashlib.sha256(data).hexdigest(),
        "size": size,
        "filename": path.name,
        "user_email": ALICE,
        "user_display_name": "Alice Example",
        "created_at": dt.datetime(2026, 11, 25, 4, 0, tzinfo=dt.UTC),
        "counts": COUNTS,
        "manifest": MANIFEST,
        "download_url": None,
    }
    return Payload(**{**fields, **changes})


def smtp_settings(server: SmtpServer | None = None, port: int = 25, **changes: Any) -> SmtpSettings:
    values: dict[str, Any] = {
        "host": server.host if server else "127.0.0.1",
        "port": server.port if server else port,
        "security": "none",
        "sender_address": SENDER,
        "sender_name": "Lifeboat",
        "timeout": 5.0,
    }
    return SmtpSettings(**{**values, **changes})


def only_message(server: SmtpServer) -> EmailMessage:
    assert len(server.received) == 1
    return server.received[0].message()


def attachments(msg: EmailMessage) -> dict[str, bytes]:
    found: dict[str, bytes] = {}
    for part in msg.iter_attachments():
        assert isinstance(part, EmailMessage)
        name = part.get_filename()
        assert name is not None
        found[name] = part.get_content()
    return found


def body_text(msg: EmailMessage) -> str:
    part = msg.get_body(preferencelist=("plain",))
    assert part is not None
    return str(part.get_content())


@pytest.mark.server
def test_it_attaches_the_archive_with_its_sha256_and_says_what_is_inside(
    smtp_server: SmtpServer, tmp_path: Path
) -> None:
    payload = make_payload(tmp_path)
    receipt = EmailDelivery(smtp_settings(smtp_server), ALICE).deliver(payload)

    received = smtp_server.received[0]
    assert (received.mail_from, received.rcpt_tos) == (SENDER, [ALICE])
    assert any(option.startswith("SIZE=") for option in received.mail_options)
    msg = only_message(smtp_server)
    files = attachments(msg)
    assert hashlib.sha256(files[payload.filename]).hexdigest() == payload.sha256
    assert files["manifest.json"] == MANIFEST
    zip_part = next(p for p in msg.iter_attachments() if p.get_filename() == payload.filename)
    assert zip_part.get_content_type() == "application/zip"
    subject = str(msg["Subject"])
    for phrase in ("12 contacts", "2 calendars", "40 events", "5 notes", "1 attachment"):
        assert phrase in subject
        assert phrase in body_text(msg)
    text = body_text(msg)
    assert payload.sha256 in text
    assert f"sha256sum {payload.filename}" in text
    assert f"shasum -a 256 {payload.filename}" in text
    assert f"lifeboat verify {payload.filename}" in text
    assert "195.3 KB (200,000 bytes)" in text
    html = msg.get_body(preferencelist=("html",))
    assert html is not None and payload.sha256 in html.get_content()
    assert receipt.location == f"mailto:{ALICE}"
    assert "queued as TEST1" in receipt.detail and receipt.warnings == ()


@pytest.mark.server
def test_it_dot_stuffs_lines_that_start_with_a_dot(smtp_server: SmtpServer, tmp_path: Path) -> None:
    # 110 dots overflow a 76-character quoted-printable line, so a body line
    # starts with "."; unstuffed, the server would drop one dot per line.
    name = "Dot" + "." * 110
    EmailDelivery(smtp_settings(smtp_server), ALICE).deliver(make_payload(tmp_path, size=1000, user_display_name=name))
    assert f"Hello {name}," in body_text(only_message(smtp_server))


@pytest.mark.server
def test_it_sends_a_download_link_when_the_archive_is_over_the_limit(smtp_server: SmtpServer, tmp_path: Path) -> None:
    payload = make_payload(tmp_path, size=5000, download_url=URL)
    receipt = EmailDelivery(smtp_settings(smtp_server), ALICE, attach_limit_bytes=1000).deliver(payload)

    msg = only_message(smtp_server)
    assert list(attachments(msg)) == ["manifest.json"]
    assert URL in body_text(msg) and payload.sha256 in body_text(msg)
    assert "attachment limit" in body_text(msg)
    assert receipt.warnings and "download link" in receipt.warnings[0]


def test_it_refuses_an_archive_over_the_limit_without_a_link(tmp_path: Path, closed_port: int) -> None:
    delivery = EmailDelivery(smtp_settings(port=closed_port), ALICE, attach_limit_bytes=1000)
    with pytest.raises(DeliveryError) as caught:
        delivery.deliver(make_payload(tmp_path, size=5000))
    assert caught.value.permanent
    assert "attachment limit" in caught.value.user_message and "S3" in caught.value.user_message


@pytest.mark.server
def test_it_falls_back_to_the_link_when_the_server_announces_a_smaller_size(
    smtp_small_server: SmtpServer, tmp_path: Path
) -> None:
    delivery = EmailDelivery(smtp_settings(smtp_small_server), ALICE)
    receipt = delivery.deliver(make_payload(tmp_path, size=30_000, download_url=URL))
    assert URL in body_text(only_message(smtp_small_server))
    assert "accepts at most" in receipt.warnings[0]

    with pytest.raises(DeliveryError) as caught:
        delivery.deliver(make_payload(tmp_path, size=30_000))
    assert caught.value.permanent and "accepts at most" in caught.value.user_message


@pytest.mark.server
@pytest.mark.parametrize("step", [TEMPFAIL_DATA, TEMPFAIL_RCPT])
def test_it_reports_451_as_transient_and_the_retry_succeeds(smtp_server: SmtpServer, tmp_path: Path, step: str) -> None:
    smtp_server.script(step)
    delivery = EmailDelivery(smtp_settings(smtp_server), ALICE)
    payload = make_payload(tmp_path)
    with pytest.raises(DeliveryError) as caught:
        delivery.deliver(payload)
    assert not caught.value.permanent and "451" in caught.value.user_message
    assert smtp_server.received == []

    delivery.deliver(payload)  # what the job layer's retry does
    files = attachments(only_message(smtp_server))
    assert hashlib.sha256(files[payload.filename]).hexdigest() == payload.sha256


@pytest.mark.server
def test_it_reports_a_refused_recipient_as_permanent_naming_the_address(
    smtp_server: SmtpServer, tmp_path: Path
) -> None:
    smtp_server.script(REJECT_RCPT)
    with pytest.raises(DeliveryError) as caught:
        EmailDelivery(smtp_settings(smtp_server), ALICE).deliver(make_payload(tmp_path))
    error = caught.value
    assert error.permanent
    assert f"refused recipient {ALICE}: 550 5.1.1" in error.user_message
    assert "check the address" in error.user_message


@pytest.mark.server
def test_it_reports_a_rejected_message_as_permanent(smtp_server: SmtpServer, tmp_path: Path) -> None:
    smtp_server.script(REJECT_DATA)
    with pytest.raises(DeliveryError) as caught:
        EmailDelivery(smtp_settings(smtp_server), ALICE).deliver(make_payload(tmp_path))
    assert caught.value.permanent and "550 5.7.1 Message rejected" in caught.value.user_message


@pytest.mark.server
def test_it_reports_a_connection_dropped_during_data_as_transient(smtp_server: SmtpServer, tmp_path: Path) -> None:
    smtp_server.script(DROP)
    delivery = EmailDelivery(smtp_settings(smtp_server), ALICE)
    with pytest.raises(DeliveryError) as caught:
        delivery.deliver(make_payload(tmp_path))
    assert not caught.value.permanent and "closed the connection during DATA" in str(caught.value)
    delivery.deliver(make_payload(tmp_path))
    assert len(smtp_server.received) == 1


@pytest.mark.server
@pytest.mark.parametrize("name", INJECTIONS)
def test_it_never_lets_a_display_name_add_a_header(smtp_server: SmtpServer, tmp_path: Path, name: str) -> None:
    counts = {**COUNTS, "notes=?UTF-8?Q?=0A?=Bcc: y@evil.example": 1}
    EmailDelivery(smtp_settings(smtp_server), ALICE).deliver(
        make_payload(tmp_path, user_display_name=name, counts=counts)
    )
    received = smtp_server.received[0]
    assert received.rcpt_tos == [ALICE]
    header_lines = received.data.split(b"\r\n\r\n")[0].lower().split(b"\r\n")
    assert not any(line.startswith(b"bcc") for line in header_lines)
    msg = received.message()
    names = [key.lower() for key in msg.keys()]  # noqa: SIM118 (keys() keeps repeats)
    assert "bcc" not in names and names.count("to") == 1 and names.count("subject") == 1
    assert [a.addr_spec for a in msg["To"].addresses] == [ALICE]
    assert "\n" not in str(msg["Subject"]) and "\n" not in msg["To"].addresses[0].display_name


@settings(max_examples=examples(60), deadline=None)
@given(
    name=st.one_of(hostile_text(), st.text(), st.lists(st.sampled_from(INJECTIONS)).map("".join)),
    tail=st.sampled_from(["", "=?", "?=", "\r", "\u2028", "=?utf-8?b?DQpCY2M6IHg=?="]),
)
def test_it_builds_exactly_the_expected_headers_for_any_name(name: str, tail: str) -> None:
    payload = Payload(
        path=Path("unused.zip"),
        sha256="0" * 64,
        size=0,
        filename=name + ".zip",
        user_email=ALICE,
        user_display_name=name + tail,
        created_at=dt.datetime(2026, 11, 25, tzinfo=dt.UTC),
        counts={name + tail: 1, "contacts": 2},
    )
    to = mailbox(ALICE, payload.user_display_name)
    message = build_message(payload, mailbox(SENDER, name), to, attach=False, reason="test")
    header_block = message.head.split(b"\r\n\r\n")[0].split(b"\r\n")
    names = [line.split(b":")[0].lower() for line in header_block if line[:1] not in (b" ", b"\t")]
    assert sorted(names) == sorted(EXPECTED_HEADERS)


@pytest.mark.server
def test_it_logs_in_and_never_shows_the_password(
    smtp_auth_server: SmtpServer, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    good = EmailDelivery(smtp_settings(smtp_auth_server, username=SMTP_USER, password=SMTP_PASSWORD), ALICE)
    assert f"logged in as {SMTP_USER}" in good.test_connection()
    good.deliver(make_payload(tmp_path))
    assert len(smtp_auth_server.received) == 1

    wrong = "Wrong-Pa55word"  # the test server echoes it back in its 535 reply
    bad = EmailDelivery(smtp_settings(smtp_auth_server, username=SMTP_USER, password=wrong), ALICE)
    with pytest.raises(DeliveryError) as caught:
        bad.deliver(make_payload(tmp_path))
    error = caught.value
    assert error.permanent and "535" in error.user_message
    assert "check the SMTP username and password" in error.user_message
    for secret in (wrong, SMTP_PASSWORD):
        for shown in (str(error), error.user_message, repr(bad), repr(good), repr(bad.settings)):
            assert secret not in shown
        # The test server's own log ("mail.log") quotes its echo; ours must not.
        ours = [r.getMessage() for r in caplog.records if not r.name.startswith("mail.log")]
        assert ours and not any(secret in line for line in ours)
    assert "password='***'" in repr(bad)


@pytest.mark.server
def test_it_tests_the_connection(smtp_server: SmtpServer) -> None:
    summary = EmailDelivery(smtp_settings(smtp_server), ALICE).test_connection()
    assert summary == f"connected to 127.0.0.1:{smtp_server.port}; NOOP ok; recipient {ALICE} accepted"
    assert smtp_server.received == []  # asked about the address, sent nothing


@pytest.mark.server
def test_the_connection_test_fails_for_a_recipient_the_server_refuses(smtp_server: SmtpServer) -> None:
    """A user trial: "Test" passed on NOOP alone for an address every delivery then failed on."""
    smtp_server.script(REJECT_RCPT)
    with pytest.raises(DeliveryError) as caught:
        EmailDelivery(smtp_settings(smtp_server), ALICE).test_connection()
    assert caught.value.permanent
    assert f"refused recipient {ALICE}: 550 5.1.1" in caught.value.user_message
    assert "check the address" in caught.value.user_message
    assert smtp_server.received == []


@contextmanager
def silent_listener(hang_up_after: float | None) -> Iterator[int]:
    """A loopback port that accepts connections and never greets; hangs up after `hang_up_after` s (None: never).

    What a firewall or a host that is not a mail server does to an SMTP client.
    """
    listener = socket.create_server(("127.0.0.1", 0))
    accepted: list[socket.socket] = []

    def serve() -> None:
        with contextlib.suppress(OSError):
            connection, _ = listener.accept()
            accepted.append(connection)
            if hang_up_after is not None:
                time.sleep(hang_up_after)
                connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))  # a reset
                connection.close()

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        yield listener.getsockname()[1]
    finally:
        listener.close()
        thread.join(5)
        for connection in accepted:
            connection.close()


@pytest.mark.parametrize(
    ("timeout", "hang_up_after", "words"),
    [
        (0.5, None, "did not answer within 0.5 s; check the SMTP host and port (a firewall may be dropping"),
        (5.0, 1.2, "did not answer within 1 s (the connection was dropped); check the SMTP host and port"),
        (5.0, 0.0, "closed the connection before greeting; check the SMTP host and port"),
    ],
    ids=["never-answers", "drops-after-a-silence", "hangs-up-at-once"],
)
def test_a_server_that_never_greets_is_said_to_not_answer_rather_than_to_close(
    timeout: float, hang_up_after: float | None, words: str
) -> None:
    with silent_listener(hang_up_after) as port:
        delivery = EmailDelivery(smtp_settings(port=port, timeout=timeout), ALICE)
        with pytest.raises(DeliveryError) as caught:
            delivery.test_connection()
    assert not caught.value.permanent
    assert caught.value.user_message.startswith(f"The mail server 127.0.0.1:{port} ")
    assert words in caught.value.user_message


def test_it_says_it_cannot_connect_to_a_closed_port(closed_port: int) -> None:
    delivery = EmailDelivery(smtp_settings(port=closed_port), ALICE)
    with pytest.raises(DeliveryError) as caught:
        delivery.test_connection()
    assert not caught.value.permanent
    message = caught.value.user_message
    assert message.startswith(f"Cannot connect to the mail server 127.0.0.1:{closed_port}")
    assert "Connection refused" in message and "check the SMTP host and port" in message


@pytest.mark.server
def test_it_delivers_over_starttls_with_a_verified_certificate(
    smtp_starttls_server: SmtpServer, trust_test_ca: Path, tmp_path: Path
) -> None:
    settings = smtp_settings(smtp_starttls_server, security="starttls", username=SMTP_USER, password=SMTP_PASSWORD)
    delivery = EmailDelivery(settings, ALICE)
    assert "STARTTLS ok; logged in as lifeboat" in delivery.test_connection()
    payload = make_payload(tmp_path)
    delivery.deliver(payload)
    files = attachments(only_message(smtp_starttls_server))
    assert hashlib.sha256(files[payload.filename]).hexdigest() == payload.sha256


@pytest.mark.server
def test_it_refuses_a_certificate_it_cannot_verify(smtp_starttls_server: SmtpServer) -> None:
    # No trust_test_ca: the server's certificate is signed by an unknown CA.
    delivery = EmailDelivery(smtp_settings(smtp_starttls_server, security="starttls"), ALICE)
    with pytest.raises(DeliveryError) as caught:
        delivery.test_connection()
    assert caught.value.permanent and "could not be verified" in caught.value.user_message


@pytest.mark.server
def test_it_delivers_over_implicit_tls(smtps_server: SmtpServer, trust_test_ca: Path, tmp_path: Path) -> None:
    delivery = EmailDelivery(smtp_settings(smtps_server, security="ssl"), ALICE)
    assert delivery.test_connection().startswith(f"connected to 127.0.0.1:{smtps_server.port} over TLS")
    delivery.deliver(make_payload(tmp_path))
    assert len(smtps_server.received) == 1


@pytest.mark.server
@pytest.mark.parametrize(
    ("security", "expected"),
    [("starttls", "does not offer STARTTLS"), ("ssl", "check the SMTP security setting")],
)
def test_it_explains_a_security_setting_the_server_does_not_match(
    smtp_server: SmtpServer, security: str, expected: str
) -> None:
    with pytest.raises(DeliveryError) as caught:
        EmailDelivery(smtp_settings(smtp_server, security=security), ALICE).test_connection()
    assert caught.value.permanent and expected in caught.value.user_message


@pytest.mark.server
def test_it_does_not_complete_a_message_whose_archive_changed(smtp_server: SmtpServer, tmp_path: Path) -> None:
    delivery = EmailDelivery(smtp_settings(smtp_server), ALICE)
    tampered = make_payload(tmp_path, sha256="f" * 64)  # same size, other content
    with pytest.raises(DeliveryError) as caught:
        delivery.deliver(tampered)
    assert caught.value.permanent and "changed on disk" in caught.value.user_message
    shorter = dataclasses.replace(make_payload(tmp_path, size=1000), size=999)
    with pytest.raises(DeliveryError, match="verified at 999"):
        delivery.deliver(shorter)
    assert smtp_server.received == []
    delivery.deliver(make_payload(tmp_path))  # the server is not left mid-message
    assert len(smtp_server.received) == 1


@pytest.mark.parametrize(
    "recipient",
    [
        "alice@example.com, bob@example.com",
        "Alice <alice@example.com>",
        "alice@example.com\r\nBcc: x@evil.example",
        "alice@example.com\u2028",
        "=?utf-8?q?alice?=@example.com",
        "alice",
        "",
        "alice@@example.com",
        '"a,b"@example.com',
        "alice@localhost",
        "alice@[127.0.0.1]",
    ],
)
def test_it_refuses_a_bad_recipient_before_connecting(tmp_path: Path, closed_port: int, recipient: str) -> None:
    # The closed port proves no connection was tried: that would be transient.
    with pytest.raises(DeliveryError) as caught:
        EmailDelivery(smtp_settings(port=closed_port), recipient).deliver(make_payload(tmp_path))
    assert caught.value.permanent
    assert "cannot be used" in caught.value.user_message
    assert "check the address" in caught.value.user_message


def test_it_accepts_plus_addresses_and_converts_international_domains() -> None:
    assert parse_address("alice+lifeboat@example.com").addr_spec == "alice+lifeboat@example.com"
    assert parse_address("alice@bücher.example").domain == "xn--bcher-kva.example"
    with pytest.raises(HeaderValueError):
        parse_address("ålice@example.com")


def test_it_is_disabled_without_a_host(tmp_path: Path) -> None:
    delivery = EmailDelivery(SmtpSettings(), ALICE)
    assert not delivery.enabled
    for call in (lambda: delivery.deliver(make_payload(tmp_path)), delivery.test_connection):
        with pytest.raises(DeliveryError, match="email delivery is not configured") as caught:
            call()
        assert caught.value.permanent


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"security": "tls"}, "must be one of none, starttls, ssl"),
        ({"port": 70000}, "between 1 and 65535"),
        ({"sender_address": "Lifeboat <x@example.net>"}, "SMTP sender address"),
        ({"username": "u"}, "both the SMTP username and password"),
        ({"host": "smtp.example.net", "username": "u", "password": "p"}, "unencrypted"),
    ],
)
def test_it_refuses_broken_settings_at_startup(changes: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        smtp_settings(**changes)


def test_it_streams_the_archive_without_holding_it_in_memory(tmp_path: Path) -> None:
    payload = make_payload(tmp_path, size=4_000_000)
    to, sender = mailbox(ALICE, "Alice"), mailbox(SENDER, "Lifeboat")
    message = build_message(payload, sender, to, attach=True, reason="")
    total, longest, carry = 0, 0, b""
    tracemalloc.start()
    try:
        for chunk in message.chunks():
            total += len(chunk)
            lines = (carry + chunk).split(b"\r\n")
            carry = lines.pop()
            longest = max([longest, len(carry), *map(len, lines)])
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 1_000_000  # a few 57 KiB chunks, never the 4 MB archive or its 5.4 MB base64
    assert total == message.size  # what SIZE= announced
    assert longest <= 78


@pytest.mark.parametrize(
    ("raw", "clean"),
    [
        ("Mallory\r\nBcc: x", "Mallory Bcc: x"),
        ("=?UTF-8?Q?=0A?=", "= ?UTF-8?Q?=0A?="),
        ("=\n?utf-8?", "= ?utf-8?"),
        ("a\u2028b\u2029c\u0085d\x00e\x1bf", "a b c d e f"),
        ("\u202eevil\u202c", "evil"),
        ("Zoë 🎉", "Zoë 🎉"),
        (None, ""),
    ],
)
def test_it_neutralises_header_text(raw: str | None, clean: str) -> None:
    assert clean_text(raw) == clean


def test_it_makes_attachment_names_plain() -> None:
    assert safe_filename("lifeboat-alice-20261125T040000Z.zip") == "lifeboat-alice-20261125T040000Z.zip"
    assert safe_filename('../../etc/"pa ss"\r\n.zip') == "etc_pa_ss_.zip"
    assert safe_filename("") == "lifeboat-archive.zip"
