"""Add, list and test a user's destinations; the only writer of destination secrets.

Why in `jobs/`: a service that joins store rows with delivery backends, for
the web views and the `destination` commands alike.

Settings are validated by building the real backend before anything is
stored, so a bad region, a private endpoint or a missing key is refused with
the backend's own message rather than failing on the first scheduled run.
"""

from __future__ import annotations

import secrets
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from account import canonical
from delivery.s3.addresses import AllowList, EndpointNotAllowedError
from delivery.s3.endpoint_check import check_endpoint_at_save
from errors import DeliveryError, InvalidInput
from jobs.destination_backends import SECRET_FIELDS, Registry
from store import Destination, User
from store.base import utcnow


def external_id_for(user: User) -> str:
    """A per-user ExternalId for AWS role trust policies (the confused-deputy guard)."""
    return f"lifeboat-{user.id}-{secrets.token_hex(8)}"


def add_destination(
    session: Session, registry: Registry, user: User, kind: str, label: str, settings: dict[str, Any]
) -> Destination:
    """Validate and store a destination; secret fields are encrypted, never stored in clear."""
    clear = {k: v for k, v in settings.items() if k not in SECRET_FIELDS and v not in (None, "")}
    if kind == "email" and "to" in clear:
        # Checked here, not in a form or a command, so every caller refuses the same addresses.
        try:
            clear["to"] = canonical.email_address(clear["to"])
        except ValueError as exc:
            raise InvalidInput("The email destination is not valid", [("to", str(exc))]) from None
    hidden = {k: v for k, v in settings.items() if k in SECRET_FIELDS and v}
    if kind == "s3" and clear.get("endpoint_url"):
        _check_s3_endpoint(str(clear["endpoint_url"]), registry)
    if kind == "s3" and clear.get("role_arn") and not clear.get("external_id"):
        clear["external_id"] = external_id_for(user)
    destination = Destination(user_id=user.id, kind=kind, label=label[:200] or kind, enabled=True)
    destination.settings = clear
    destination.secret_token = registry.encrypt(hidden) if hidden else None
    try:
        registry.backend(destination, user)  # validates every field
    except (ValueError, TypeError) as exc:
        raise InvalidInput(f"The {kind} destination is not valid: {exc}") from None
    session.add(destination)
    session.flush()
    return destination


def _check_s3_endpoint(url: str, registry: Registry) -> None:
    """Refuse an endpoint that is or resolves to a non-public host now, not at the first delivery.

    The connect-time guard (delivery.s3.network_guard) still checks every connection; this
    is so the user hears about `http://0x7f.1` in one line when they save it.
    """
    try:
        check_endpoint_at_save(url, AllowList.parse(registry.allow_list))
    except EndpointNotAllowedError as exc:
        raise InvalidInput(f"The s3 destination is not valid: {exc.user_message}") from None


def list_destinations(session: Session, user: User) -> list[Destination]:
    return list(session.scalars(select(Destination).where(Destination.user_id == user.id).order_by(Destination.id)))


def test_destination(session: Session | None, registry: Registry, destination: Destination, user: User) -> str:
    """Run the backend's connection test and record the outcome on the destination."""
    try:
        summary = registry.backend(destination, user).test_connection()
    except DeliveryError as exc:
        destination.status, destination.status_message = "error", exc.user_message
        destination.status_at = utcnow()
        raise
    destination.status, destination.status_message, destination.status_at = "ok", summary, utcnow()
    return summary


def public_view(destination: Destination) -> dict[str, Any]:
    """What pages and APIs may show: settings without secrets, and whether a secret is set."""
    return {
        "id": destination.id,
        "kind": destination.kind,
        "label": destination.label,
        "settings": destination.settings,
        "has_secret": destination.secret_token is not None,
        "enabled": destination.enabled,
        "status": destination.status,
        "status_message": destination.status_message,
    }
