"""A user's archive options: which vCard version, which kinds of data, and the key to encrypt to.

Why one module: the settings page, the JSON API, the command line and the
export all read or change these values, and each must refuse the same things
with the same words (no kind at all, a kind that does not exist, an unknown
vCard version, a private key pasted where the public one belongs).
`users.export_kinds` holds the kinds comma-separated; None means all of them,
which is what every archive held before the option existed.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from dataclasses import dataclass

from sqlalchemy.orm import Session

from account.records import KINDS
from delivery.sealing import SealKey, SealKeyError, parse_seal_key
from errors import DeliveryError, InvalidInput
from jobs.download_links import revoke_user_links
from store import User

VCARD_VERSIONS = ("3.0", "4.0")
NO_KIND = "Choose at least one kind of data to include: contacts, calendars or notes."
EXPIRY_WARNING = dt.timedelta(days=30)  # a key expiring sooner is taken with a warning naming the date


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


def save_archive_options(session: Session, user: User, change: ArchiveOptions, *, now: dt.datetime) -> int:
    """Check `change` and apply it to `user` (the caller's write session commits it); links revoked by it.

    Raises `InvalidInput` naming each field to fix; nothing is changed then.
    Stopping encryption revokes the user's live download links: each was
    handed out (in an email, a script) as a link to ciphertext, and would
    otherwise start serving the plain archive, file list and all.
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
        if (expiry := key_expiry(seal, now)) is not None and expiry.expired:
            problems.append(("seal_key", expiry.words))
    if problems:
        raise InvalidInput("The archive options need fixing.", problems)
    revoked = 0
    if change.seal_key is not None:
        if user.seal_key and seal is None:
            revoked = revoke_user_links(session, user.id, now=now)
        user.seal_key = seal.text if seal is not None else None
    if version is not None:
        user.vcard_version = None if version == "default" else version
    if kinds is not None:
        user.export_kinds = None if kinds == KINDS else ",".join(kinds)
    return revoked


def seal_key_of(user: User) -> SealKey | None:
    """The key `user`'s archives are encrypted to, or None; a stored key that no longer parses stops delivery.

    Why stop rather than send the plain zip: the user asked that nothing
    readable leaves Lifeboat, so a key this version cannot use (a library that
    now refuses it) must not quietly turn into plaintext in their bucket.
    """
    seal, problem = seal_state(user)
    if problem is not None:
        raise DeliveryError(
            f"seal key unusable: {problem}",
            permanent=True,
            user_message=f"Your archives are set to be encrypted, but the key cannot be used: {problem} "
            "Give your public key again in Settings, under Encryption. Nothing was sent.",
        )
    return seal


def seal_state(user: User) -> tuple[SealKey | None, str | None]:
    """The key in force and, for a stored key that no longer parses, why (what pages and the CLI show).

    Delivery refuses such a key (`seal_key_of`); the pages must not call it "no encryption".
    """
    if not user.seal_key:
        return None, None
    try:
        return parse_seal_key(user.seal_key, stored=True), None
    except SealKeyError as exc:
        return None, str(exc)


@dataclass(frozen=True)
class KeyExpiry:
    """What the user is told about their key's end: `expired` (refused when given), or coming within 30 days."""

    expired: bool
    words: str  # one line: the problem, the date, the fix


def key_expiry(seal: SealKey | None, now: dt.datetime) -> KeyExpiry | None:
    """Whether `seal` has expired or expires within 30 days (`EXPIRY_WARNING`), in words; else None.

    Why warn rather than refuse a key that expires soon: it works until then, and
    the user may be renewing it; the date tells them when archives stop.
    """
    if seal is None or seal.expires is None:
        return None
    date = f"{seal.expires:%Y-%m-%d}"
    # With the standard tool: the primary key's expiry, then (with '*') every subkey's.
    fingerprint = seal.fingerprint or "FINGERPRINT"
    extend = f"gpg --quick-set-expire {fingerprint} 1y, then gpg --quick-set-expire {fingerprint} 1y '*'"
    if seal.expires <= now:
        return KeyExpiry(
            True,
            f"That {seal.label} expired on {date}, so archives cannot be encrypted to it: extend it ({extend}), "
            "export it again and give it here, or give another key.",
        )
    if seal.expires <= now + EXPIRY_WARNING:
        return KeyExpiry(
            False,
            f"Your {seal.label} expires on {date}: from then on archives cannot be encrypted to it. "
            f"Extend it ({extend}) and give it again before then.",
        )
    return None


def stopped_words(revoked: int) -> str:
    """What the user is told when encryption stops (the page, the API's callers read the docs, the CLI)."""
    words = "Archives are no longer encrypted: from the next export on they go out as plain zip files."
    if revoked:
        links, they = ("link was", "it was") if revoked == 1 else ("links were", "they were")
        words += f" Your {revoked} download {links} revoked: {they} handed out as links to encrypted files."
    return words
