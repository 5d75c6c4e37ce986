"""Destination commands: `destination add-s3|add-email|edit|list|remove|test|policy|retention|prune`.

Registered by the top-level `cli.init_app`; they call `jobs.destination_setup`.

Why sentences and a table by default: the other commands answer in words, and
the JSON these printed (secrets left out, as the API shows it) buried "added,
id 3" in forty lines. `--json` on add-s3, add-email, edit and list still prints
that JSON, for scripts.

Why every command names the account first (EMAIL, then the destination's ID
for those that act on one): `list` and `add-*` take EMAIL, and a user trial
typed `destination test EMAIL ID` as the README suggests; the address also
makes sure an ID mistyped by one digit cannot change someone else's
destination.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Callable
from typing import Any

import click
from flask import current_app
from flask.cli import with_appcontext
from sqlalchemy.orm import Session

from account.canonical import name_problem
from delivery.retention_policy import RetentionPolicy
from errors import DeliveryError, InvalidInput, LifeboatError
from jobs.bucket_retention import policy_from_form, run_retention, set_retention
from jobs.commands.base_url import warn_of_the_default_address
from jobs.commands.unknown_user import no_user
from jobs.destination_backends import Registry
from jobs.destination_confirmation import Links
from jobs.destination_setup import (
    add_destination,
    describe_destinations,
    edit_destination,
    public_view,
    public_views,
    remove_destination,
    test_destination,
)
from jobs.refused_here import for_the_operator, refusal
from store import Destination, User
from store.accounts import find_user
from store.base import is_row_id
from store.db import get_db


def _plain(value: object) -> str:
    """JSON for what the standard encoder cannot write: times as ISO 8601, as the API writes them."""
    return value.isoformat() if isinstance(value, dt.datetime) else str(value)


JSON_OPTION = click.option(
    "--json", "as_json", is_flag=True, help="Print the destination as JSON (as the API shows it) instead of words."
)


def _visible(text: str) -> str:
    """`text` with what a terminal would act on or hide (controls, bidi overrides) written as `\\uXXXX`.

    Labels stored before they were checked (`jobs.destination_setup.check_label`) may hold them.
    """
    return "".join(f"\\u{ord(ch):04x}" if name_problem("", ch) else ch for ch in text)


def _short(text: str, width: int) -> str:
    text = _visible(text)
    return text if len(text) <= width else text[: width - 1] + "…"


def _status_words(shown: dict[str, Any]) -> str:
    """The status in words: `status ok`, or `status error: why` as `public_view` has it."""
    words = f"status {shown['status']}"
    return f"{words}: {_visible(shown['status_message'])}" if shown.get("status_message") else words


def _said(shown: dict[str, Any], what: str, email: str) -> str:
    """One sentence about a destination just written: what, its id and name, whose, its status."""
    return (
        f"{what} {shown['kind']} destination {shown['id']} ({_visible(shown['label'])}) for {email}; "
        f"{_status_words(shown)}."
    )


@click.group("destination")
def destination() -> None:
    """Where a user's archives are delivered."""


def destination_arguments(command: Callable[..., Any]) -> Callable[..., Any]:
    """EMAIL and ID, checked by `_owner` (so a wrong order gets words naming the right one, not click's)."""
    command = click.argument("destination_id", metavar="ID", required=False)(command)
    return click.argument("email")(command)


def _user(session: Session, email: str) -> User:
    user = find_user(session, email)
    if user is None:
        raise no_user(email, ".")
    return user


def retention_options(command: Callable[..., Any]) -> Callable[..., Any]:
    """--keep/--daily/--weekly/--monthly/--yearly, stored as the destination's retention_* settings."""
    for flag, setting, words in reversed(
        [
            ("--keep", "retention_keep", "Keep the last N archives."),
            ("--daily", "retention_daily", "Keep one a day for the last N days that have one."),
            ("--weekly", "retention_weekly", "Keep one a week (ISO weeks) for N weeks."),
            ("--monthly", "retention_monthly", "Keep one a month for N months."),
            ("--yearly", "retention_yearly", "Keep one a year for N years."),
        ]
    ):
        command = click.option(flag, setting, type=int, default=None, help=words + " 0 or left out: off.")(command)
    return command


def lock_options(command: Callable[..., Any]) -> Callable[..., Any]:
    """--lock-mode and --lock-days: S3 Object Lock on each archive (`delivery.s3.object_lock`), for add and edit."""
    command = click.option(
        "--lock-days", type=int, default=None, help="Days each archive stays locked (with --lock-mode)."
    )(command)
    return click.option(
        "--lock-mode",
        type=click.Choice(["off", "governance", "compliance"]),
        default=None,
        help="Lock each archive against deletion (the bucket needs S3 Object Lock on).",
    )(command)


def credential_options(command: Callable[..., Any]) -> Callable[..., Any]:
    """--access-key-id, --secret-access-key (or LIFEBOAT_NEW_SECRET_ACCESS_KEY) and --role-arn, for add and edit."""
    command = click.option("--role-arn", default=None, help="AWS: assume this role (STS) instead of keys.")(command)
    command = click.option(
        "--secret-access-key",
        default=None,
        envvar="LIFEBOAT_NEW_SECRET_ACCESS_KEY",
        help="Better given through the environment variable than the command line.",
    )(command)
    return click.option("--access-key-id", default=None)(command)


@destination.command("add-s3")
@click.argument("email")
@click.option("--bucket", required=True)
@click.option("--region", default="us-east-1", show_default=True)
@click.option("--endpoint-url", default=None, help="For MinIO, R2, B2, Wasabi, ...; omit for AWS.")
@click.option("--prefix", default="lifeboat", show_default=True)
@click.option("--path-style", is_flag=True)
@credential_options
@lock_options
@retention_options
@JSON_OPTION
@with_appcontext
def add_s3(email: str, as_json: bool, **options: Any) -> None:
    """Deliver EMAIL's archives to an S3-compatible bucket."""
    registry = Registry(dict(current_app.config))
    with get_db().session(write=True) as session:
        user = _user(session, email)
        try:
            row = add_destination(session, registry, user, "s3", f"s3://{options['bucket']}", dict(options))
        except InvalidInput as exc:
            raise click.ClickException(str(exc)) from None
        shown, own = public_view(row), user.email
    if as_json:
        click.echo(json.dumps(shown, indent=2, default=_plain))
        return
    click.echo(_said(shown, "Added", own))
    click.echo(f"Check that Lifeboat can write to it: lifeboat destination test {own} {shown['id']}")


@destination.command("add-email")
@click.argument("email")
@click.option("--to", default=None, help="Recipient (default: the user's own address).")
@JSON_OPTION
@with_appcontext
def add_email(email: str, to: str | None, as_json: bool) -> None:
    """Email EMAIL's archives (attached when small, else a signed download link).

    An address other than EMAIL's own gets nothing until someone there follows
    the link mailed to it (LIFEBOAT_CONFIRM_LINK_MAX_AGE); EMAIL is told it was added.
    """
    registry = Registry(dict(current_app.config))
    with get_db().session(write=True) as session:
        user = _user(session, email)
        settings: dict[str, Any] = {"to": to} if to else {}
        try:  # named as the page and the API name it (`default_label`)
            row = add_destination(session, registry, user, "email", "", settings)
        except InvalidInput as exc:  # one line: "to: …", or "You already have this destination (email …, id 3): …"
            raise click.ClickException(_one_line(exc)) from None
        shown, own = public_view(row, user=user), user.email
        link = Links.of(registry).url(row) if row.confirm_sent_at is not None else None
    click.echo(json.dumps(shown, indent=2, default=_plain) if as_json else _said(shown, "Added", own))
    if not shown["confirmed"] and to and to.strip().lower() != own:  # the link leaves once this committed (above)
        _say_where_the_link_went(registry, to, own, link)


def _say_where_the_link_went(registry: Registry, to: str, own: str, link: str | None) -> None:
    """On stderr: the confirmation link went to `to` (and a notice to `own`), or, with no mail server, the link.

    Why the link itself: without LIFEBOAT_SMTP_HOST nothing is mailed (a user trial was told "a link went to"
    in the same output that warned no email was sent); the operator can hand it over.
    """
    if link is not None and not registry.smtp.enabled:
        click.echo(
            f"No mail server (LIFEBOAT_SMTP_HOST): no link was sent to {to}, nor a notice to {own}; "
            f"nothing is sent there until someone there follows this link, so give it to them: {link}",
            err=True,
        )
    else:
        click.echo(
            f"Waiting for confirmation: a link went to {to}, and a notice to {own}; "
            "nothing is sent there until someone there follows it.",
            err=True,
        )
    warn_of_the_default_address()


@destination.command("edit")
@destination_arguments
@click.option("--bucket", default=None)
@click.option("--region", default=None)
@click.option("--endpoint-url", default=None, help='"" goes back to AWS.')
@click.option("--prefix", default=None)
@click.option("--path-style/--no-path-style", default=None)
@credential_options
@lock_options
@click.option("--to", default=None, help="Email destinations: the new recipient.")
@click.option("--label", default=None, help="The name shown for it (one line of visible text).")
@JSON_OPTION
@with_appcontext
def edit_command(email: str, destination_id: str | None, as_json: bool, **changes: Any) -> None:
    """Change a destination in place (new keys, bucket or address); what is left out stays. Tests it after.

    Why not remove and add: the id, retention policy and delivery history stay
    with the destination (and support's "the user fixed the key, re-send" finds it).
    """
    user_id, number = _owner(email, destination_id, kind=None)
    registry = Registry(dict(current_app.config))
    with get_db().session(write=True) as session:
        owner = session.get(User, user_id)
        assert owner is not None  # destinations.user_id is a foreign key
        try:
            row = edit_destination(session, registry, owner, number, changes)
        except InvalidInput as exc:
            raise click.ClickException(_one_line(exc)) from None
        assert row is not None  # `_owner` found it
        shown, address = public_view(row, user=owner), owner.email
        link = Links.of(registry).url(row) if row.confirm_sent_at is not None else None
    click.echo(json.dumps(shown, indent=2, default=_plain) if as_json else _said(shown, "Saved", address))
    if changes.get("to") and shown.get("confirmation_sent_at") is not None:  # a new address: its link was made
        _say_where_the_link_went(registry, str(changes["to"]), address, link)
    _probe(registry, number)


@destination.command("list")
@click.argument("email")
@click.option("--json", "as_json", is_flag=True, help="Print them as JSON (as the API shows them) instead of a table.")
@with_appcontext
def list_command(email: str, as_json: bool) -> None:
    """Show EMAIL's destinations: id, name, kind, status and last delivery (never their secrets)."""
    with get_db().session() as session:
        user = _user(session, email)
        rows = public_views(session, user)  # with what the last check found (scrub)
        if as_json:
            click.echo(json.dumps(rows, indent=2, default=_plain))
            return
        views = describe_destinations(session, Registry(dict(current_app.config)), user)
        last = {view.id: view.last_attempt for view in views}
        own = user.email
    if not rows:
        click.echo(f"{own} has no destinations; add one with `lifeboat destination add-s3` or `add-email`.")
        return
    click.echo(f"{'ID':>4}  {'NAME':<26}  {'KIND':<5}  {'STATUS':<9}  LAST DELIVERY")
    for shown in rows:
        attempt = last.get(shown["id"])
        delivered = f"{attempt.outcome} {attempt.at:%Y-%m-%d %H:%M}" if attempt is not None else "none yet"
        click.echo(
            f"{shown['id']:>4}  {_short(shown['label'], 26):<26}  {shown['kind']:<5}  {shown['status']:<9}  {delivered}"
        )
        if shown["status"] not in ("ok", "untested") and shown.get("status_message"):
            click.echo(f"{'':6}{_short(shown['status_message'], 73)}")  # why, under its row
    click.echo("Times are UTC.")


@destination.command("remove")
@destination_arguments
@with_appcontext
def remove_command(email: str, destination_id: str | None) -> None:
    """Remove EMAIL's destination ID, as the page's Remove button does; archives delivered there stay."""
    user_id, number = _owner(email, destination_id, kind=None)
    with get_db().session(write=True) as session:
        label = remove_destination(session, user_id, number)
        owner = session.get(User, user_id)
        address = owner.email if owner is not None else email
    if label is None:  # removed in between, from the page or the API
        raise click.ClickException(f"{address} has no destination {number} any more.")
    click.echo(
        f"Removed destination {number} ({_visible(label)}) from {address}. "
        "Archives already delivered there stay where they are."
    )


@destination.command("test")
@destination_arguments
@with_appcontext
def test_command(email: str, destination_id: str | None) -> None:
    """Write, read back and delete a probe object (S3) or say hello to the mail server."""
    _, number = _owner(email, destination_id, kind=None)
    _probe(Registry(dict(current_app.config)), number)


def _probe(registry: Registry, destination_id: int) -> None:
    """Test the destination and print the outcome in words (a failure as a one-line error).

    A refusal by this process's own endpoint settings is the operator's, and is not stored (`jobs.refused_here`).
    """
    with get_db().session() as session:
        row = session.get(Destination, destination_id)
        if row is None:
            raise click.ClickException(f"No destination {destination_id}.")
        user = session.get(User, row.user_id)
        assert user is not None  # destinations.user_id is a foreign key
        again = f"`lifeboat destination test {user.email} {destination_id}`"
    # The probe talks to the network: outside any transaction. Its outcome (on `row`)
    # is written afterwards in a short one, so no write lock waits on a remote server.
    failed: DeliveryError | None = None
    try:
        summary = test_destination(None, registry, row, user)
    except DeliveryError as exc:
        failed = exc
    here = refusal(failed)
    if here is not None:  # this shell's settings refused it, not the user's bucket: told here, stored nowhere
        raise click.ClickException("Not tested, and nothing recorded for the user: " + for_the_operator(here, again))
    with get_db().session(write=True) as session:
        session.merge(row)
    if failed is not None:
        raise click.ClickException(failed.user_message) from None
    click.echo(summary)


@destination.command("policy")
@destination_arguments
@with_appcontext
def policy_command(email: str, destination_id: str | None) -> None:
    """Print the least-privilege IAM policy (and role trust policy) to paste for an S3 destination."""
    from delivery.s3 import iam_policy, trust_policy_json

    _, number = _owner(email, destination_id)
    with get_db().session() as session:
        row = session.get(Destination, number)
        assert row is not None  # `_owner` found it
        settings = row.settings
    locked = settings.get("lock_mode") in ("governance", "compliance")
    click.echo(iam_policy(settings["bucket"], settings.get("prefix", "lifeboat"), lock=locked))
    if settings.get("external_id"):
        principal = current_app.config["AWS_PRINCIPAL_ARN"]
        click.echo(trust_policy_json(principal, settings["external_id"]))


def _policy(counts: dict[str, int | None]) -> RetentionPolicy:
    try:
        return policy_from_form(counts)
    except InvalidInput as exc:
        raise click.ClickException(_one_line(exc)) from None


def _one_line(exc: InvalidInput) -> str:
    return "; ".join(f"{where}: {what}" for where, what in exc.problems) or str(exc).splitlines()[0]


def _owner(email: str, destination_id: str | None, kind: str | None = "s3") -> tuple[int, int]:
    """The user id and destination id of EMAIL's destination ID (of `kind`, or any with None), or a one-line error.

    The error names the fix: the order of the arguments, or `destination list EMAIL` for the ids.
    """
    command = f"lifeboat destination {click.get_current_context().info_name}"
    if destination_id is None:
        if email.strip().isascii() and email.strip().isdigit():
            raise click.ClickException(f"Give the account's email before the id: `{command} EMAIL {email.strip()}`.")
        raise click.ClickException(
            f"Give the destination's id after the email: `{command} {email} ID`; "
            f"`lifeboat destination list {email}` shows the ids."
        )
    if not (destination_id.strip().isascii() and destination_id.strip().isdigit()):
        raise click.ClickException(
            f"{destination_id!r} is not a destination id: the command takes the account's email, then the id "
            f"(`{command} EMAIL ID`); `lifeboat destination list EMAIL` shows the ids."
        )
    number = int(destination_id)
    what = f"{kind.upper()} destination" if kind else "destination"
    with get_db().session() as session:
        user = _user(session, email)
        row = session.get(Destination, number) if is_row_id(number) else None
        if row is None or row.user_id != user.id or (kind is not None and row.kind != kind):
            raise click.ClickException(
                f"{user.email} has no {what} {number}; `lifeboat destination list {user.email}` shows theirs."
            )
        return user.id, number


@destination.command("retention")
@destination_arguments
@retention_options
@with_appcontext
def retention_command(email: str, destination_id: str | None, **counts: int | None) -> None:
    """Choose which archives stay in an S3 destination's bucket (the whole policy: a rule left out is off)."""
    user_id, number = _owner(email, destination_id)
    policy = _policy(counts)
    try:
        with get_db().session(write=True) as session:
            set_retention(session, Registry(dict(current_app.config)), user_id, number, policy)
    except InvalidInput as exc:
        raise click.ClickException(_one_line(exc)) from None
    except LifeboatError as exc:
        raise click.ClickException(str(exc).splitlines()[0]) from None
    click.echo(policy.summary())


@destination.command("prune")
@destination_arguments
@click.option("--dry-run", is_flag=True, help="List what would be deleted, and why the rest stays; delete nothing.")
@retention_options
@with_appcontext
def prune_command(email: str, destination_id: str | None, dry_run: bool, **counts: int | None) -> None:
    """Apply the destination's retention policy to its bucket now (or the one given by --keep/--daily/...)."""
    user_id, number = _owner(email, destination_id)
    policy = _policy(counts) if any(v is not None for v in counts.values()) else None
    try:
        preview = run_retention(
            get_db(), Registry(dict(current_app.config)), number, user_id, policy=policy, dry_run=dry_run
        )
    except DeliveryError as exc:
        raise click.ClickException(exc.user_message) from None
    except InvalidInput as exc:
        raise click.ClickException(_one_line(exc)) from None
    except LifeboatError as exc:  # e.g. the keys to read the destination's secret are not configured
        raise click.ClickException(str(exc).splitlines()[0]) from None
    assert preview is not None  # _owner found it
    report = preview.report
    click.echo(preview.policy.summary())
    for decision in report.plan.decisions:
        verdict = "keep  " if decision.keep else ("would delete" if dry_run else "delete")
        why = ", ".join(decision.reasons)
        click.echo(f"{verdict:<12} {decision.key}  {why}".rstrip())
    for skipped in report.skipped:
        click.echo(f"skipped      {skipped.key}  {skipped.why}")
    click.echo(report.summary())


COMMANDS = [destination]
