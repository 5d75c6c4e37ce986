"""The undocumented parts of `smtplib.SMTP` that the streamed DATA relies on, checked against a real server.

Why: `delivery.email.transport.send_streamed` writes DATA in pieces with
`SMTP.send`, reads the final reply with `SMTP.getreply` and reads the SIZE
limit from `SMTP.esmtp_features`; the library documents none of the three (only
`docmd`, `mail`, `rcpt`, `data`, `sendmail`, `send_message`). If a Python
release renames or changes them, this fails and names the attribute, rather
than every archive email failing in production.
"""

from __future__ import annotations

import smtplib

import pytest

from tests.servers.smtp import SmtpServer

RELIES = "delivery/email/transport.py (send_streamed, server_limit) relies on it"


@pytest.mark.server
def test_smtplib_still_offers_send_getreply_and_esmtp_features(smtp_server: SmtpServer) -> None:
    for name in ("send", "getreply", "docmd", "mail", "rcpt"):
        assert callable(getattr(smtplib.SMTP, name, None)), f"smtplib.SMTP.{name} is gone: {RELIES}"
    with smtplib.SMTP(smtp_server.host, smtp_server.port, timeout=10) as smtp:
        smtp.ehlo()
        features = getattr(smtp, "esmtp_features", None)
        assert isinstance(features, dict), f"smtplib.SMTP.esmtp_features is no longer a dict: {RELIES}"
        assert features.get("size", "").strip().isdigit(), (
            f"smtplib.SMTP.esmtp_features no longer holds the SIZE value as text: {RELIES}"
        )
        assert smtp.mail("a@example.com")[0] == 250
        assert smtp.rcpt("b@example.com")[0] == 250
        assert smtp.docmd("DATA")[0] == 354
        smtp.send(b"Subject: x\r\n\r\n")
        smtp.send(b"body\r\n.\r\n")
        code, _ = smtp.getreply()
        assert code == 250, f"smtplib.SMTP.send/getreply no longer carry a DATA body and its reply: {RELIES}"
    assert len(smtp_server.received) == 1
