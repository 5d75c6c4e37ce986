"""Password hashing with Argon2id (argon2-cffi's defaults follow RFC 9106)."""

from __future__ import annotations

import hashlib
import unicodedata

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from store.users import User

_hasher = PasswordHasher()
# Verifying against a fixed hash when the user does not exist keeps the timing of
# "no such user" and "wrong password" alike.
_DUMMY_HASH = _hasher.hash("lifeboat-dummy-password")


def hash_password(password: str) -> str:
    return _hasher.hash(password)


def check_password(user: User | None, password: str) -> bool:
    """True only for an active user whose password matches."""
    try:
        _hasher.verify(user.password_hash if user and user.password_hash else _DUMMY_HASH, password)
    except (VerificationError, InvalidHashError):
        return False
    return user is not None and user.password_hash is not None and user.is_active


def end_sessions(user: User) -> None:
    """Invalidate every session of `user` (sign-out everywhere); the caller commits.

    Sessions are signed cookies held by browsers, so they cannot be deleted;
    each carries the `session_version` it was issued under, and the web layer
    accepts only the current one.
    """
    user.session_version = (user.session_version or 0) + 1


def set_password(user: User, password: str) -> None:
    """Change the password and end every session that was signed in with the old one."""
    user.password_hash = hash_password(password)
    end_sessions(user)


# Long enough that guessing is hopeless behind the sign-in limits; a cap so that a
# megabyte "password" cannot make every request spend its time hashing.
MIN_PASSWORD_LENGTH = 10
MAX_PASSWORD_LENGTH = 256


def password_problem(password: str) -> str | None:
    """What is wrong with a new password, in words for the person choosing it; None if it will do.

    Any Unicode is allowed (a passphrase in one's own language is a good one);
    control characters are not, since no keyboard types them on purpose.
    """
    if len(password) < MIN_PASSWORD_LENGTH:
        return f"Choose a password of at least {MIN_PASSWORD_LENGTH} characters."
    if len(password) > MAX_PASSWORD_LENGTH:
        return f"Choose a password of at most {MAX_PASSWORD_LENGTH} characters."
    if not password.strip() or any(unicodedata.category(ch) in ("Cc", "Cs") for ch in password):
        return "A password cannot consist of spaces or contain control characters."
    return None


def reset_fingerprint(user: User) -> str:
    """A short digest of the user's current password hash, for binding a reset link to it.

    Why: a reset link must work once. It carries this value, and is accepted only
    while it still matches; setting a password (through the link or otherwise)
    gives a new salted hash, so every link issued before stops working. A user
    without a password (created by an operator) has a fingerprint too, so the
    same link can give them their first password, once.
    """
    material = f"lifeboat.reset:{user.id}:{user.password_hash or ''}"
    return hashlib.sha256(material.encode("utf-8")).hexdigest()[:32]
