"""Deliver archives by email through the operator's SMTP server.

One concern per module:

- `settings`: `SmtpSettings`, checked at startup
- `headers`: user-controlled text made safe for headers (the 3.11.7 encoded-word injection)
- `summary`: what the email says (subject, text, HTML)
- `message`: the MIME message (`EmailMessage`), its header read-back checks, the streamed archive part
- `transport`: the SMTP conversation (`send_message` for notices, a streamed DATA for archives)
- `errors`: SMTP and socket failures mapped to transient or permanent `DeliveryError`s
- `backend`: `EmailDelivery`, which ties them together
"""

from __future__ import annotations

from delivery.email.backend import EmailDelivery
from delivery.email.settings import SmtpSettings

__all__ = ["EmailDelivery", "SmtpSettings"]
