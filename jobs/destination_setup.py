"""Add, list and test a user's destinations; the only writer of destination secrets.

Why in `jobs/`: a service that joins store rows with delivery backends, for
the web views and the `destination` commands alike.

Settings are validated by building the real backend before anything is
stored, so a bad region, a private endpoint or a missing key is refused with
the backend's own message rather than failing on the first scheduled run.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session, object_session

from account import canonical
from delivery.email.headers import parse_address
from delivery.retention_policy import RetentionPolicy
from delivery.s3.addresses import AllowList, EndpointNotAllowedError
from delivery.s3.endpoint_check import check_endpoint_at_save
from delivery.s3.object_lock import lock_problems, lock_rule
from delivery.s3.settings import folder as s3_folder
from errors import DeliveryError, InvalidInput, LifeboatError
from jobs import destination_confirmation as confirmation
from jobs.bucket_retention import policy_of
from jobs.copy_checks import CopyCheck, copy_checks
from jobs.destination_backends import SECRET_FIELDS, Registry
from jobs.destination_consent import waiting_reason
from store import Database, DeliveryAttempt, Destination, User
from store.base import is_row_id, utcnow


def external_id_for(user: User, key: str) -> str:
    """The user's ExternalId for AWS role trust policies (the confused-deputy guard).

    Why derived rather than random: the settings page shows it before the role is
    saved, so the user can put it in the role's trust policy first; it must be the
    same when they save, and never chosen by the user (another user could then
    name someone else's). An HMAC of the user id under the server's secret key is both.
    """
    digest = hmac.new(key.encode(), f"external-id:{user.id}".encode(), hashlib.sha256).hexdigest()
    return f"lifeboat-{user.id}-{digest[:16]}"


LABEL_FIELD = "The label"  # how `canonical.name_problem` names it, for the page, the API and the CLI alike


def check_label(label: str) -> None:
    """`InvalidInput` (problem `label`) if `label` holds what a name shown to people must not.

    Why here: the label is shown on the destinations page, in runs' histories and
    in the support console, and a line break or a text-direction override there
    reads otherwise than it is ("Friend\\r\\nBcc: evil@x.com"). Checked when
    adding and editing, so the page, the API and the CLI all refuse it alike.
    """
    problem = canonical.name_problem(LABEL_FIELD, label)
    if problem:
        raise InvalidInput(f"The destination was not saved: {problem}", [("label", problem)])


class AlreadyAdded(InvalidInput):
    """The account already has a destination delivering to that place; the message names it (label and id)."""


def add_destination(
    session: Session,
    registry: Registry,
    user: User,
    kind: str,
    label: str,
    settings: dict[str, Any],
    *,
    budget: confirmation.MailBudget = confirmation.UNLIMITED,
) -> Destination:
    """Validate and store a destination; secret fields are encrypted, never stored in clear.

    An empty `label` gets `default_label`'s, so the page, the API and the CLI name the same destination alike.
    `budget`: how many confirmation links the address's mailbox may still get (`jobs.destination_confirmation`).
    """
    destination = Destination(user_id=user.id, kind=kind, label=label[:200] or kind, enabled=True)
    _store_checked(registry, user, destination, settings)
    check_label(label)  # after the settings: the page's and the CLI's `s3://bucket` gets the bucket's own words
    if not label:
        destination.label = default_label(kind, destination.settings, user)[:200] or kind
    _refuse_twice(session, user, destination)
    session.add(destination)
    session.flush()
    # An address other than the account's own waits for its owner's yes; the link goes out after commit.
    confirmation.start(session, confirmation.Links.of(registry), destination, user, now=utcnow(), budget=budget)
    return destination


def default_label(kind: str, settings: dict[str, Any], user: User) -> str:
    """The name a destination gets when none is chosen: `s3://bucket`, or `email address` (the account's own if none).

    Why one function: the API named an address `x@…` and the page `email x@…`, so
    one destination had two names depending on where it was added.
    """
    if kind == "email":
        return f"email {settings.get('to') or user.email}"
    return _auto_label(kind, settings)


def _place(destination: Destination, user: User) -> tuple[str, ...] | None:
    """What names where `destination` delivers: the same place twice would get every archive twice.

    For S3 that is the endpoint, bucket and folder (as the backend reads them:
    `a/b/` and `/a/b` are one folder). Two destinations there would also prune
    one folder by two retention policies, each deleting what the other keeps. A
    destination with a wrong key is changed in place (`edit_destination`), not
    added again.
    """
    settings = destination.settings or {}
    if destination.kind == "email":
        # No `to` is the account's own address (`is_account_address`): the same place as naming it (CLI trial).
        return (str(settings.get("to") or user.email).strip().lower(),)
    if destination.kind == "s3":
        endpoint = str(settings.get("endpoint_url") or "").strip().rstrip("/").lower()
        return (endpoint, str(settings.get("bucket") or ""), s3_folder(str(settings.get("prefix") or "")))
    return None


def _refuse_twice(session: Session, user: User, destination: Destination) -> None:
    """`InvalidInput` if `user` already has a destination delivering to the same place (trial: three emails)."""
    place = _place(destination, user)
    if place is None:
        return
    same_kind = select(Destination).where(Destination.user_id == user.id, Destination.kind == destination.kind)
    for other in session.scalars(same_kind):
        if other.id != destination.id and _place(other, user) == place:
            raise AlreadyAdded(
                f"You already have this destination ({other.label}, id {other.id}): "
                "change or remove that one rather than add it twice"
            )


def _store_checked(registry: Registry, user: User, destination: Destination, settings: dict[str, Any]) -> None:
    """Put `settings` on `destination` (secrets encrypted) and build its backend; `InvalidInput` if any is wrong.

    Shared by adding and editing, so a changed destination is held to exactly the
    rules a new one is, and its secrets are written the one way.
    """
    kind = destination.kind
    clear = {k: v for k, v in settings.items() if k not in SECRET_FIELDS and v not in (None, "")}
    if kind == "email" and "to" in clear:
        # Checked here, not in a form or a command, so every caller refuses the same addresses.
        try:
            clear["to"] = canonical.email_address(clear["to"])
            # The mailer's own rule too (`=?UTF-8?Q?=0A?=y@example.org` passes the first): an address it refuses
            # would get "we emailed a link" though nothing was sent, and wait forever.
            parse_address(clear["to"])
        except ValueError as exc:  # the mailer's HeaderValueError is one
            raise InvalidInput(f"The email destination is not valid: {_first_line(exc)}", [("to", str(exc))]) from None
    hidden = {k: v for k, v in settings.items() if k in SECRET_FIELDS and v}
    if kind == "s3" and clear.get("endpoint_url"):
        _check_s3_endpoint(str(clear["endpoint_url"]), registry)
    if kind == "s3" and clear.get("role_arn"):
        clear["external_id"] = external_id_for(user, registry.external_id_key)
    destination.settings = clear
    destination.secret_token = registry.encrypt(hidden) if hidden else None
    try:
        registry.backend(destination, user)  # validates every field
    except (ValueError, TypeError) as exc:
        # The backend's own field problems are kept, so a form can show each next to its field.
        problems = exc.problems if isinstance(exc, InvalidInput) else None
        first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise InvalidInput(f"The {kind} destination is not valid: {first}", problems) from None


# What a user may change on an existing destination; retention has its own form and endpoint.
EDITABLE = {
    "s3": (
        "endpoint_url",
        "region",
        "bucket",
        "prefix",
        "path_style",
        "role_arn",
        "lock_mode",
        "lock_days",
        *SECRET_FIELDS,
    ),
    "email": ("to",),
}


def edit_destination(
    session: Session,
    registry: Registry,
    user: User,
    destination_id: int,
    changes: dict[str, Any],
    *,
    budget: confirmation.MailBudget = confirmation.UNLIMITED,
) -> Destination | None:
    """Change `user`'s destination in place; None if it is not theirs. Raises `InvalidInput` as adding does.

    Why in place rather than remove and add: the id, the retention policy and the
    delivery history stay with it, and support's "fixed the key, re-send" finds it.
    In `changes` a field left out (or None) keeps its value, as does an empty `label`; "" empties a plain
    field; a blank secret keeps the stored one (secrets never travel back to a
    page to be re-sent). Giving keys switches from a role to keys; giving a role
    drops the stored keys. The error status is cleared: the caller tests it again.
    """
    row = session.get(Destination, destination_id) if is_row_id(destination_id) else None
    if row is None or row.user_id != user.id:
        return None
    if changes.get("label"):
        check_label(str(changes["label"]))
    given = {k: v for k, v in changes.items() if k in EDITABLE.get(row.kind, ()) and v is not None}
    settings: dict[str, Any] = {**row.settings, **{k: v for k, v in given.items() if k not in SECRET_FIELDS}}
    new_secrets = {k: v for k, v in given.items() if k in SECRET_FIELDS and v}
    if new_secrets and "role_arn" not in given:
        settings.pop("role_arn", None)  # keys given: sign in with them from now on
    if not settings.get("role_arn"):
        settings.pop("external_id", None)  # it belongs to the role just dropped
        # Both keys given: the stored ones are not read, so keys stored under a lost encryption key can be replaced.
        kept = registry.decrypt(row) if set(new_secrets) != set(SECRET_FIELDS) else {}
        settings.update({**kept, **new_secrets})
    before, where = default_label(row.kind, row.settings, user), _place(row, user)
    old_to = str(row.settings.get("to") or "")
    _store_checked(registry, user, row, settings)
    if _place(row, user) != where:  # moved: not into another's place (twins made before the rule can still be fixed)
        _refuse_twice(session, user, row)
        if row.kind == "email":  # a new address: its owner must agree first, as when adding it
            confirmation.start(session, confirmation.Links.of(registry), row, user, now=utcnow(), budget=budget)
    if changes.get("label"):
        row.label = str(changes["label"])[:200]
    elif row.label == before or (row.kind == "email" and old_to and row.label == old_to):
        # A label the user did not choose follows the new bucket or address (the API named one by its bare
        # address before `default_label`).
        row.label = default_label(row.kind, row.settings, user)[:200] or row.kind
    row.status, row.status_message, row.status_at = "untested", None, utcnow()
    return row


def _first_line(exc: ValueError) -> str:
    return str(exc).splitlines()[0] if str(exc) else "the address is not valid"


def _auto_label(kind: str, settings: dict[str, Any]) -> str:
    """The label the page gives a destination it adds: `s3://bucket` or `email address`."""
    return f"s3://{settings.get('bucket', '')}" if kind == "s3" else f"email {settings.get('to', '')}"


def _check_s3_endpoint(url: str, registry: Registry) -> None:
    """Refuse an endpoint that is or resolves to a non-public host now, not at the first delivery.

    The connect-time guard (delivery.s3.network_guard) still checks every connection; this
    is so the user hears about `http://0x7f.1` in one line when they save it.
    """
    try:
        check_endpoint_at_save(url, AllowList.parse(registry.allow_list))
    except EndpointNotAllowedError as exc:
        raise InvalidInput(f"The s3 destination is not valid: {exc.user_message}") from None


def remove_destination(session: Session, user_id: int, destination_id: int) -> str | None:
    """Delete `user_id`'s destination and return its label; None if there is none of theirs with that id.

    The one way the page, the API and the CLI remove one. Archives already
    delivered there stay where they are; its delivery attempts keep their
    history without it (their foreign key is set to NULL).
    """
    row = session.get(Destination, destination_id) if is_row_id(destination_id) else None
    if row is None or row.user_id != user_id:
        return None
    label = row.label
    session.delete(row)
    return label


def list_destinations(session: Session, user: User) -> list[Destination]:
    return list(session.scalars(select(Destination).where(Destination.user_id == user.id).order_by(Destination.id)))


@dataclass(frozen=True)
class TryOutcome:
    """What pressing "Test" found: whether it worked, and in words what worked or what to fix."""

    ok: bool
    message: str


def try_destination(database: Database, registry: Registry, destination_id: int, user_id: int) -> TryOutcome | None:
    """Test `user_id`'s destination now and keep the outcome as its status; None if it is not theirs.

    The network call happens outside any transaction (a slow store must not hold
    the write lock); only its outcome is written, in a short write afterwards.
    """
    probed = probe_destination(database, registry, destination_id, user_id)
    if probed is None:
        return None
    with database.session(write=True) as session:
        keep_probe_status(session, probed)
    return probed.outcome


@dataclass(frozen=True)
class Probe:
    """A destination tested outside any transaction: the outcome, and the status to store for it."""

    destination_id: int
    outcome: TryOutcome
    status: str
    status_message: str | None
    status_at: dt.datetime | None


def probe_destination(database: Database, registry: Registry, destination_id: int, user_id: int) -> Probe | None:
    """Test the destination over the network and write nothing; None if it is not `user_id`'s.

    Split from the write so a caller (support's clear-and-re-test) can store the
    status in the same transaction as its own record of the action.
    """
    with database.session() as session:
        row = session.get(Destination, destination_id) if is_row_id(destination_id) else None
        user = session.get(User, user_id)
        if row is None or user is None or row.user_id != user_id:
            return None
    try:
        outcome = TryOutcome(True, test_destination(None, registry, row, user))
    except DeliveryError as exc:
        outcome = TryOutcome(False, exc.user_message)
    except (LifeboatError, ValueError, TypeError) as exc:  # e.g. the keys to read its secret are gone
        outcome = TryOutcome(False, str(exc))
        row.status, row.status_message, row.status_at = "error", outcome.message, utcnow()
    return Probe(destination_id, outcome, row.status, row.status_message, row.status_at)


def keep_probe_status(session: Session, probe: Probe) -> bool:
    """Store what the probe found as the destination's status; False if it was removed meanwhile."""
    stored = session.get(Destination, probe.destination_id)
    if stored is None:  # removed meanwhile: nothing to note it on
        return False
    stored.status, stored.status_message, stored.status_at = probe.status, probe.status_message, probe.status_at
    return True


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


def public_view(destination: Destination, check: CopyCheck | None = None, user: User | None = None) -> dict[str, Any]:
    """What pages and APIs may show: settings without secrets, and whether a secret is set.

    An email address still waiting for its owner's yes shows as status `waiting`, with why
    and what to do, whatever its last test found: that is what decides whether it gets
    archives. `check`: the latest later check of its delivered copy (`jobs.copy_checks`).
    While it stands bad, the status is "error" with the check's words: "ok" from the
    delivery's own read-back, weeks before the copy went missing, was the lie a user trial found.
    """
    status, message, confirmed = standing_status(destination, check, user)
    return {
        "id": destination.id,
        "kind": destination.kind,
        "label": destination.label,
        "settings": destination.settings,
        "has_secret": destination.secret_token is not None,
        "enabled": destination.enabled,
        "status": status,
        "status_message": message,
        "copy_check": copy_check_view(check),
        "confirmed": confirmed,
        "confirmation_sent_at": destination.confirm_sent_at if not confirmed else None,
        "retention_summary": retention_summary(destination),
        "lock_summary": lock_summary(destination),
    }


def public_views(session: Session, user: User) -> list[dict[str, Any]]:
    """`public_view` of each of the user's destinations, with the latest check of its copy."""
    checks = copy_checks(session, user.id)
    return [public_view(d, checks.get(d.id), user) for d in list_destinations(session, user)]


def checked_view(session: Session, destination: Destination) -> dict[str, Any]:
    """`public_view` of one destination with the latest check of its copy."""
    return public_view(destination, copy_checks(session, destination.user_id).get(destination.id))


def copy_check_view(check: CopyCheck | None) -> dict[str, Any] | None:
    """The latest later check of a destination's copy as the API shows it; None if never checked (or superseded)."""
    if check is None or not check.current:
        return None
    return {
        "state": check.state,
        "problem": check.bad,
        "words": check.words,
        "detail": check.detail,
        "what_to_do": check.what_to_do or None,
        "since": check.since,
        "checked_at": check.checked_at,
        "run_id": check.run_id,
        "object_key": check.object_key,
    }


def standing_status(
    destination: Destination, check: CopyCheck | None, user: User | None = None
) -> tuple[str, str | None, bool]:
    """(status, its words, confirmed) as every reader shows it: a standing bad check of the copy outranks the test.

    One rule for the API, the CLI, the user's pages and the support console: a
    console that said "ok … verified by HEAD" while the queue listed the copy
    as missing sent staff chasing the wrong thing (user trial).
    """
    status, message, confirmed = _shown_status(destination, user)
    if confirmed and check is not None and check.bad and check.current:
        status, message = "error", f"{check.sentence} Since {check.since:%Y-%m-%d %H:%M} UTC."
    return status, message, confirmed


def _shown_status(destination: Destination, user: User | None) -> tuple[str, str | None, bool]:
    """(status, its words, confirmed): `waiting` and why while the address's owner has not agreed yet."""
    if user is None:
        session = object_session(destination)
        user = session.get(User, destination.user_id) if session is not None else None
    waiting = waiting_reason(destination, user) if user is not None else None
    if waiting is None:
        return destination.status, destination.status_message, True
    return "waiting", waiting, False


def retention_summary(destination: Destination) -> str | None:
    """An S3 destination's retention policy in plain words; None for email (nothing to prune)."""
    if destination.kind != "s3":
        return None
    try:
        return policy_of(destination).summary()
    except InvalidInput:  # stored before today's rules: say so rather than fail the whole list
        return "The stored retention policy is not valid; choose it again."


def lock_summary(destination: Destination) -> str | None:
    """Whether an S3 destination locks its archives (S3 Object Lock), in words; None for email."""
    if destination.kind != "s3":
        return None
    settings = destination.settings
    if lock_problems(settings.get("lock_mode"), settings.get("lock_days")):
        return "The stored lock setting is not valid; choose it again."
    rule = lock_rule(settings.get("lock_mode"), settings.get("lock_days"))
    return rule.summary() if rule else "Archives are not locked: whoever holds the bucket's keys can delete them."


def mask_key_id(value: str | None) -> str:
    """`AKIA…WXYZ`: enough of an access key ID to tell keys apart, not enough to use one."""
    if not value:
        return "not set"
    return f"{value[:4]}…{value[-4:]}" if len(value) >= 12 else "…" * 3


@dataclass(frozen=True)
class DestinationView:
    """One destination as the settings page shows it: where, how it signs in (masked), how it went."""

    id: int
    kind: str
    label: str
    where: str
    credentials: str  # e.g. "access key AKIA…WXYZ (secret key stored encrypted)"; never a secret
    status: str
    status_message: str | None
    status_at: dt.datetime | None
    last_attempt: DeliveryAttempt | None
    retention: RetentionPolicy | None = None  # S3: the stored policy (None if unreadable or not a bucket)
    retention_summary: str | None = None  # S3: in plain words
    lock_summary: str | None = None  # S3: whether archives are locked (S3 Object Lock), in plain words
    settings: dict[str, Any] | None = None  # what the edit form starts from; never a secret (those are encrypted)
    copy: CopyCheck | None = None  # the latest later check of its newest delivered copy (`jobs.copy_checks`)
    waiting: bool = False  # an email address whose owner has not followed the link yet: "Send the link again"

    @property
    def problem(self) -> CopyCheck | None:
        """The standing bad check of its copy (missing, changed, …): what the status says, with the fix."""
        return self.copy if self.copy is not None and self.copy.bad else None


def describe_destinations(session: Session, registry: Registry, user: User) -> list[DestinationView]:
    """The user's destinations for the settings page, each with its latest delivery attempt and later check."""
    checks = copy_checks(session, user.id)
    return [_describe(session, registry, row, checks.get(row.id), user) for row in list_destinations(session, user)]


def _describe(
    session: Session, registry: Registry, row: Destination, check: CopyCheck | None, user: User
) -> DestinationView:
    settings = row.settings
    status, status_message, confirmed = standing_status(row, check, user)
    if row.kind == "s3":
        prefix = settings.get("prefix", "lifeboat")
        where = f"s3://{settings.get('bucket', '')}/{prefix}".rstrip("/")
        where += f" at {settings['endpoint_url']}" if settings.get("endpoint_url") else " (AWS)"
        if settings.get("role_arn"):
            credentials = f"role {settings['role_arn']} with ExternalId {settings.get('external_id', '')}"
        else:
            credentials = _key_shown(registry, row)
    else:
        where, credentials = str(settings.get("to") or "your account's address"), "none needed"
    attempts = select(DeliveryAttempt).where(DeliveryAttempt.destination_id == row.id)
    if row.kind == "email" and row.confirm_sent_at is not None:
        # Its address changed then (or it was added): a delivery to the old address is not its last. Strictly
        # after: `at` is to the second, and the new address receives nothing until someone there said yes.
        attempts = attempts.where(DeliveryAttempt.at > row.confirm_sent_at)
    # While it waits, nothing went to its address yet: any attempt was to an earlier one (also when no link
    # could be sent, and `confirm_sent_at` is empty).
    last = (
        session.scalar(attempts.order_by(DeliveryAttempt.at.desc(), DeliveryAttempt.id.desc()).limit(1))
        if confirmed
        else None
    )
    return DestinationView(
        id=row.id,
        kind=row.kind,
        label=row.label,
        where=where,
        credentials=credentials,
        status=status,
        status_message=status_message,
        status_at=_status_at(row, check, confirmed),
        last_attempt=last,
        retention=_readable_policy(row),
        retention_summary=retention_summary(row),
        lock_summary=lock_summary(row),
        settings=dict(row.settings),
        copy=check if check is not None and check.current else None,
        waiting=not confirmed,
    )


def _status_at(row: Destination, check: CopyCheck | None, confirmed: bool) -> dt.datetime | None:
    """When the shown status was found: the check's time when its finding is what is shown."""
    if not confirmed:
        return row.confirm_sent_at
    return check.checked_at if check is not None and check.bad and check.current else row.status_at


def _readable_policy(row: Destination) -> RetentionPolicy | None:
    try:
        return policy_of(row) if row.kind == "s3" else None
    except InvalidInput:
        return None


def _key_shown(registry: Registry, row: Destination) -> str:
    if not row.secret_token:
        return "no access key stored"
    try:
        key_id = registry.decrypt(row).get("access_key_id")
    except (LifeboatError, ValueError) as exc:
        return f"access key stored, but it cannot be read: {exc}"
    return f"access key {mask_key_id(key_id)} (secret key stored encrypted)"
