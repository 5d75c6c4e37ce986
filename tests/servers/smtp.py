"""Real SMTP servers on loopback (aiosmtpd) for delivery tests, as pytest fixtures.

Why real servers: the parts worth testing (dot-stuffing a streamed DATA,
reply codes, a connection dropped before the reply, STARTTLS with a verified
certificate, AUTH) only exist on a socket. Each server runs in its own thread
for the whole session; the function-scoped fixtures reset what it recorded
and its script, so tests stay independent and fast.

Load with `pytest_plugins = ["tests.servers.smtp"]` (or `-p tests.servers.smtp`).
"""

from __future__ import annotations

import datetime as dt
import email
import email.policy
import ipaddress
import socket
import ssl
import threading
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass, field
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword

HOST = "127.0.0.1"
SMTP_USER = "lifeboat"
SMTP_PASSWORD = "correct-horse-battery"

# What the handler does with the next transaction; each step is used up once.
ACCEPT = "accept"
TEMPFAIL_RCPT = "451 at RCPT"
REJECT_RCPT = "550 at RCPT"
TEMPFAIL_DATA = "451 at DATA"
REJECT_DATA = "550 at DATA"
DROP = "drop the connection at the end of DATA"
_RCPT_STEPS = {TEMPFAIL_RCPT, REJECT_RCPT}


def free_port() -> int:
    """A port nothing listens on right now (aiosmtpd cannot use port 0 itself)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((HOST, 0))
        return int(sock.getsockname()[1])


@dataclass(frozen=True)
class Received:
    """One message the server accepted."""

    mail_from: str
    rcpt_tos: list[str]
    mail_options: list[str]
    data: bytes

    def message(self) -> EmailMessage:
        parsed = email.message_from_bytes(self.data, policy=email.policy.default)
        assert isinstance(parsed, EmailMessage)
        return parsed


@dataclass
class ScriptedHandler:
    """Records accepted messages; answers as scripted, then accepts by default."""

    received: list[Received] = field(default_factory=list)
    steps: deque[str] = field(default_factory=deque)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def reset(self) -> None:
        with self.lock:
            self.received.clear()
            self.steps.clear()

    def _take(self, allowed: set[str] | None = None) -> str:
        with self.lock:
            if self.steps and (allowed is None or self.steps[0] in allowed):
                return self.steps.popleft()
            return ACCEPT

    async def handle_RCPT(self, server: Any, session: Any, envelope: Any, address: str, rcpt_options: list[str]) -> str:
        step = self._take(_RCPT_STEPS)
        if step == TEMPFAIL_RCPT:
            return "451 4.2.1 Mailbox busy, try again later"
        if step == REJECT_RCPT:
            return f"550 5.1.1 <{address}>: Recipient address rejected: User unknown"
        envelope.rcpt_tos.append(address)
        return "250 2.1.5 OK"

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        step = self._take()
        if step == TEMPFAIL_DATA:
            return "451 4.3.0 Temporary local problem, try again later"
        if step == REJECT_DATA:
            return "550 5.7.1 Message rejected as spam"
        if step == DROP:
            server.transport.close()
            return "421 4.4.2 Connection dropped"  # never reaches the client
        with self.lock:
            self.received.append(
                Received(
                    envelope.mail_from,
                    list(envelope.rcpt_tos),
                    list(envelope.mail_options),
                    bytes(envelope.original_content),
                )
            )
            number = len(self.received)
        return f"250 2.0.0 Ok: queued as TEST{number}"


def _authenticator(server: Any, session: Any, envelope: Any, mechanism: str, auth_data: Any) -> AuthResult:
    """Accept SMTP_USER/SMTP_PASSWORD; on failure, echo what was sent, as careless servers do."""
    if not isinstance(auth_data, LoginPassword):
        return AuthResult(success=False, handled=False)
    login, password = auth_data.login.decode(), auth_data.password.decode()
    if (login, password) == (SMTP_USER, SMTP_PASSWORD):
        return AuthResult(success=True)
    message = f"535 5.7.8 Authentication failed for {login} with password {password}"
    return AuthResult(success=False, handled=False, message=message)


@dataclass
class SmtpServer:
    """A running server: where it listens, what it received, and its script."""

    host: str
    port: int
    handler: ScriptedHandler
    ca_file: Path | None = None  # the CA that signed its certificate, for TLS servers

    @property
    def received(self) -> list[Received]:
        with self.handler.lock:
            return list(self.handler.received)

    def script(self, *steps: str) -> None:
        """Answer the next transactions with `steps` (ACCEPT, TEMPFAIL_DATA, DROP, ...)."""
        with self.handler.lock:
            self.handler.steps.extend(steps)


def _start(**kwargs: Any) -> tuple[Controller, SmtpServer]:
    handler = ScriptedHandler()
    port = free_port()
    controller = Controller(handler, hostname=HOST, port=port, server_hostname="smtp.lifeboat.test", **kwargs)
    controller.start()
    return controller, SmtpServer(HOST, port, handler)


@dataclass(frozen=True)
class SmtpCertificates:
    """A throwaway CA and a server certificate for 127.0.0.1 signed by it."""

    ca_file: Path
    server_context: ssl.SSLContext


def _certificates(directory: Path) -> SmtpCertificates:
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    now = dt.datetime.now(dt.UTC)

    def cert(subject: str, key: Any, issuer: str, issuer_key: Any, *, ca: bool) -> Any:
        builder = (
            x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, subject)]))
            .issuer_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, issuer)]))
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(minutes=5))
            .not_valid_after(now + dt.timedelta(days=1))
            .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
        )
        if ca:
            usage = x509.KeyUsage(False, False, False, False, False, True, True, False, False)
            builder = builder.add_extension(usage, critical=True)
            builder = builder.add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        else:
            names = [x509.IPAddress(ipaddress.ip_address(HOST)), x509.DNSName("localhost")]
            builder = builder.add_extension(x509.SubjectAlternativeName(names), critical=False)
            builder = builder.add_extension(
                x509.AuthorityKeyIdentifier.from_issuer_public_key(issuer_key.public_key()),
                critical=False,
            )
        return builder.sign(issuer_key, hashes.SHA256())

    ca_key = ec.generate_private_key(ec.SECP256R1())
    server_key = ec.generate_private_key(ec.SECP256R1())
    ca_cert = cert("Lifeboat test CA", ca_key, "Lifeboat test CA", ca_key, ca=True)
    server_cert = cert(HOST, server_key, "Lifeboat test CA", ca_key, ca=False)
    pem = serialization.Encoding.PEM
    ca_file, cert_file, key_file = (directory / n for n in ("ca.pem", "server.pem", "key.pem"))
    ca_file.write_bytes(ca_cert.public_bytes(pem))
    cert_file.write_bytes(server_cert.public_bytes(pem))
    key_file.write_bytes(server_key.private_bytes(pem, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()))
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert_file, key_file)
    return SmtpCertificates(ca_file, context)


@pytest.fixture(scope="session")
def smtp_certificates(tmp_path_factory: pytest.TempPathFactory) -> SmtpCertificates:
    return _certificates(tmp_path_factory.mktemp("smtp-tls"))


@pytest.fixture(scope="session")
def _smtp_plain() -> Iterator[SmtpServer]:
    controller, server = _start()
    yield server
    controller.stop()


@pytest.fixture(scope="session")
def _smtp_small() -> Iterator[SmtpServer]:
    controller, server = _start(data_size_limit=20_000)
    yield server
    controller.stop()


@pytest.fixture(scope="session")
def _smtp_auth() -> Iterator[SmtpServer]:
    controller, server = _start(authenticator=_authenticator, auth_require_tls=False)
    yield server
    controller.stop()


@pytest.fixture(scope="session")
def _smtp_starttls(smtp_certificates: SmtpCertificates) -> Iterator[SmtpServer]:
    controller, server = _start(
        tls_context=smtp_certificates.server_context,
        require_starttls=True,
        authenticator=_authenticator,
    )
    server.ca_file = smtp_certificates.ca_file
    yield server
    controller.stop()


@pytest.fixture(scope="session")
def _smtp_ssl(smtp_certificates: SmtpCertificates) -> Iterator[SmtpServer]:
    controller, server = _start(ssl_context=smtp_certificates.server_context)
    server.ca_file = smtp_certificates.ca_file
    yield server
    controller.stop()


def _fresh(server: SmtpServer) -> SmtpServer:
    server.handler.reset()
    return server


@pytest.fixture
def smtp_server(_smtp_plain: SmtpServer) -> SmtpServer:
    """A plain SMTP server (SIZE 32 MiB, no AUTH): nothing received yet, no script."""
    return _fresh(_smtp_plain)


@pytest.fixture
def smtp_small_server(_smtp_small: SmtpServer) -> SmtpServer:
    """A plain SMTP server that announces SIZE 20000 and refuses anything larger."""
    return _fresh(_smtp_small)


@pytest.fixture
def smtp_auth_server(_smtp_auth: SmtpServer) -> SmtpServer:
    """A plain server offering AUTH (SMTP_USER/SMTP_PASSWORD) without TLS, for loopback tests."""
    return _fresh(_smtp_auth)


@pytest.fixture
def smtp_starttls_server(_smtp_starttls: SmtpServer) -> SmtpServer:
    """A server requiring STARTTLS (certificate for 127.0.0.1 from `ca_file`) and offering AUTH."""
    return _fresh(_smtp_starttls)


@pytest.fixture
def smtps_server(_smtp_ssl: SmtpServer) -> SmtpServer:
    """An implicit-TLS (port 465 style) server; its certificate is signed by `ca_file`."""
    return _fresh(_smtp_ssl)


@pytest.fixture
def trust_test_ca(smtp_certificates: SmtpCertificates, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Make `ssl.create_default_context()` also trust the test CA, for this test only."""
    monkeypatch.setenv("SSL_CERT_FILE", str(smtp_certificates.ca_file))
    monkeypatch.delenv("SSL_CERT_DIR", raising=False)
    return smtp_certificates.ca_file


@pytest.fixture
def closed_port() -> int:
    """A loopback port with nothing listening, for "cannot connect" tests."""
    return free_port()
