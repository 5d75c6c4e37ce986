"""What support staff may do to a user's account, each action audited in its own transaction.

Why one service for the console's forms and the staff API alike: every action
must check the same things, happen once per request key, and leave the same
audit row, whichever door it came through. Each action:

- refuses a missing or over-long reason (`InvalidInput`) and an unknown user
  (`UnknownTarget`) before touching anything;
- looks for an earlier action with the same request key (`jobs.audit.already_done`)
  and, if there is one, returns that action's outcome and does nothing;
- writes its own rows and its audit row in one `session(write=True)`, so there
  is never an action without its row, nor a row for an action rolled back.

A refusal that is the state of the account (the archive is not the user's,
another export is running) raises `ActionRefused`, in words, changes nothing,
and is audited with outcome "refused" (`_audited`, which also refuses a request
key reused for another action and answers a racing twin with the winner's outcome).
Staff accounts are no target: support acts on users only.
"""

from __future__ import annotations

import datetime as dt
import functools
import inspect
import json
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, ParamSpec

from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from errors import InvalidInput, UserError
from jobs import api_tokens, download_links, run_lifecycle
from jobs.audit import Actor, already_done, record
from jobs.destination_backends import Registry
from jobs.destination_setup import keep_probe_status, probe_destination
from jobs.user_schedule import ScheduleChange, find_schedule, save_schedule
from store import Archive, AuditEvent, Database, Destination, User
from store.base import is_row_id

MAX_REASON = 500
MAX_REQUEST_KEY = 128  # audit_events.request_key
RESEND_TARGETS = ("destinations", "email")
P = ParamSpec("P")
PAUSED_BY_SUPPORT = "Paused by Lifeboat support. Saving your schedule on the Settings page resumes it."


class UnknownTarget(UserError):
    """No user (or no destination of theirs) with this id: the pages answer 404. `kind`: "user" or "destination"."""

    def __init__(self, kind: str, message: str) -> None:
        super().__init__(message)
        self.kind = kind


class ActionRefused(UserError):
    """The account's state forbids the action (say why and what to do instead); nothing was done."""


@dataclass(frozen=True)
class ActionResult:
    """What happened, in words for the page or the API; `repeated` when the request key was seen before."""

    action: str
    ok: bool
    message: str
    repeated: bool = False
    run_id: str | None = None
    queued: bool = False  # a new run waits: the caller should wake the workers (`jobs.kick`)
    refused: bool = False  # a repeat of a refused action: the API answers it as it answered the first (409)

    @classmethod
    def of(cls, event: AuditEvent) -> ActionResult:
        """The outcome an earlier action recorded (for a repeated request key)."""
        detail: dict[str, Any] = json.loads(event.detail or "{}")
        return cls(
            action=event.action,
            ok=event.outcome == "ok",
            message=str(detail.get("message") or f"Already done ({event.action}, {event.outcome})."),
            repeated=True,
            run_id=detail.get("run_id"),
            refused=event.outcome == "refused",
        )


# Control characters (but tab and newline) and the bidirectional overrides and isolates: a reason
# is read in the console, the CSV export and the user's History, where an escape sequence or a
# right-to-left override would change what the reader sees.
_HIDDEN = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]")
_SURROGATE = re.compile("[\ud800-\udfff]")
CLIENT_KEY_PREFIX = "req:"  # keys from forms and API calls; the system's own (a bulk job's) never start so


def check_reason(reason: str | None) -> str:
    """The reason as stored: required, at most 500 characters, free of hidden characters.

    Control characters and bidirectional overrides are dropped and lone
    surrogates (valid JSON, not valid text) become U+FFFD, as NUL does for all
    free text: the reason is shown to people, and stored in any database.
    """
    text = _SURROGATE.sub("\ufffd", _HIDDEN.sub("", (reason or "").replace("\x00", "\ufffd"))).strip()
    if not text:
        raise InvalidInput("Give a reason: it is kept in the audit log with the action.", [("reason", "required")])
    if len(text) > MAX_REASON:
        raise InvalidInput(
            f"The reason is {len(text)} characters long; keep it to {MAX_REASON}.", [("reason", "too long")]
        )
    return text


def check_request_key(request_key: str | None) -> str | None:
    """A request key as given: 1 to 128 printable characters (it is stored and compared, never shown)."""
    if request_key is not None and (
        not request_key or len(request_key) > MAX_REQUEST_KEY or not request_key.isprintable()
    ):
        raise InvalidInput(
            f"The request key must be 1 to {MAX_REQUEST_KEY} printable characters.", [("request_key", "bad")]
        )
    return request_key


def client_request_key(request_key: str | None) -> str | None:
    """A key from a form or an API call, in its own namespace.

    Why: the audit log's request keys are one unique column shared with the
    system's own keys (a bulk re-send's `bulk:<job>:<user>`, which count its
    progress); a client sending such a key would mark a user of that job as done.
    """
    checked = check_request_key(request_key)
    return None if checked is None else (CLIENT_KEY_PREFIX + checked)[:MAX_REQUEST_KEY]


class RequestKeyReused(InvalidInput):
    """The request key was already used for another action or another user: nothing was done (409)."""


def _audited(action: str) -> Callable[[Callable[P, ActionResult]], Callable[P, ActionResult]]:
    """What every staff action does around its own work, whichever door (console, API, bulk) it came through.

    - A request key already used for a *different* action or user is refused
      (`RequestKeyReused`), never answered with that other action's outcome.
    - A refusal (`ActionRefused`) is audited too, with outcome "refused" and the
      request key, so a resubmitted refused form answers "already refused" once.
    - A concurrent twin (two requests with one key racing: PostgreSQL lets both
      read "not done", then one insert of the unique key fails) answers with the
      winner's outcome instead of an IntegrityError.
    """

    def wrap(act: Callable[P, ActionResult]) -> Callable[P, ActionResult]:
        signature = inspect.signature(act)

        @functools.wraps(act)
        def guarded(*args: P.args, **kwargs: P.kwargs) -> ActionResult:
            given = signature.bind(*args, **kwargs).arguments
            db: Database = given["db"]
            key = check_request_key(given["request_key"])
            user_id: int = given["user_id"]
            with db.session() as session:
                earlier = already_done(session, key)
            if earlier is not None and (earlier.action != action or earlier.target_user_id != user_id):
                raise RequestKeyReused(
                    "This request key was already used for another action or user: send a new key.",
                    [("request_key", "reused")],
                )
            try:
                return act(*args, **kwargs)
            except ActionRefused as refusal:
                _record_refusal(db, given, action, str(refusal))
                raise
            except IntegrityError:
                with db.session() as session:
                    winner = already_done(session, key)
                if winner is None:
                    raise
                return ActionResult.of(winner)

        return guarded

    return wrap


def _record_refusal(db: Database, given: Mapping[str, Any], action: str, message: str) -> None:
    """The audit row of a refused action (its own short write; a twin that recorded it first wins)."""
    actor: Actor = given["actor"]
    try:
        with db.session(write=True) as session:
            if already_done(session, given["request_key"]) is not None:
                return
            user = session.get(User, given["user_id"]) if is_row_id(given["user_id"]) else None
            record(
                session,
                actor,
                action,
                now=given["now"],
                target=user,
                reason=check_reason(given["reason"]),
                outcome="refused",
                detail={"message": f"Nothing was done: {message}"},
                request_key=given["request_key"],
            )
    except IntegrityError:
        return


def _target(session: Session, user_id: int) -> User:
    user = session.get(User, user_id) if is_row_id(user_id) else None
    if user is None or user.role != "user":  # staff accounts are no support target: the same 404 as the page
        raise UnknownTarget("user", f"There is no user with id {user_id}.")
    return user


def _done(
    session: Session,
    actor: Actor,
    action: str,
    user: User,
    *,
    reason: str,
    request_key: str | None,
    now: dt.datetime,
    message: str,
    outcome: str = "ok",
    run_id: str | None = None,
    queued: bool = False,
    **detail: Any,
) -> ActionResult:
    """Write the audit row (in the caller's transaction) and say what happened."""
    record(
        session,
        actor,
        action,
        now=now,
        target=user,
        reason=reason,
        outcome=outcome,
        detail={"message": message, "run_id": run_id, **detail},
        request_key=request_key,
    )
    return ActionResult(action=action, ok=outcome == "ok", message=message, run_id=run_id, queued=queued)


@_audited("archive.resend")
def resend_archive(
    db: Database,
    actor: Actor,
    user_id: int,
    archive_id: str,
    to: str,
    *,
    reason: str,
    request_key: str | None,
    now: dt.datetime,
    email_ready: bool = True,
) -> ActionResult:
    """Send an archive the user already has again: the same bytes, to their destinations or their email.

    `email_ready` False (the server has no mail server set): a re-send to the
    user's email is refused now, rather than queued to fail in their History.

    Why a run and not a direct upload: the re-send then gets everything a
    delivery has (retries with backoff, one attempt row and receipt per
    destination, a line in the user's History). The run is queued with the
    archive attached and `resend_to` set, so the executor verifies that archive
    and delivers it; it never exports a new one (`jobs.execute`).
    """
    reason, request_key = check_reason(reason), check_request_key(request_key)
    if to not in RESEND_TARGETS:
        raise InvalidInput(f"Re-send to “destinations” or “email”, not {to!r}.", [("to", "unknown")])
    with db.session(write=True) as session:
        if (earlier := already_done(session, request_key)) is not None:
            return ActionResult.of(earlier)
        user = _target(session, user_id)
        archive = session.get(Archive, archive_id) if archive_id and archive_id.isprintable() else None
        if archive is None or archive.user_id != user.id:
            raise ActionRefused(f"{user.email} has no archive {archive_id}: pick one from their archive list.")
        if archive.deleted_at is not None:
            raise ActionRefused("That archive was deleted, so it cannot be sent again: pick a newer one.")
        if archive.verified_at is None:
            raise ActionRefused("That archive was never verified, so Lifeboat will not send it: pick a verified one.")
        if to == "email" and not email_ready:
            raise ActionRefused(
                "This server has no mail server set (LIFEBOAT_SMTP_HOST), so nothing can be emailed: "
                "re-send to their destinations, or ask the operator to set one up."
            )
        if to == "destinations" and not _has_destinations(session, user):
            raise ActionRefused(f"{user.email} has no destination switched on: re-send to their email instead.")
        if (running := run_lifecycle.active_run(session, user.id)) is not None:
            raise ActionRefused(f"An export of theirs is in progress (run {running.id}): re-send once it has finished.")
        run, _created = run_lifecycle.request_run(session, user.id, "support", now=now)
        run.archive_id, run.resend_to = archive.id, to
        where = "their destinations" if to == "destinations" else f"their email address ({user.email})"
        run_lifecycle.add_event(
            session,
            run.id,
            "resend",
            f"Support re-sends archive {archive.filename} (SHA-256 {archive.sha256}) to {where}.",
            at=now,
        )
        return _done(
            session,
            actor,
            "archive.resend",
            user,
            reason=reason,
            request_key=request_key,
            now=now,
            message=f"Re-send of {archive.filename} to {where} queued (run {run.id}): "
            "its deliveries appear under that run in this user's recent runs.",
            run_id=run.id,
            queued=True,
            archive_id=archive.id,
            sha256=archive.sha256,
            to=to,
        )


def _has_destinations(session: Session, user: User) -> bool:
    count = session.scalar(
        select(func.count(Destination.id)).where(Destination.user_id == user.id, Destination.enabled.is_(True))
    )
    return bool(count)


@_audited("export.start")
def export_now(
    db: Database, actor: Actor, user_id: int, *, reason: str, request_key: str | None, now: dt.datetime
) -> ActionResult:
    """Start a fresh export for the user (trigger "support"); one already running is not doubled."""
    reason, request_key = check_reason(reason), check_request_key(request_key)
    with db.session(write=True) as session:
        if (earlier := already_done(session, request_key)) is not None:
            return ActionResult.of(earlier)
        user = _target(session, user_id)
        run, created = run_lifecycle.request_run(session, user.id, "support", now=now)
        if created:
            message = f"Export started for {user.email} (run {run.id})."
        else:
            message = f"An export for {user.email} was already in progress (run {run.id}); no second one was started."
        return _done(
            session,
            actor,
            "export.start",
            user,
            reason=reason,
            request_key=request_key,
            now=now,
            message=message,
            outcome="ok" if created else "already_running",
            run_id=run.id,
            queued=created,
        )


@_audited("schedule.pause")
def pause_schedule(
    db: Database, actor: Actor, user_id: int, *, reason: str, request_key: str | None, now: dt.datetime
) -> ActionResult:
    """Stop the user's scheduled exports until resumed (by support, or by the user saving their schedule).

    The user's settings page shows a fixed sentence (`PAUSED_BY_SUPPORT`); the
    staff member's reason is in the audit log, which the user reads (without
    the staff member's name) on their History page.
    """
    reason, request_key = check_reason(reason), check_request_key(request_key)
    with db.session(write=True) as session:
        if (earlier := already_done(session, request_key)) is not None:
            return ActionResult.of(earlier)
        user = _target(session, user_id)
        row = find_schedule(session, user)
        if row is None or not row.enabled:
            raise ActionRefused(f"{user.email} has no export schedule switched on: there is nothing to pause.")
        # The dispatcher only looks at enabled schedules with a next run: this one is skipped from now on.
        row.enabled, row.next_run_at, row.paused_reason = False, None, PAUSED_BY_SUPPORT
        return _done(
            session,
            actor,
            "schedule.pause",
            user,
            reason=reason,
            request_key=request_key,
            now=now,
            message=f"Scheduled exports for {user.email} are paused.",
        )


@_audited("schedule.resume")
def resume_schedule(
    db: Database, actor: Actor, user_id: int, *, reason: str, request_key: str | None, now: dt.datetime
) -> ActionResult:
    """Switch a paused schedule back on, its next run computed from now.

    Why only a paused one: a schedule the user switched off themselves is their
    choice, and support does not overrule it.
    """
    reason, request_key = check_reason(reason), check_request_key(request_key)
    with db.session(write=True) as session:
        if (earlier := already_done(session, request_key)) is not None:
            return ActionResult.of(earlier)
        user = _target(session, user_id)
        row = find_schedule(session, user)
        if row is None or row.enabled or not row.paused_reason:
            raise ActionRefused(
                f"{user.email}'s schedule is not paused"
                + (" (they switched it off themselves: only they can switch it on)." if row is not None else ".")
            )
        save_schedule(session, user, ScheduleChange(), now=now)
        return _done(
            session,
            actor,
            "schedule.resume",
            user,
            reason=reason,
            request_key=request_key,
            now=now,
            message=f"Scheduled exports for {user.email} are running again.",
        )


@_audited("destination.retest")
def retest_destination(
    db: Database,
    registry: Registry,
    actor: Actor,
    user_id: int,
    destination_id: int,
    *,
    reason: str,
    request_key: str | None,
    now: dt.datetime,
) -> ActionResult:
    """Clear a destination's error (the user says they fixed it) by testing it again now.

    The test talks to the user's bucket or mail server, which may take many
    seconds, and no write transaction may be held open that long: so the test
    runs first, outside any transaction, and then one short write replaces the
    error with what the test found and records the one audit row, together. A
    crash before that write leaves the error and no row; a repeat of the request
    key returns the recorded outcome and writes nothing (a double click racing
    the first may test twice, which changes nothing but the test object).
    """
    reason, request_key = check_reason(reason), check_request_key(request_key)
    with db.session() as session:
        if (earlier := already_done(session, request_key)) is not None:
            return ActionResult.of(earlier)
        user = _target(session, user_id)
        row = session.get(Destination, destination_id) if is_row_id(destination_id) else None
        if row is None or row.user_id != user.id:
            raise UnknownTarget("destination", f"{user.email} has no destination {destination_id}.")
        label, previous = row.label, row.status
    probe = probe_destination(db, registry, destination_id, user_id)
    with db.session(write=True) as session:
        if (earlier := already_done(session, request_key)) is not None:
            return ActionResult.of(earlier)
        user = _target(session, user_id)
        if probe is None or not keep_probe_status(session, probe):
            raise UnknownTarget("destination", f"“{label}” was removed before it could be tested.")
        verdict = "test passed" if probe.outcome.ok else "test failed"
        return _done(
            session,
            actor,
            "destination.retest",
            user,
            reason=reason,
            request_key=request_key,
            now=now,
            message=f"Cleared the error on “{label}” and tested it again: {verdict}. {probe.outcome.message}",
            outcome="ok" if probe.outcome.ok else "failed",
            destination_id=destination_id,
            previous_status=previous,
        )


@_audited("credentials.revoke")
def revoke_credentials(
    db: Database, actor: Actor, user_id: int, *, reason: str, request_key: str | None, now: dt.datetime
) -> ActionResult:
    """Revoke every download link and API token of the user at once (e.g. a leaked link or token)."""
    reason, request_key = check_reason(reason), check_request_key(request_key)
    with db.session(write=True) as session:
        if (earlier := already_done(session, request_key)) is not None:
            return ActionResult.of(earlier)
        user = _target(session, user_id)
        links = download_links.revoke_user_links(session, user.id, now=now)
        tokens = api_tokens.revoke_user_tokens(session, user.id, now=now)
        return _done(
            session,
            actor,
            "credentials.revoke",
            user,
            reason=reason,
            request_key=request_key,
            now=now,
            message=f"Revoked {_count(links, 'download link')} and {_count(tokens, 'API token')} of {user.email}.",
            links=links,
            tokens=tokens,
        )


def _count(n: int, noun: str) -> str:
    return f"{n:,} {noun}{'' if n == 1 else 's'}"
