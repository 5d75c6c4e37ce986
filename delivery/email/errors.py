"""Turn an SMTP or socket failure into a `DeliveryError` that says what to fix.

Why by reply code and stage: 4xx replies, disconnects and timeouts are
transient (the job layer retries); 5xx replies and configuration mistakes
are permanent and need a person, so the message names the setting to change.
Server replies are quoted cleaned and without the SMTP password.
"""

from __future__ import annotations

import smtplib
import ssl

from delivery.email.headers import clean_text
from delivery.email.settings import SmtpSettings
from delivery.email.transport import NotOfferedError, where
from errors import DeliveryError


class RecipientRefusedError(DeliveryError):
    """The server refused the recipient address at RCPT TO; `reply` is its answer, cleaned ("550 5.1.1 ...").

    Why a type of its own: "check the address" is advice for whoever typed the
    address (a page can say so), while every other refusal is the operator's to fix.
    """

    def __init__(self, message: str, *, permanent: bool, reply: str) -> None:
        sentence = message[:1].upper() + message[1:] + ("" if message.endswith(".") else ".")
        super().__init__(message, permanent=permanent, user_message=sentence)
        self.reply = reply


def error(message: str, permanent: bool) -> DeliveryError:
    """A `DeliveryError` whose user message is the same sentence, capitalised."""
    sentence = message[:1].upper() + message[1:] + ("" if message.endswith(".") else ".")
    return DeliveryError(message, permanent=permanent, user_message=sentence)


def quoted(settings: SmtpSettings, text: str | bytes) -> str:
    """A server reply or error text made safe to quote: one line, no password."""
    if isinstance(text, bytes):
        text = text.decode("utf-8", "replace")
    return settings.scrub(clean_text(text, limit=300))


def timed_out(exc: BaseException) -> bool:
    """Whether the server did not answer in time.

    smtplib reports a timeout while reading a reply (the greeting included) as
    `SMTPServerDisconnected("Connection unexpectedly closed: timed out")`, which
    read as "closed the connection" to a user trial whose server never answered.
    """
    if isinstance(exc, TimeoutError):
        return True
    return isinstance(exc, smtplib.SMTPServerDisconnected) and str(exc).endswith("timed out")


def classify(exc: BaseException, stage: str, settings: SmtpSettings, waited: float = 0.0) -> DeliveryError:
    """Turn an SMTP or socket failure during `stage` into a transient or permanent `DeliveryError`.

    `waited`: seconds from the start of the conversation to the failure, so that a
    connection dropped by a firewall after a long silence says it got no answer.
    """
    at = where(settings)
    if stage == "connect" and (timed_out(exc) or isinstance(exc, smtplib.SMTPServerDisconnected)):
        return _no_greeting(exc, at, settings, waited)
    if isinstance(exc, NotOfferedError):
        fix = {
            "STARTTLS": "set SMTP security to 'ssl' (usually port 465)",
            "AUTH": "check the SMTP security setting (many servers offer AUTH only after "
            "STARTTLS) or remove the SMTP username",
        }[exc.feature]
        return error(f"the mail server {at} does not offer {exc.feature}; {fix}", True)
    if isinstance(exc, ssl.SSLCertVerificationError):
        why = quoted(settings, exc.verify_message or str(exc))
        return error(
            f"the TLS certificate of the mail server {at} could not be verified ({why}); "
            "fix the server's certificate or use the host name it was issued for",
            True,
        )
    if isinstance(exc, ssl.SSLError) and not isinstance(exc, ssl.SSLEOFError | ssl.SSLZeroReturnError):
        return error(
            f"TLS with the mail server {at} failed during {stage} ({quoted(settings, str(exc))});"
            " check the SMTP security setting ('ssl' for port 465, 'starttls' for 587)",
            True,
        )
    if isinstance(exc, smtplib.SMTPRecipientsRefused):
        rcpt, (code, text) = next(iter(exc.recipients.items()))
        by_code = _by_code(settings, code, text, f"the mail server refused recipient {rcpt}", "check the address")
        reply = f"{code} {quoted(settings, text)}".strip()
        return RecipientRefusedError(str(by_code), permanent=by_code.permanent, reply=reply)
    if isinstance(exc, smtplib.SMTPSenderRefused):
        fix = "check the SMTP sender address; servers often accept only their own domain"
        what = f"the mail server refused sender {exc.sender}"
        return _by_code(settings, exc.smtp_code, exc.smtp_error, what, fix)
    if isinstance(exc, smtplib.SMTPAuthenticationError):
        what = f"the mail server {at} rejected the login for {settings.username!r}"
        fix = "check the SMTP username and password"
        return _by_code(settings, exc.smtp_code, exc.smtp_error, what, fix)
    if isinstance(exc, smtplib.SMTPResponseException):
        if exc.smtp_code == 552:
            fix = "the message is too large for it; lower the attachment limit or use S3"
        else:
            fix = f"it refused the message at {stage}; check its rules for this sender"
        what = f"the mail server {at} answered"
        return _by_code(settings, exc.smtp_code, exc.smtp_error, what, fix)
    if timed_out(exc):
        return error(f"the mail server {at} did not answer within {settings.timeout:g} s during {stage}", False)
    if isinstance(exc, smtplib.SMTPServerDisconnected):
        return error(f"the mail server {at} closed the connection during {stage}", False)
    detail = quoted(settings, str(exc) or type(exc).__name__)
    if stage == "connect":
        return error(
            f"cannot connect to the mail server {at} ({detail}); "
            "check the SMTP host and port, or wait for the server to come back",
            False,
        )
    return error(f"lost the connection to the mail server {at} during {stage}", False)


def _no_greeting(exc: BaseException, at: str, settings: SmtpSettings, waited: float) -> DeliveryError:
    """No greeting from the server: it did not answer in time, was cut off after a silence, or hung up at once."""
    fix = (
        "check the SMTP host and port (a firewall may be dropping the connection), or wait for the server to come back"
    )
    if timed_out(exc):
        return error(f"the mail server {at} did not answer within {settings.timeout:g} s; {fix}", False)
    if waited >= 1:
        return error(
            f"the mail server {at} did not answer within {waited:.0f} s (the connection was dropped); {fix}", False
        )
    return error(
        f"the mail server {at} closed the connection before greeting; check the SMTP host and port "
        "(is a mail server listening there?)",
        False,
    )


def _by_code(settings: SmtpSettings, code: int, text: str | bytes, what: str, fix: str) -> DeliveryError:
    """4xx is temporary; 5xx will fail again until someone fixes what `fix` says."""
    reply = f"{code} {quoted(settings, text)}".strip()
    if code >= 500:
        return error(f"{what}: {reply}; {fix}", True)
    return error(f"{what}: {reply} (temporary)", False)
