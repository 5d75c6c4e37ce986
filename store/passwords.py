"""Password hashing with Argon2id (argon2-cffi's defaults follow RFC 9106)."""

from __future__ import annotations

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
