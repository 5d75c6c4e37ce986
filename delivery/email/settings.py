"""How to reach the operator's outgoing mail server, checked when the app starts.

Why a frozen dataclass that refuses bad values: a wrong security mode, a
password that would travel unencrypted or a sender address no server accepts
should stop the service at startup with one line, not fail the first night's
delivery.
"""

from __future__ import annotations

import base64
import ipaddress
from dataclasses import dataclass

from delivery.email.headers import HeaderValueError, parse_address

SECURITY_MODES = ("none", "starttls", "ssl")
DEFAULT_PORTS = {"none": 25, "starttls": 587, "ssl": 465}


@dataclass(frozen=True, repr=False)
class SmtpSettings:
    """How to reach the outgoing mail server. No `host` means email delivery is disabled."""

    host: str | None = None
    port: int | None = None  # None: 25, 587 or 465 depending on `security`
    security: str = "starttls"  # "none" | "starttls" | "ssl"
    username: str | None = None
    password: str | None = None
    sender_address: str = ""
    sender_name: str = "Lifeboat"
    timeout: float = 30.0

    def __post_init__(self) -> None:
        """Refuse a broken configuration at startup rather than at the first delivery."""
        if not self.host:
            return
        if self.security not in SECURITY_MODES:
            modes = ", ".join(SECURITY_MODES)
            raise ValueError(f"SMTP security must be one of {modes}, not {self.security!r}")
        if self.port is not None and not 0 < self.port < 65536:
            raise ValueError(f"SMTP port must be between 1 and 65535, not {self.port}")
        if not self.timeout > 0:
            raise ValueError("SMTP timeout must be a positive number of seconds")
        if bool(self.username) != bool(self.password):
            raise ValueError("set both the SMTP username and password, or neither")
        if self.username and self.security == "none" and not _is_loopback(self.host):
            raise ValueError(
                "refusing to send the SMTP password unencrypted: set SMTP security to 'starttls' "
                "or 'ssl' ('none' with a password is only allowed for a loopback host)"
            )
        try:
            parse_address(self.sender_address)
        except HeaderValueError as exc:
            raise ValueError(f"SMTP sender address {self.sender_address!r}: {exc}") from None

    @property
    def enabled(self) -> bool:
        return bool(self.host)

    @property
    def effective_port(self) -> int:
        return self.port or DEFAULT_PORTS.get(self.security, 25)

    def __repr__(self) -> str:
        fields = {
            "host": self.host,
            "port": self.port,
            "security": self.security,
            "username": self.username,
            "password": "***" if self.password else None,
            "sender_address": self.sender_address,
            "sender_name": self.sender_name,
            "timeout": self.timeout,
        }
        return "SmtpSettings(" + ", ".join(f"{k}={v!r}" for k, v in fields.items()) + ")"

    def scrub(self, text: str) -> str:
        """Remove the password, and the AUTH encodings smtplib sends of it, from `text`."""
        if not self.password:
            return text
        user, secret = self.username or "", self.password
        for form in (
            secret,
            base64.b64encode(secret.encode()).decode(),
            base64.b64encode(f"\0{user}\0{secret}".encode()).decode(),
        ):
            text = text.replace(form, "***")
        return text


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False
