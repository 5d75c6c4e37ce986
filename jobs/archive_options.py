"""A user's archive options: which vCard version, which kinds of data, and the key to encrypt to.

Why one module: the settings page, the JSON API, the command line and the
export all read or change these values, and each must refuse the same things
with the same words (no kind at all, a kind that does not exist, an unknown
vCard version, a private key pasted where the public one belongs).
`users.export_kinds` holds the kinds comma-separated; None means all of them,
which is what every archive held before the option existed.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from account.records import KINDS
from delivery.sealing import SealKey, SealKeyError, parse_seal_key
from errors import DeliveryError, InvalidInput
from store import User

VCARD_VERSIONS = ("3.0", "4.0")
NO_KIND = "Choose at least one kind of data to include: contacts, calendars or notes."


def kinds_of(user: User) -> tuple[str, ...]:
    """The kinds `user`'s archives hold, in archive order (all of them when none were chosen)."""
    if not user.export_kinds:
        return KINDS
    chosen = {part.strip() for part in user.export_kinds.split(",")}
    return tuple(kind for kind in KINDS if kind in chosen) or KINDS


@dataclass(frozen=True)
class ArchiveOptions:
    """A change of options; None leaves that option as it is. `vcard_version` "default" means the server's."""

    vcard_version: str | None = None
    kinds: Iterable[str] | None = None
    seal_key: str | None = None  # a public key to encrypt archives to; "" stops encrypting


def save_archive_options(user: User, change: ArchiveOptions) -> None:
    """Check `change` and apply it to `user` (the caller's write session commits it).

    Raises `InvalidInput` naming each field to fix; nothing is changed then.
    """
    problems: list[tuple[str, str]] = []
    version = change.vcard_version
    if version is not None and version != "default" and version not in VCARD_VERSIONS:
        problems.append(("vcard_version", "Choose vCard 3.0, 4.0 or the server default."))
    kinds: tuple[str, ...] | None = None
    if change.kinds is not None:
        wanted = [str(kind) for kind in change.kinds]
        unknown = sorted(set(wanted) - set(KINDS))
        if unknown:
            problems.append(("kinds", f"Unknown kind {unknown[0]!r}: choose from contacts, calendars and notes."))
        kinds = tuple(kind for kind in KINDS if kind in wanted)
        if not kinds and not unknown:
            problems.append(("kinds", NO_KIND))
    seal: SealKey | None = None
    if change.seal_key:
        try:
            seal = parse_seal_key(change.seal_key)
        except SealKeyError as exc:
            problems.append(("seal_key", str(exc)))
    if problems:
        raise InvalidInput("The archive options need fixing.", problems)
    if change.seal_key is not None:
        user.seal_key = seal.text if seal is not None else None
    if version is not None:
        user.vcard_version = None if version == "default" else version
    if kinds is not None:
        user.export_kinds = None if kinds == KINDS else ",".join(kinds)


def seal_key_of(user: User) -> SealKey | None:
    """The key `user`'s archives are encrypted to, or None; a stored key that no longer parses stops delivery.

    Why stop rather than send the plain zip: the user asked that nothing
    readable leaves Lifeboat, so a key this version cannot use (a library that
    now refuses it) must not quietly turn into plaintext in their bucket.
    """
    if not user.seal_key:
        return None
    try:
        return parse_seal_key(user.seal_key)
    except SealKeyError as exc:
        raise DeliveryError(
            f"seal key unusable: {exc}",
            permanent=True,
            user_message=f"Your archives are set to be encrypted, but the key cannot be used: {exc} "
            "Give your public key again in Settings, under Archive options. Nothing was sent.",
        ) from None


def shown_seal_key(user: User) -> SealKey | None:
    """The key to show on the settings page and in the API; one that no longer parses shows as none.

    (Delivery refuses such a key with its reason, `seal_key_of`; the pages only say what is in force.)
    """
    try:
        return seal_key_of(user)
    except DeliveryError:
        return None
