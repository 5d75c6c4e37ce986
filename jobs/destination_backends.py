"""Build delivery backends from a user's destination rows and the operator's settings.

Why in `jobs/`: this is where store rows (`Destination`, `User`) meet the
app's configuration and become plain settings dataclasses; `delivery/` then
sees only those, never a row or Flask. Also the failure notice, whose text
is made of a run's details.

The only place that decrypts destination secrets: the decrypted values live in
the backend object for one delivery and are never stored, logged or shown.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from typing import Any

from flask import Flask
from sqlalchemy import select
from sqlalchemy.orm import Session

from config import ConfigError
from delivery.contract import Delivery
from delivery.email import EmailDelivery, SmtpSettings
from delivery.secrets import GENERATE_HINT, SecretBox, SecretKeyError
from errors import DeliveryError, LifeboatError
from jobs.delivery_places import Places, run_places
from jobs.destination_consent import receives
from store import Database, Destination, ExportRun, User

log = logging.getLogger("lifeboat.delivery")

SECRET_FIELDS = ("access_key_id", "secret_access_key")


# What a user (a page, the API, a run's error) is told; the operator's instructions go to the log.
# Servers refuse to start without keys (`config.startup_refusal`), so only a command can meet this.
NO_KEYS = "Saving or using stored credentials is unavailable right now; try again later."
NO_KEYS_LOG = (
    "LIFEBOAT_ENCRYPTION_KEYS is not set, so delivery credentials cannot be %s: set it to the same "
    "Fernet key(s) on every host that shares this database (generate one with " + GENERATE_HINT + ")."
)


def smtp_settings(config: dict[str, Any]) -> SmtpSettings:
    """The operator's SMTP settings; a value SmtpSettings refuses is a ConfigError naming the settings.

    Defaults come from `config.py` alone: a second default here once drifted
    from it (`lifeboat@localhost`, which the sender check itself refuses).
    """
    try:
        return SmtpSettings(
            host=config.get("SMTP_HOST"),
            port=config.get("SMTP_PORT"),
            security=config.get("SMTP_SECURITY") or "starttls",
            username=config.get("SMTP_USERNAME"),
            password=config.get("SMTP_PASSWORD"),
            sender_address=config.get("MAIL_FROM") or "",
            sender_name="Lifeboat",
        )
    except ValueError as exc:
        raise ConfigError(f"{exc} (check the LIFEBOAT_SMTP_* settings and LIFEBOAT_MAIL_FROM)") from None


def secret_box(config: dict[str, Any]) -> SecretBox | None:
    """The configured keys, or None; a bad key's message names where it came from (setting or file)."""
    keys = config.get("ENCRYPTION_KEYS") or []
    setting = config.get("ENCRYPTION_KEYS_SOURCE") or "LIFEBOAT_ENCRYPTION_KEYS"
    return SecretBox(keys, setting=setting) if keys else None


class Registry:
    """Turns `Destination` rows into ready backends, with the operator's limits applied."""

    def __init__(self, config: dict[str, Any]) -> None:
        self.smtp = smtp_settings(config)
        self.box = secret_box(config)
        self.attach_limit = config["EMAIL_ATTACH_LIMIT_BYTES"]
        self.allow_list = tuple(config.get("ENDPOINT_ALLOW_LIST") or ())
        # Keys each user's ExternalId (jobs.destination_setup.external_id_for): stable, not guessable.
        self.external_id_key = str(config.get("SECRET_KEY") or "")
        # For the link a new email destination mails (`jobs.destination_confirmation.Links`): read now,
        # so a base URL `lifeboat serve` settled on after the app was built is the one in the link.
        self.base_url = str(config.get("BASE_URL") or "")
        self.confirm_link_max_age = int(config.get("CONFIRM_LINK_MAX_AGE") or 0)

    def backend(self, destination: Destination, user: User) -> Delivery:
        settings = destination.settings
        if destination.kind == "email":
            return EmailDelivery(self.smtp, settings.get("to") or user.email, attach_limit_bytes=self.attach_limit)
        if destination.kind == "s3":
            from delivery.s3 import S3Delivery
            from delivery.s3.settings import S3Settings

            secrets = self.decrypt(destination)
            # One mapping of stored JSON values: S3Settings checks each field's type and grammar itself.
            values: dict[str, Any] = {k: v for k, v in settings.items() if k not in SECRET_FIELDS}
            values.update(secrets)
            return S3Delivery(S3Settings(**values), allow_list=self.allow_list)
        raise ValueError(f"unknown destination kind {destination.kind!r}")

    def decrypt(self, destination: Destination) -> dict[str, str]:
        if not destination.secret_token:
            return {}
        if self.box is None:
            log.error(NO_KEYS_LOG, "read")
            raise SecretKeyError(NO_KEYS)
        import json

        value = json.loads(self.box.decrypt(destination.secret_token))
        return {k: v for k, v in value.items() if k in SECRET_FIELDS}

    def encrypt(self, secrets: dict[str, str]) -> str:
        if self.box is None:
            log.error(NO_KEYS_LOG, "stored")
            raise SecretKeyError(NO_KEYS)
        import json

        return self.box.encrypt(json.dumps({k: secrets[k] for k in SECRET_FIELDS if secrets.get(k)}))


def destinations_for(app: Flask) -> Callable[[Session, User], Sequence[tuple[int | None, Delivery]]]:
    registry = Registry(dict(app.config))

    def destinations(session: Session, user: User) -> Sequence[tuple[int | None, Delivery]]:
        rows = session.scalars(
            select(Destination)
            .where(Destination.user_id == user.id, Destination.enabled.is_(True))
            .order_by(Destination.id)
        )
        # An email address nobody there agreed to yet gets nothing (the run says so: `waiting_destinations`).
        return [(row.id, _usable_backend(registry, row, user)) for row in rows if receives(row, user)]

    return destinations


def _usable_backend(registry: Registry, row: Destination, user: User) -> Delivery:
    """The row's backend; settings it cannot use (or a secret no key opens) fail the delivery for good.

    Why permanent: retrying cannot mend stored settings, and a crash would be
    retried five times with a traceback in the log; the user is told what to fix.
    """
    try:
        return registry.backend(row, user)
    except (ValueError, TypeError, LifeboatError) as exc:
        first = (str(exc).splitlines() or [type(exc).__name__])[0]
        raise DeliveryError(
            f"destination {row.id} unusable: {first}",
            permanent=True,
            user_message=f"The destination “{row.label}” cannot be used ({first}): "
            "open Settings → Destinations and fix or remove it.",
        ) from exc


def own_email_for(app: Flask) -> Callable[[User], Sequence[tuple[int | None, Delivery]]]:
    """The user's account address as a one-off destination (no destination row: `None` as its id)."""
    registry = Registry(dict(app.config))

    def own_email(user: User) -> Sequence[tuple[int | None, Delivery]]:
        backend = EmailDelivery(registry.smtp, user.email, attach_limit_bytes=registry.attach_limit)
        return [(None, backend)]

    return own_email


def failure_notifier(app: Flask, database: Database | None = None) -> Callable[[User, ExportRun], None]:
    """Email a user whose run failed for good: what went wrong, and where this archive did and did not arrive.

    Why the places: every destination is tried (`jobs.execute._deliver`), so a
    run can fail on one while the others got their copy; "Your Lifeboat export
    failed" read as if there were no copy anywhere, so such a run's subject says
    it was partly delivered, as the pages do, and names each place in words
    (`jobs.delivery_places`: "demo-copy@example.net", not a mailto: URL).
    """
    smtp = smtp_settings(dict(app.config))

    def notify(user: User, run: ExportRun) -> None:
        # Read now, not when the app was built: `lifeboat serve --port` settles the address after that.
        subject, text = failure_notice(run, _places(database, run.id), app.config["BASE_URL"])
        if not smtp.enabled:
            log.warning("export failed for user %s; email not configured, cannot notify", user.id)
            return
        EmailDelivery(smtp, user.email).send_notice(subject, text)

    return notify


def failure_notice(run: ExportRun, places: Places, base_url: str) -> tuple[str, str]:
    """The failure email's subject and text for `run`, whose archive arrived at `places.arrived`."""
    lines = [f"  - {place}" for place in places.arrived]
    missed = [f"  - {place}: {message}" if message else f"  - {place}" for place, message in places.missed]
    if places.arrived:
        subject = "Your Lifeboat export was partly delivered"
        opening = (
            f"Lifeboat made your archive, but could not deliver it everywhere (run {run.id}, "
            f"{run.attempt} attempt(s)).\n\nIt arrived at:\n" + "\n".join(lines) + "\n\n"
        )
        if missed:
            opening += "It did not arrive at:\n" + "\n".join(missed) + "\n\n"
    elif run.archive_id is not None:
        # The archive was made (or is a re-send's) and is kept: only delivery failed. "Could not complete
        # your export" read as if there were no archive at all (user trial).
        made = "Lifeboat made your archive, but could not deliver it"
        if run.resend_to:
            made = "Lifeboat could not deliver your archive again"
        subject = "Your Lifeboat archive was made, but not delivered"
        opening = (
            f"{made} (run {run.id}, {run.attempt} attempt(s)). It is kept on Lifeboat, "
            f"ready to download at {base_url}/archives\n\n"
        )
        if missed:
            opening += "It did not arrive at:\n" + "\n".join(missed) + "\n\n"
    else:
        subject = "Your Lifeboat export failed"
        opening = f"Lifeboat could not make your archive (run {run.id}, {run.attempt} attempt(s)).\n\n"
    text = (
        f"Hello,\n\n{opening}"
        f"What went wrong: {run.error or 'unknown error'}\n\n"
        f"Your earlier archives are untouched. See the details and try again at {base_url}/\n"
    )
    return subject, text


def _places(database: Database | None, run_id: str) -> Places:
    if database is None:
        return Places([], [])
    with database.session() as session:
        return run_places(session, [run_id])[run_id]


def notice_sender(app: Flask) -> Callable[[str, str, str], bool]:
    """Send a notice (`to`, subject, text) through the operator's mail server; without one, log it and say False."""
    smtp = smtp_settings(dict(app.config))

    def send(to: str, subject: str, text: str) -> bool:
        if not smtp.enabled:
            log.warning("email is not configured (LIFEBOAT_SMTP_HOST); could not send %r", subject)
            return False
        EmailDelivery(smtp, to).send_notice(subject, text)
        return True

    return send
