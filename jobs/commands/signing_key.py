"""Signing key commands: `signing-key show` (the published key set), `signing-key rotate`, `signing-key new`.

Why rotation keeps the old public key: every archive already delivered was
signed with it, and must still verify against the published set
(`/.well-known/lifeboat-signing-keys.json`). The instance folder's
`signing_keys` is rewritten in place; a key set the operator gave in
LIFEBOAT_SIGNING_KEYS is not ours to change, so the new value is printed for
them to set on every host.
"""

from __future__ import annotations

import json
from pathlib import Path

import click
from flask import current_app
from flask.cli import with_appcontext

import config
from jobs.signing_keys import SOURCE, published_keys, rotate_text
from store.base import utcnow


@click.group("signing-key")
def signing_key() -> None:
    """The Ed25519 keys that sign every archive's manifest.json."""


@signing_key.command("show")
@with_appcontext
def show_command() -> None:
    """Print the published key set (what /.well-known/lifeboat-signing-keys.json serves; for `verify --keys`)."""
    from jobs import get_context

    click.echo(json.dumps(published_keys(get_context().signing_key), indent=2))


@signing_key.command("new")
def new_command() -> None:
    """Print a new key set, to set as LIFEBOAT_SIGNING_KEYS on every host (scale-out)."""
    from exporters.archive.signature import new_signing_keys

    click.echo(new_signing_keys(utcnow().date()))


@signing_key.command("rotate")
@with_appcontext
def rotate_command() -> None:
    """Make a new active key; the old one stays published, so archives it signed still verify."""
    from jobs import get_context

    text = current_app.config["SIGNING_KEYS"]
    if not text:
        raise click.ClickException(
            "No signing key to rotate: set LIFEBOAT_SIGNING_KEYS (make one with `lifeboat signing-key new`)."
        )
    new_text, key = rotate_text(str(text), utcnow().date())
    source = current_app.config[SOURCE]
    old = get_context().signing_key
    retired = old.public.key_id if old is not None else "?"
    if source is None:
        click.echo(new_text)
        click.echo(
            f"# Set LIFEBOAT_SIGNING_KEYS to the lines above on every host and restart them: key {key.public.key_id} "
            f"signs from then on, and {retired} stays published as retired.",
            err=True,
        )
        return
    config.replace_instance_secret(Path(source), new_text)
    current_app.config["SIGNING_KEYS"] = new_text
    get_context().signing_key = key  # this process signs with the new key too
    click.echo(
        f"New signing key {key.public.key_id} in {source}; {retired} is retired and stays published. "
        "Restart `lifeboat serve` (and any workers) to sign with the new key."
    )


COMMANDS: list[click.Command] = [signing_key]
