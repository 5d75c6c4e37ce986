"""Talk SMTP to the operator's mail server: connect, secure, log in, send, quit.

Why the archive email is not sent with `smtplib.SMTP.send_message`:
`send_message` flattens the whole message into one bytes object, and
`sendmail` then copies it again while dot-stuffing, so an attached archive is
held in memory several times over (a 15 MiB archive is a 20 MiB base64 body).
Measured with `bench/email_memory.py` (tracemalloc peak of the sending
process, aiosmtpd in another process on loopback, Python 3.11.7, 2026-12): a
15 MiB archive peaks at 84.5 MiB through `EmailMessage.add_attachment` +
`send_message` (7.3 s), and at 2.0 MiB through `send_streamed` (2.5 s),
which encodes the archive 57 KiB at a time straight from disk
(`delivery.email.message.StreamedMessage`). Streaming also lets a file that
changed since it was verified be caught before the final "." (the connection
is dropped and the server discards the partial message). The message itself
is still built by `EmailMessage` (with a placeholder where the archive's
base64 goes), and every message without a streamed attachment (the failure
notice) goes through `send_message` with an explicit envelope.
"""

from __future__ import annotations

import smtplib
import ssl
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field

from delivery.email.message import StreamedMessage
from delivery.email.settings import SmtpSettings


class NotOfferedError(smtplib.SMTPException):
    """The server lacks an extension the settings require."""

    def __init__(self, feature: str) -> None:
        super().__init__(f"{feature} not offered")
        self.feature = feature


@dataclass
class Progress:
    """How far a conversation got: `stage` names the step a failure happened in."""

    stage: str = "connect"
    steps: list[str] = field(default_factory=list)  # what worked, for the connection test
    started: float = field(default_factory=time.monotonic)

    def waited(self) -> float:
        """Seconds since the conversation began: how long a server that dropped us kept us waiting."""
        return time.monotonic() - self.started


def where(settings: SmtpSettings) -> str:
    """`host:port` as people write it (IPv6 hosts in brackets)."""
    host = settings.host or ""
    return f"{f'[{host}]' if ':' in host else host}:{settings.effective_port}"


def open_connection(settings: SmtpSettings, progress: Progress) -> smtplib.SMTP:
    """Connect, secure and authenticate as configured, tracking the step in `progress`."""
    s, steps = settings, progress.steps
    host, port = s.host or "", s.effective_port
    # Always the default context: without it smtplib does not verify the certificate.
    context = ssl.create_default_context() if s.security != "none" else None
    if s.security == "ssl":
        smtp: smtplib.SMTP = smtplib.SMTP_SSL(host, port, timeout=s.timeout, context=context)
    else:
        smtp = smtplib.SMTP(host, port, timeout=s.timeout)
    try:
        steps.append(f"connected to {where(s)}" + (" over TLS" if s.security == "ssl" else ""))
        progress.stage = "EHLO"
        smtp.ehlo_or_helo_if_needed()
        if s.security == "starttls":
            progress.stage = "STARTTLS"
            if not smtp.has_extn("starttls"):
                raise NotOfferedError("STARTTLS")
            smtp.starttls(context=context)
            smtp.ehlo()
            steps[-1] = f"connected to {where(s)}; STARTTLS ok"
        if s.username:
            progress.stage = "login"
            if not smtp.has_extn("auth"):
                raise NotOfferedError("AUTH")
            smtp.login(s.username, s.password or "")
            steps.append(f"logged in as {s.username}")
    except BaseException:
        smtp.close()
        raise
    return smtp


@contextmanager
def conversation(smtp: smtplib.SMTP) -> Iterator[smtplib.SMTP]:
    """Use an open connection; QUIT after success, just close after a failure.

    Closing without QUIT on a failure matters: a half-sent DATA must be
    discarded by the server, never completed.
    """
    try:
        yield smtp
    except BaseException:
        smtp.close()
        raise
    # The mail is already accepted, so a failing QUIT is not an error.
    with suppress(smtplib.SMTPException, OSError):
        smtp.quit()
    smtp.close()


def server_limit(smtp: smtplib.SMTP) -> int:
    """The maximum message size the server announced with SIZE, or 0 for none."""
    value = smtp.esmtp_features.get("size", "").strip()
    return int(value) if value.isdigit() else 0


def envelope(smtp: smtplib.SMTP, sender: str, rcpt: str, progress: Progress, options: list[str]) -> None:
    """MAIL FROM and RCPT TO, each refusal raised as smtplib's exception for it (what delivery and the test share)."""
    progress.stage = "MAIL FROM"
    code, text = smtp.mail(sender, options)
    if code != 250:
        raise smtplib.SMTPSenderRefused(code, text, sender)
    progress.stage = "RCPT TO"
    code, text = smtp.rcpt(rcpt)
    if code not in (250, 251):
        raise smtplib.SMTPRecipientsRefused({rcpt: (code, text)})


def send_streamed(smtp: smtplib.SMTP, sender: str, rcpt: str, message: StreamedMessage, progress: Progress) -> bytes:
    """Run MAIL, RCPT and a streamed, dot-stuffed DATA; return the server's final reply text.

    The envelope is explicit (`sender`, `rcpt`): recipients never come from
    parsing our own headers.
    """
    envelope(smtp, sender, rcpt, progress, [f"SIZE={message.size}"] if smtp.has_extn("size") else [])
    progress.stage = "DATA"
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
