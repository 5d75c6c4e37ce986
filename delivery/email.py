"""Deliver an archive by email through SMTP.

Why it is built this way:
- The DATA phase is driven here rather than by `smtplib.send_message`, so the
  archive streams from disk (`delivery.mime.StreamedMessage`) instead of being
  copied four times in memory, and so a file that changed since verification
  is caught before the final "." (the connection is dropped and the server
  discards the partial message).
- SMTP failures are classified by reply code: 4xx, disconnects and timeouts
  are transient (the job layer retries); 5xx and configuration mistakes are
  permanent, with a message saying what to fix.
- No message, log line or `repr` ever contains the SMTP password: `repr`
  masks it and server replies are scrubbed before they are quoted.
"""

from __future__ import annotations

import base64
import ipaddress
import logging
import smtplib
import ssl
from contextlib import suppress
from dataclasses import dataclass
from email.message import EmailMessage

from delivery.base import Delivery, Payload, Receipt
from delivery.headers import HeaderValueError, clean_text, mailbox, parse_address, safe_filename
from delivery.mime import (
    POLICY,
    ArchiveChangedError,
    StreamedMessage,
    UnsafeHeadersError,
    build_message,
    check_addresses,
    human_size,
)
from errors import DeliveryError

log = logging.getLogger(__name__)

SECURITY_MODES = ("none", "starttls", "ssl")
DEFAULT_PORTS = {"none": 25, "starttls": 587, "ssl": 465}
_CHANGED = "The archive changed on disk after it was verified, so it was not sent. Run the export again."


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


class EmailDelivery(Delivery):
    """Send the archive (or a download link when it is too large) to one address."""

    kind = "email"

    def __init__(self, settings: SmtpSettings, recipient: str, *, attach_limit_bytes: int = 15 * 1024 * 1024) -> None:
        self.settings = settings
        self.recipient = recipient
        self.attach_limit_bytes = attach_limit_bytes

    def __repr__(self) -> str:
        return (
            f"EmailDelivery({self.settings!r}, recipient={self.recipient!r}, "
            f"attach_limit_bytes={self.attach_limit_bytes})"
        )

    @property
    def enabled(self) -> bool:
        return self.settings.enabled

    def deliver(self, payload: Payload) -> Receipt:
        """Email `payload` to the recipient; the receipt quotes the server's acceptance."""
        self._require_enabled()
        try:
            to = mailbox(self.recipient, payload.user_display_name)
        except HeaderValueError as exc:
            shown = repr(self.recipient[:100]) + ("..." if len(self.recipient) > 100 else "")
            message = f"the email address {shown} cannot be used: {exc}; check the address"
            raise _error(message, permanent=True) from None
        sender = mailbox(self.settings.sender_address, self.settings.sender_name)
        attach = payload.size <= self.attach_limit_bytes
        reason = f"it is larger than the {human_size(self.attach_limit_bytes)} attachment limit"
        if attach:
            self._check_file(payload)
        elif not payload.download_url:
            raise self._too_big(payload, reason)
        stage = ["connect"]
        try:
            smtp = self._open(stage)
            try:
                message = build_message(payload, sender, to, attach=attach, reason=reason)
                limit = _server_limit(smtp)
                if attach and limit and message.size > limit:
                    reason = f"the mail server accepts at most {human_size(limit)} per message"
                    if not payload.download_url:
                        raise self._too_big(payload, reason)
                    attach = False
                    message = build_message(payload, sender, to, attach=False, reason=reason)
                reply = self._transmit(smtp, to.addr_spec, message, stage)
            except BaseException:
                smtp.close()  # without QUIT, so a half-sent DATA is discarded
                raise
            _quit(smtp)
        except (smtplib.SMTPException, OSError) as exc:
            raise self._classify(exc, stage[0]) from None
        except ArchiveChangedError:
            raise DeliveryError(
                f"{payload.path} changed after it was verified (size or SHA-256); not sent",
                permanent=True,
                user_message=_CHANGED,
            ) from None
        except UnsafeHeadersError as exc:
            raise DeliveryError(
                f"refusing to send: the message headers are not what was built ({exc})",
                permanent=True,
                user_message="The email could not be built safely from your account's display "
                "name; change the display name and try again.",
            ) from None
        if attach:
            sent, warnings = f"archive attached ({human_size(payload.size)})", ()
        else:
            sent = f"download link sent instead of the archive ({reason})"
            warnings = (f"archive not attached because {reason}; the email carries a download link",)
        name = safe_filename(payload.filename)
        log.info("emailed %s to %s via %s: %s", name, to.addr_spec, self._where(), sent)
        return Receipt(
            location=f"mailto:{to.addr_spec}",
            detail=f"accepted by {self._where()} ({self._clean(reply)}); {sent}; SHA-256 {payload.sha256}",
            warnings=warnings,
        )

    def send_notice(self, subject: str, text: str) -> None:
        """Send a short plain-text message (e.g. "your export failed") to the recipient.

        Subject and body are built by Lifeboat; user-controlled parts go
        through `clean_text` like every header value.
        """
        self._require_enabled()
        message = EmailMessage()
        message["From"] = mailbox(self.settings.sender_address, self.settings.sender_name)
        message["To"] = mailbox(self.recipient, None)
        message["Subject"] = clean_text(subject, limit=200)
        message.set_content(text)
        sender, to = message["From"].addresses[0].addr_spec, message["To"].addresses[0].addr_spec
        try:
            check_addresses(message.as_bytes(policy=POLICY), {"from": [sender], "to": [to]})
        except UnsafeHeadersError as exc:
            raise DeliveryError(f"refusing to send the notice: {exc}", permanent=True) from None
        stage = ["connect"]
        try:
            smtp = self._open(stage)
            try:
                stage[0] = "DATA"
                # An explicit envelope: recipients never come from parsing our own headers.
                smtp.send_message(message, from_addr=sender, to_addrs=[to])
            except BaseException:
                smtp.close()
                raise
            _quit(smtp)
        except (smtplib.SMTPException, OSError) as exc:
            raise self._classify(exc, stage[0]) from None

    def test_connection(self) -> str:
        """Connect, EHLO, STARTTLS and log in if configured, NOOP, QUIT; say what worked."""
        self._require_enabled()
        stage, steps = ["connect"], []
        try:
            smtp = self._open(stage, steps)
            try:
                stage[0] = "NOOP"
                code, text = smtp.noop()
                if code != 250:
                    raise smtplib.SMTPResponseException(code, text)
            except BaseException:
                smtp.close()
                raise
            _quit(smtp)
        except (smtplib.SMTPException, OSError) as exc:
            raise self._classify(exc, stage[0]) from None
        return "; ".join([*steps, "NOOP ok"])

    def _open(self, stage: list[str], steps: list[str] | None = None) -> smtplib.SMTP:
        """Connect, secure and authenticate as configured, tracking the step in `stage[0]`."""
        s, steps = self.settings, steps if steps is not None else []
        host, port = s.host or "", s.effective_port
        # Always the default context: without it smtplib does not verify the certificate.
        context = ssl.create_default_context() if s.security != "none" else None
        if s.security == "ssl":
            smtp: smtplib.SMTP = smtplib.SMTP_SSL(host, port, timeout=s.timeout, context=context)
        else:
            smtp = smtplib.SMTP(host, port, timeout=s.timeout)
        try:
            steps.append(f"connected to {self._where()}" + (" over TLS" if s.security == "ssl" else ""))
            stage[0] = "EHLO"
            smtp.ehlo_or_helo_if_needed()
            if s.security == "starttls":
                stage[0] = "STARTTLS"
                if not smtp.has_extn("starttls"):
                    raise _NotOfferedError("STARTTLS")
                smtp.starttls(context=context)
                smtp.ehlo()
                steps[-1] = f"connected to {self._where()}; STARTTLS ok"
            if s.username:
                stage[0] = "login"
                if not smtp.has_extn("auth"):
                    raise _NotOfferedError("AUTH")
                smtp.login(s.username, s.password or "")
                steps.append(f"logged in as {s.username}")
        except BaseException:
            smtp.close()
            raise
        return smtp

    def _transmit(self, smtp: smtplib.SMTP, rcpt: str, message: StreamedMessage, stage: list[str]) -> bytes:
        """Run MAIL, RCPT and a streamed, dot-stuffed DATA; return the final reply text."""
        sender = parse_address(self.settings.sender_address).addr_spec
        stage[0] = "MAIL FROM"
        code, text = smtp.mail(sender, [f"SIZE={message.size}"] if smtp.has_extn("size") else [])
        if code != 250:
            raise smtplib.SMTPSenderRefused(code, text, sender)
        stage[0] = "RCPT TO"
        code, text = smtp.rcpt(rcpt)
        if code not in (250, 251):
            raise smtplib.SMTPRecipientsRefused({rcpt: (code, text)})
        stage[0] = "DATA"
        code, text = smtp.docmd("DATA")
        if code != 354:
            raise smtplib.SMTPDataError(code, text)
        at_line_start = True
        for chunk in message.chunks():
            if chunk:
                stuffed = chunk.replace(b"\n.", b"\n..")
                smtp.send(b"." + stuffed if at_line_start and chunk[:1] == b"." else stuffed)
                at_line_start = chunk.endswith(b"\n")
        smtp.send(b".\r\n" if at_line_start else b"\r\n.\r\n")
        code, text = smtp.getreply()
        if code != 250:
            raise smtplib.SMTPDataError(code, text)
        return text

    def _require_enabled(self) -> None:
        if not self.enabled:
            raise DeliveryError("email delivery is not configured", permanent=True)

    def _where(self) -> str:
        host = self.settings.host or ""
        return f"{f'[{host}]' if ':' in host else host}:{self.settings.effective_port}"

    def _check_file(self, payload: Payload) -> None:
        try:
            size = payload.path.stat().st_size
        except OSError as exc:
            raise DeliveryError(
                f"cannot read the archive {payload.path}: {exc.strerror}",
                permanent=True,
                user_message="The archive file is missing on the server. Run the export again.",
            ) from None
        if size != payload.size:
            raise DeliveryError(
                f"{payload.path} is {size} bytes but was verified at {payload.size}; not sent",
                permanent=True,
                user_message=_CHANGED,
            )

    def _too_big(self, payload: Payload, reason: str) -> DeliveryError:
        size = human_size(payload.size)
        return DeliveryError(
            f"cannot email {safe_filename(payload.filename)} ({size}): {reason}, and there is no download link",
            permanent=True,
            user_message=f"Your archive ({size}) is too large to email because {reason}. "
            "Raise the email attachment limit, or deliver to S3 instead.",
        )

    def _clean(self, text: str | bytes) -> str:
        """A server reply or error text made safe to quote: one line, no password."""
        if isinstance(text, bytes):
            text = text.decode("utf-8", "replace")
        return self.settings.scrub(clean_text(text, limit=300))

    def _classify(self, exc: BaseException, stage: str) -> DeliveryError:
        """Turn an SMTP or socket failure into a transient or permanent `DeliveryError`."""
        where = self._where()
        if isinstance(exc, _NotOfferedError):
            fix = {
                "STARTTLS": "set SMTP security to 'ssl' (usually port 465)",
                "AUTH": "check the SMTP security setting (many servers offer AUTH only after "
                "STARTTLS) or remove the SMTP username",
            }[exc.feature]
            return _error(f"the mail server {where} does not offer {exc.feature}; {fix}", True)
        if isinstance(exc, ssl.SSLCertVerificationError):
            why = self._clean(exc.verify_message or str(exc))
            return _error(
                f"the TLS certificate of the mail server {where} could not be verified ({why}); "
                "fix the server's certificate or use the host name it was issued for",
                True,
            )
        if isinstance(exc, ssl.SSLError) and not isinstance(exc, ssl.SSLEOFError | ssl.SSLZeroReturnError):
            return _error(
                f"TLS with the mail server {where} failed during {stage} ({self._clean(str(exc))});"
                " check the SMTP security setting ('ssl' for port 465, 'starttls' for 587)",
                True,
            )
        if isinstance(exc, smtplib.SMTPRecipientsRefused):
            rcpt, (code, text) = next(iter(exc.recipients.items()))
            return self._by_code(code, text, f"the mail server refused recipient {rcpt}", "check the address")
        if isinstance(exc, smtplib.SMTPSenderRefused):
            fix = "check the SMTP sender address; servers often accept only their own domain"
            what = f"the mail server refused sender {exc.sender}"
            return self._by_code(exc.smtp_code, exc.smtp_error, what, fix)
        if isinstance(exc, smtplib.SMTPAuthenticationError):
            what = f"the mail server {where} rejected the login for {self.settings.username!r}"
            fix = "check the SMTP username and password"
            return self._by_code(exc.smtp_code, exc.smtp_error, what, fix)
        if isinstance(exc, smtplib.SMTPResponseException):
            if exc.smtp_code == 552:
                fix = "the message is too large for it; lower the attachment limit or use S3"
            else:
                fix = f"it refused the message at {stage}; check its rules for this sender"
            what = f"the mail server {where} answered"
            return self._by_code(exc.smtp_code, exc.smtp_error, what, fix)
        if isinstance(exc, smtplib.SMTPServerDisconnected):
            return _error(f"the mail server {where} closed the connection during {stage}", False)
        detail = self._clean(str(exc) or type(exc).__name__)
        if stage == "connect":
            return _error(
                f"cannot connect to the mail server {where} ({detail}); "
                "check the SMTP host and port, or wait for the server to come back",
                False,
            )
        if isinstance(exc, TimeoutError):
            timeout = self.settings.timeout
            return _error(f"the mail server {where} did not answer within {timeout:g} s during {stage}", False)
        return _error(f"lost the connection to the mail server {where} during {stage}", False)

    def _by_code(self, code: int, text: str | bytes, what: str, fix: str) -> DeliveryError:
        """4xx is temporary; 5xx will fail again until someone fixes what `fix` says."""
        reply = f"{code} {self._clean(text)}".strip()
        if code >= 500:
            return _error(f"{what}: {reply}; {fix}", True)
        return _error(f"{what}: {reply} (temporary)", False)


class _NotOfferedError(smtplib.SMTPException):
    """The server lacks an extension the settings require."""

    def __init__(self, feature: str) -> None:
        super().__init__(f"{feature} not offered")
        self.feature = feature


def _error(message: str, permanent: bool) -> DeliveryError:
    """A `DeliveryError` whose user message is the same sentence, capitalised."""
    sentence = message[:1].upper() + message[1:] + ("" if message.endswith(".") else ".")
    return DeliveryError(message, permanent=permanent, user_message=sentence)


def _quit(smtp: smtplib.SMTP) -> None:
    """Say QUIT politely; the mail is already accepted, so a failure here is not an error."""
    with suppress(smtplib.SMTPException, OSError):
        smtp.quit()
    smtp.close()


def _server_limit(smtp: smtplib.SMTP) -> int:
    """The maximum message size the server announced with SIZE, or 0 for none."""
    value = smtp.esmtp_features.get("size", "").strip()
    return int(value) if value.isdigit() else 0
