"""The service's signature over an archive's `manifest.json`, and the key set that checks it.

Why sign the manifest: it lists every file's path, size and SHA-256, and
`SHA256SUMS` says the same, so a file edited together with both lists (a
*consistent rewrite*) passes every checksum. An Ed25519 signature over the
exact bytes of `manifest.json`, made with a key only the service holds, turns
that rewrite into a refusal: whoever edits the archive cannot sign the new
manifest. The signature is a member of its own, `manifest.json.sig` (a name
the archive reserves), so the manifest never has to describe itself.

What is signed (docs/archive-signatures.md): the UTF-8 statement
``lifeboat-manifest-signature-v1\\nmanifest.json sha256 <hex>\\n`` naming the
SHA-256 of manifest.json's bytes. Why the digest, not the bytes: a large
account's manifest is tens of MB and is written and read as a stream; its
SHA-256 is counted on the way for free, and Ed25519 needs the whole message at
once. Ed25519 signatures are deterministic, so the same input and key give
the same archive bytes.

Why a key set: keys are rotated, and an archive signed by a key that is retired
must still verify, so the service publishes every public key it ever signed
with (`/.well-known/lifeboat-signing-keys.json`); a key's id is a short hash of
its public key. The private key set is text (`LIFEBOAT_SIGNING_KEYS`, or the
instance folder's `signing_keys`): tokens separated by commas or whitespace,
``ed25519-private:<base64 seed>[:<created>]`` for the active key (the first
private one) and ``ed25519-public:<base64 key>[:<created>[:<retired>]]`` for
retired ones; dates are YYYY-MM-DD.
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import hashlib
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.serialization import Encoding, NoEncryption, PrivateFormat, PublicFormat

from exporters.archive.manifest import MANIFEST_NAME, SIGNATURE_NAME, ArchiveError

SIGNATURE_FORMAT = "lifeboat-manifest-signature"
KEYS_FORMAT = "lifeboat-signing-keys"
ALGORITHM = "ed25519"
STATEMENT = "lifeboat-manifest-signature-v1\nmanifest.json sha256 {sha256}\n"
MAX_SIGNATURE_BYTES = 4096  # the member is ~300 bytes; anything far larger is not ours
_PRIVATE, _PUBLIC = "ed25519-private", "ed25519-public"
_DATE = re.compile(r"\d{4}-\d{2}-\d{2}\Z")
_SHA256 = re.compile(r"[0-9a-f]{64}\Z")
_KEY_ID = re.compile(r"[0-9a-f]{16}\Z")
CHANGED = "the archive was changed after it was made"


def statement(manifest_sha256: str) -> bytes:
    """The bytes the service signs for a manifest.json whose SHA-256 is `manifest_sha256`."""
    return STATEMENT.format(sha256=manifest_sha256).encode("ascii")


def key_id_of(raw_public: bytes) -> str:
    """A public key's id: the first 16 hex digits of the SHA-256 of its 32 raw bytes."""
    return hashlib.sha256(raw_public).hexdigest()[:16]


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def _unb64(text: str, size: int, what: str) -> bytes:
    try:
        data = base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        raise ValueError(f"{what} is not base64") from None
    if len(data) != size:
        raise ValueError(f"{what} is {len(data)} bytes, not {size}")
    return data


@dataclass(frozen=True)
class PublicKey:
    """One published key: its id, its 32 raw bytes, and when it was made and retired (YYYY-MM-DD or None)."""

    raw: bytes
    created: str | None = None
    retired: str | None = None

    @property
    def key_id(self) -> str:
        return key_id_of(self.raw)

    @property
    def base64(self) -> str:
        return _b64(self.raw)

    def verifies(self, signature: bytes, message: bytes) -> bool:
        try:
            Ed25519PublicKey.from_public_bytes(self.raw).verify(signature, message)
        except InvalidSignature:
            return False
        return True

    def as_json(self) -> dict[str, Any]:
        return {
            "key_id": self.key_id,
            "algorithm": ALGORITHM,
            "public_key": self.base64,
            "created": self.created,
            "retired": self.retired,
        }


@dataclass(frozen=True)
class KeyRing:
    """The public keys a verifier trusts, by id: the service's published set (active first)."""

    keys: tuple[PublicKey, ...] = ()

    def find(self, key_id: str) -> PublicKey | None:
        return next((key for key in self.keys if key.key_id == key_id), None)

    def as_json(self) -> dict[str, Any]:
        """The published document (`/.well-known/lifeboat-signing-keys.json`, `lifeboat signing-key show`)."""
        return {"format": KEYS_FORMAT, "keys": [key.as_json() for key in self.keys]}

    @classmethod
    def from_json(cls, document: Any) -> KeyRing:
        """Read a published key set; `ValueError` says what is wrong with it."""
        if not isinstance(document, Mapping) or document.get("format") != KEYS_FORMAT:
            raise ValueError(f'not a key set: expected a JSON object with "format": "{KEYS_FORMAT}"')
        entries = document.get("keys")
        if not isinstance(entries, list):
            raise ValueError('a key set needs a "keys" list')
        keys = []
        for index, entry in enumerate(entries):
            if not isinstance(entry, Mapping) or not isinstance(entry.get("public_key"), str):
                raise ValueError(f"keys[{index}] has no public_key")
            if entry.get("algorithm", ALGORITHM) != ALGORITHM:
                raise ValueError(f"keys[{index}] is not an {ALGORITHM} key")
            key = PublicKey(_unb64(entry["public_key"], 32, f"keys[{index}].public_key"))
            if entry.get("key_id") not in (None, key.key_id):
                raise ValueError(f"keys[{index}]: key_id {entry.get('key_id')!r} is not that of its public_key")
            keys.append(PublicKey(key.raw, _date_or_none(entry.get("created")), _date_or_none(entry.get("retired"))))
        return cls(tuple(keys))


def _date_or_none(value: Any) -> str | None:
    return value if isinstance(value, str) and _DATE.match(value) else None


@dataclass(frozen=True)
class SigningKey:
    """The service's active private key, and the key set it publishes (this key first, then retired ones)."""

    private: Ed25519PrivateKey
    ring: KeyRing

    @property
    def public(self) -> PublicKey:
        return self.ring.keys[0]

    def signature_member(self, manifest_sha256: str) -> bytes:
        """The bytes of `manifest.json.sig` for a manifest.json whose SHA-256 is `manifest_sha256`."""
        signature = self.private.sign(statement(manifest_sha256))
        document = {
            "format": SIGNATURE_FORMAT,
            "format_version": 1,
            "algorithm": ALGORITHM,
            "key_id": self.public.key_id,
            "signed": MANIFEST_NAME,
            "manifest_sha256": manifest_sha256,
            "signature": _b64(signature),
        }
        return (json.dumps(document, indent=2) + "\n").encode("ascii")


def parse_signing_keys(text: str) -> SigningKey:
    """Read the private key set (see the module docstring); `ValueError` says what is wrong."""
    private: Ed25519PrivateKey | None = None
    keys: list[PublicKey] = []
    for token in text.replace(",", " ").split():
        kind, _, rest = token.partition(":")
        value, _, dates = rest.partition(":")
        created, _, retired = dates.partition(":")
        for date in (created, retired):
            if date and not _DATE.match(date):
                raise ValueError(f"signing keys: {date!r} is not a date (YYYY-MM-DD)")
        if kind == _PRIVATE:
            seed = _unb64(value, 32, "a signing key's private part")
            secret = Ed25519PrivateKey.from_private_bytes(seed)
            raw = secret.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
            if private is None:
                private = secret
                keys.insert(0, PublicKey(raw, created or None))
            else:  # an older private key: only its public part is still used
                keys.append(PublicKey(raw, created or None, retired or created or None))
        elif kind == _PUBLIC:
            keys.append(PublicKey(_unb64(value, 32, "a retired key's public part"), created or None, retired or None))
        else:
            raise ValueError(f"signing keys: a key starts with {_PRIVATE}: or {_PUBLIC}:, not {kind[:20]!r}")
    if private is None:
        raise ValueError(f"signing keys: no active key ({_PRIVATE}:...)")
    unique = {key.key_id: key for key in reversed(keys)}  # a key listed twice counts once, where it came first
    return SigningKey(private, KeyRing(tuple(sorted(unique.values(), key=keys.index))))


def new_signing_keys(today: dt.date) -> str:
    """A fresh private key set: one new active key made `today`."""
    return _private_token(Ed25519PrivateKey.generate(), today.isoformat())


def rotated(text: str, today: dt.date) -> str:
    """`text` with a new active key; the old active key is kept as a retired public key (still published)."""
    current = parse_signing_keys(text)
    day = today.isoformat()
    tokens = [_private_token(Ed25519PrivateKey.generate(), day)]
    for index, key in enumerate(current.ring.keys):
        retired = day if index == 0 else key.retired
        tokens.append(":".join(part for part in (_PUBLIC, key.base64, key.created or "", retired or "") if part))
    return "\n".join(tokens)


def _private_token(key: Ed25519PrivateKey, created: str) -> str:
    seed = key.private_bytes(Encoding.Raw, PrivateFormat.Raw, NoEncryption())
    return f"{_PRIVATE}:{_b64(seed)}:{created}"


@dataclass(frozen=True)
class SignatureCheck:
    """What the signature of a verified archive says: `status` is valid, unsigned, unknown-key or unchecked."""

    status: str
    key_id: str | None = None

    @property
    def valid(self) -> bool:
        return self.status == "valid"

    @property
    def verdict(self) -> str:
        """What `lifeboat verify`'s first line says of an archive whose checksums hold.

        Why not a bare "OK" unless signed by a known key: the first line is what
        people and scripts read, and "OK" over a signature that was not checked
        read as "unaltered" (user trial). The exit status stays 0 either way.
        """
        if self.valid:
            return "OK"
        return "OK (unsigned)" if self.status == "unsigned" else "OK (signature not checked)"

    def line(self) -> str:
        """One line for people (`lifeboat verify`)."""
        if self.status == "valid":
            return f"signed: manifest.json is what the service signed (key {self.key_id})"
        if self.status == "unknown-key":
            return (
                f"signature not checked: signed by key {self.key_id}, which this key set does not know "
                "(pass --keys with the key set the service that made it publishes)"
            )
        if self.status == "unchecked":
            return f"signature not checked: signed by key {self.key_id}, and no key set was given"
        # Said plainly: "OK" beside an unsigned archive read as "unaltered" (user trial: a stripped signature).
        return UNSIGNED_LINE


UNSIGNED_LINE = (
    "unsigned: the archive has no manifest.json.sig, so nothing proves it unaltered (whoever edits a file can "
    "rewrite manifest.json and SHA256SUMS to match); `verify --require-signature` refuses unsigned archives"
)
UNSIGNED = SignatureCheck("unsigned")


def check_signature(member: bytes | None, manifest_sha256: str, keys: KeyRing | None) -> SignatureCheck:
    """Check `manifest.json.sig` (`member`; None when absent) against manifest.json's SHA-256.

    Raises `ArchiveError` when the archive was changed after it was signed (the
    manifest is not the one signed, or the signature does not hold for a key
    the key set knows) or the member is not a signature at all. A key the set
    does not know (a foreign archive, or no key set: `keys` None) is no error:
    the checksums still hold, and the result says the signature was not checked.
    """
    if member is None:
        return UNSIGNED
    key_id, claimed, signature = _parse_signature(member)
    if claimed != manifest_sha256:
        raise ArchiveError(
            f"{MANIFEST_NAME} is not what the service signed (key {key_id}): {CHANGED} "
            f"(its SHA-256 is {manifest_sha256}, the signature is for {claimed})"
        )
    if keys is None:
        return SignatureCheck("unchecked", key_id)
    key = keys.find(key_id)
    if key is None:
        return SignatureCheck("unknown-key", key_id)
    if not key.verifies(signature, statement(manifest_sha256)):
        raise ArchiveError(
            f"{MANIFEST_NAME} is not what the service signed (key {key_id}): {CHANGED} "
            f"({SIGNATURE_NAME} does not hold for it)"
        )
    return SignatureCheck("valid", key_id)


def _parse_signature(member: bytes) -> tuple[str, str, bytes]:
    def bad(why: str) -> ArchiveError:
        return ArchiveError(f"{SIGNATURE_NAME} is not a readable signature ({why}): {CHANGED}, or damaged")

    if len(member) > MAX_SIGNATURE_BYTES:
        raise bad(f"{len(member)} bytes")
    try:
        document = json.loads(member.decode("utf-8"))
    except (UnicodeDecodeError, ValueError) as exc:
        raise bad(f"not JSON: {exc}") from None
    if not isinstance(document, dict) or document.get("format") != SIGNATURE_FORMAT:
        raise bad(f'no "format": "{SIGNATURE_FORMAT}"')
    if document.get("format_version") != 1 or document.get("algorithm") != ALGORITHM:
        raise bad("an unknown format_version or algorithm")
    if document.get("signed") != MANIFEST_NAME:
        raise bad(f'it does not sign "{MANIFEST_NAME}"')
    key_id, claimed, signature = document.get("key_id"), document.get("manifest_sha256"), document.get("signature")
    if not isinstance(key_id, str) or not _KEY_ID.match(key_id):
        raise bad("no valid key_id")
    if not isinstance(claimed, str) or not _SHA256.match(claimed):
        raise bad("no valid manifest_sha256")
    try:
        raw = _unb64(signature if isinstance(signature, str) else "", 64, "the signature")
    except ValueError as exc:
        raise bad(str(exc)) from None
    return key_id, claimed, raw
