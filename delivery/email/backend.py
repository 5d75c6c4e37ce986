"""Deliver an archive by email through SMTP: `EmailDelivery`.

Why it is built this way:
- The archive streams from disk (`delivery.email.message.StreamedMessage`,
  sent by `delivery.email.transport.send_streamed`; the measurement is
  there) instead of being copied several times in memory, and a file that
  changed since verification is caught before the message is complete.
- SMTP failures are classified by reply code (`delivery.email.errors`): 4xx,
  disconnects and timeouts are transient (the job layer retries); 5xx and
  configuration mistakes are permanent, with a message saying what to fix.
- No message, log line or `repr` ever contains the SMTP password: `repr`
  masks it and server replies are scrubbed before they are quoted.
"""

from __future__ import annotations

import logging
import smtplib
from email.message import EmailMessage

from delivery.contract import Delivery, Payload, Receipt, archive_unreadable
from delivery.email.errors import classify, error, quoted
from delivery.email.headers import HeaderValueError, clean_text, mailbox, parse_address, safe_filename
from delivery.email.message import (
    POLICY,
    ArchiveChangedError,
    UnsafeHeadersError,
    build_message,
    check_addresses,
    stamp,
)
from delivery.email.settings import SmtpSettings
from delivery.email.summary import human_size
from delivery.email.transport import (
    Progress,
    conversation,
    envelope,
    open_connection,
    send_streamed,
    server_limit,
    where,
)
from errors import DeliveryError

log = logging.getLogger(__name__)

_CHANGED = "The archive changed on disk after it was verified, so it was not sent. Run the export again."


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
            # Someone else's address (a confirmed third-party destination) is not addressed with the owner's name.
            own = _same_address(self.recipient, payload.user_email)
            to = mailbox(self.recipient, payload.user_display_name if own else None)
        except HeaderValueError as exc:
            shown = repr(self.recipient[:100]) + ("..." if len(self.recipient) > 100 else "")
            refusal = f"the email address {shown} cannot be used: {exc}; check the address"
            raise error(refusal, permanent=True) from None
        sender = mailbox(self.settings.sender_address, self.settings.sender_name)
        attach = payload.size <= self.attach_limit_bytes
        reason = f"it is larger than the {human_size(self.attach_limit_bytes)} attachment limit"
        if attach:
            self._check_file(payload)
        elif not payload.download_url:
            raise self._too_big(payload, reason)
        progress = Progress()
        envelope_from = parse_address(self.settings.sender_address).addr_spec
        try:
            with conversation(self._open(progress)) as smtp:
                message = build_message(payload, sender, to, attach=attach, reason=reason, own=own)
                limit = server_limit(smtp)
                if attach and limit and message.size > limit:
                    reason = f"the mail server accepts at most {human_size(limit)} per message"
                    if not payload.download_url:
                        raise self._too_big(payload, reason)
                    attach = False
                    message = build_message(payload, sender, to, attach=False, reason=reason, own=own)
                reply = send_streamed(smtp, envelope_from, to.addr_spec, message, progress)
        except (smtplib.SMTPException, OSError) as exc:
            raise classify(exc, progress.stage, self.settings, progress.waited()) from None
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
        warnings: tuple[str, ...] = ()
        if attach:
            sent = f"archive attached ({human_size(payload.size)})"
        else:
            sent = f"download link sent instead of the archive ({reason})"
            warnings = (f"archive not attached because {reason}; the email carries a download link",)
        name = safe_filename(payload.filename)
        log.info("emailed %s to %s via %s: %s", name, to.addr_spec, where(self.settings), sent)
        accepted = f"accepted by {where(self.settings)} ({quoted(self.settings, reply)})"
        return Receipt(
            location=f"mailto:{to.addr_spec}",
            detail=f"{accepted}; {sent}; SHA-256 {payload.sha256}",
            warnings=warnings,
            message_id=message.message_id,
        )

    def send_notice(self, subject: str, text: str) -> None:
        """Send a short plain-text message (e.g. "your export failed") to the recipient.

        Subject and body are built by Lifeboat; user-controlled parts go
        through `clean_text` like every header value.
        """
        self._require_enabled()
        message = EmailMessage()
        sender_box = mailbox(self.settings.sender_address, self.settings.sender_name)
        message["From"] = sender_box
        message["To"] = mailbox(self.recipient, None)
        message["Subject"] = clean_text(subject, limit=200)
        stamp(message, sender_box)
        message.set_content(text)
        sender, to = message["From"].addresses[0].addr_spec, message["To"].addresses[0].addr_spec
        try:
            check_addresses(message.as_bytes(policy=POLICY), {"from": [sender], "to": [to]})
        except UnsafeHeadersError as exc:
            raise DeliveryError(f"refusing to send the notice: {exc}", permanent=True) from None
        progress = Progress()
        try:
            with conversation(self._open(progress)) as smtp:
                progress.stage = "DATA"
                # An explicit envelope: recipients never come from parsing our own headers.
                smtp.send_message(message, from_addr=sender, to_addrs=[to])
        except (smtplib.SMTPException, OSError) as exc:
            raise classify(exc, progress.stage, self.settings, progress.waited()) from None

    def test_connection(self) -> str:
        """Connect, EHLO, STARTTLS and log in if configured, NOOP, then MAIL and RCPT (no DATA), RSET, QUIT.

        Why RCPT: a server that refuses the recipient (unknown mailbox, relaying
        denied) would otherwise pass the test and fail every delivery; asking it
        about the address sends nothing.
        """
        self._require_enabled()
        try:
            to = parse_address(self.recipient).addr_spec
        except HeaderValueError as exc:
            shown = repr(self.recipient[:100]) + ("..." if len(self.recipient) > 100 else "")
            raise error(f"the email address {shown} cannot be used: {exc}; check the address", permanent=True) from None
        envelope_from = parse_address(self.settings.sender_address).addr_spec
        progress = Progress()
        try:
            with conversation(self._open(progress)) as smtp:
                progress.stage = "NOOP"
                code, text = smtp.noop()
                if code != 250:
                    raise smtplib.SMTPResponseException(code, text)
                progress.steps.append("NOOP ok")
                envelope(smtp, envelope_from, to, progress, [])
                progress.steps.append(f"recipient {to} accepted")
                smtp.rset()
        except (smtplib.SMTPException, OSError) as exc:
            raise classify(exc, progress.stage, self.settings, progress.waited()) from None
        return "; ".join(progress.steps)

    def _open(self, progress: Progress) -> smtplib.SMTP:
        """The open, secured, logged-in connection (a method so a test can replace it)."""
        return open_connection(self.settings, progress)

    def _require_enabled(self) -> None:
        if not self.enabled:
            raise DeliveryError(
                "email delivery is not configured",
                permanent=True,
                operator=True,
                user_message="Email delivery is not set up on this Lifeboat server (it has no mail server to use).",
            )

    def _check_file(self, payload: Payload) -> None:
        try:
            size = payload.path.stat().st_size
        except OSError as exc:
            raise archive_unreadable(payload, exc) from None
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


def _same_address(recipient: str, owner: str) -> bool:
    """Whether `recipient` is the account's own address (compared as addresses, case-insensitively)."""
    try:
        return parse_address(recipient).addr_spec.lower() == parse_address(owner).addr_spec.lower()
    except HeaderValueError:
        return False
