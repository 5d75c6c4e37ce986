"""Encrypt delivery secrets (S3 secret keys, SMTP passwords) before they reach the database.

Why MultiFernet: keys must be rotatable without a flag day. The first key
encrypts; every configured key decrypts; `rotate()` re-encrypts an old token
under the first key, so an operator adds a new key in front, runs a rotation
over the stored tokens, and only then drops the old key.

Keys come from configuration (e.g. `LIFEBOAT_ENCRYPTION_KEYS`, newest first,
separated by commas or whitespace); generate one with `SecretBox.generate_key()`.
On SQLite, where none is set, app.py generates one into the instance folder
(`encryption_keys`, mode 0600) on first use; `setting` then names that file.
"""

from __future__ import annotations

from collections.abc import Iterable

from cryptography.fernet import Fernet, InvalidToken, MultiFernet

from errors import LifeboatError

DEFAULT_SETTING = "LIFEBOAT_ENCRYPTION_KEYS"
# What an operator can run; `SecretBox.generate_key()` means nothing outside Python.
GENERATE_HINT = '`python -c "from cryptography.fernet import Fernet; print(Fernet.generate_key().decode())"`'


class SecretKeyError(LifeboatError, ValueError):
    """The configured encryption keys are missing or malformed (an operator problem)."""


class SecretDecryptError(LifeboatError, ValueError):
    """A stored secret cannot be decrypted with any configured key."""


class SecretBox:
    """Encrypt and decrypt short secrets as URL-safe text tokens."""

    def __init__(self, keys: Iterable[str | bytes], *, setting: str = DEFAULT_SETTING) -> None:
        fernets: list[Fernet] = []
        for position, key in enumerate(keys, start=1):
            try:
                fernets.append(Fernet(key.strip() if isinstance(key, str | bytes) else key))
            except (ValueError, TypeError):
                # Never echo the key: it is the secret this class protects.
                raise SecretKeyError(
                    f"Key {position} in {setting} is not a Fernet key (32 url-safe base64-encoded "
                    f"bytes). Generate one with {GENERATE_HINT} and fix it."
                ) from None
        if not fernets:
            raise SecretKeyError(
                f"{setting} is empty: set it to one or more Fernet keys (newest first) so "
                f"delivery secrets can be stored encrypted. Generate one with {GENERATE_HINT}."
            )
        self._multi = MultiFernet(fernets)
        self._count = len(fernets)

    @classmethod
    def from_setting(cls, value: str | Iterable[str] | None, *, setting: str = DEFAULT_SETTING) -> SecretBox:
        """Build from a setting: keys separated by commas or whitespace, or a list of keys."""
        if value is None:
            keys: list[str] = []
        elif isinstance(value, str):
            keys = [part for part in value.replace(",", " ").split() if part]
        else:
            keys = [str(part) for part in value]
        return cls(keys, setting=setting)

    @staticmethod
    def generate_key() -> str:
        """A fresh random key, as text ready for the setting."""
        return Fernet.generate_key().decode("ascii")

    def encrypt(self, plaintext: str) -> str:
        """Encrypt under the newest key; the token embeds its creation time."""
        if not isinstance(plaintext, str):
            raise TypeError("SecretBox.encrypt takes a str")
        return self._multi.encrypt(plaintext.encode("utf-8")).decode("ascii")

    def decrypt(self, token: str) -> str:
        """Decrypt with whichever configured key made the token."""
        try:
            return self._multi.decrypt(self._token_bytes(token)).decode("utf-8")
        except InvalidToken:
            raise self._undecryptable() from None

    def rotate(self, token: str) -> str:
        """Re-encrypt a token under the newest key (same secret, new ciphertext)."""
        try:
            return self._multi.rotate(self._token_bytes(token)).decode("ascii")
        except InvalidToken:
            raise self._undecryptable() from None

    @staticmethod
    def _token_bytes(token: str) -> bytes:
        if not isinstance(token, str):
            raise TypeError("SecretBox tokens are str")
        try:
            return token.strip().encode("ascii")
        except UnicodeEncodeError:
            raise SecretDecryptError("A stored secret is not a valid encrypted token.") from None

    def _undecryptable(self) -> SecretDecryptError:
        return SecretDecryptError(
            f"A stored secret cannot be decrypted with any of the {self._count} configured "
            "key(s): it was encrypted with a key that has since been removed, or it is "
            "corrupt. Put the old key back in the setting (after the new one), or ask the "
            "user to enter the secret again."
        )

    def __repr__(self) -> str:
        return f"<SecretBox keys={self._count}>"
