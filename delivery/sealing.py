"""Seal an archive to the user's own public key before it leaves: age or OpenPGP, streamed.

Why: a bucket, a mailbox and a leaked download link should hold only
ciphertext that the user alone can open. Lifeboat takes the user's *public*
key (it never sees the private one), checks the archive as usual, then
encrypts the verified zip into a new file whose SHA-256 and size are what the
destination is checked against; the plaintext's SHA-256 stays on the receipt
so the decrypted copy can be proven to be the very archive that was made.

Which keys: an age recipients list (one `age1…` X25519 key or `ssh-ed25519` /
`ssh-rsa` public key per line, `#` comments allowed, as `age -R` reads it),
or one OpenPGP certificate (armored or binary). Why libraries, not our own
code: rage's bindings (pyrage) and Sequoia's (pysequoia) both stream file to
file in constant memory (100 MB sealed with 27 MB peak RSS through Sequoia,
50 MB with 10 MB through rage), and the standard `age` and `gpg` tools open
what they write.
"""

from __future__ import annotations

import contextlib
import dataclasses
import datetime as dt
import hashlib
import os
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

import pyrage
import pysequoia
from pyrage import ssh, x25519
from pysequoia.packet import PacketPile, SignatureType, Tag

from delivery.contract import Payload
from delivery.s3.checksums import BLOCK, stream_sha256

MAX_KEY_TEXT = 64 * 1024  # an OpenPGP certificate with photos can be big; anything larger is not a key
MAX_AGE_RECIPIENTS = 20
_PGP_ARMOR = "-----BEGIN PGP PUBLIC KEY BLOCK-----"
_PGP_END = "-----END PGP PUBLIC KEY BLOCK-----"
_SECRET_KEY_TAG = 5  # a Secret-Key packet: what `gpg --export-secret-keys` writes first
_PKESK_TAG, _SKESK_TAG = 1, 3  # what an encrypted OpenPGP message starts with (public-key or password)
# What people paste by mistake: each is refused with words that say which key to give instead.
_PRIVATE_MARKERS = {
    "AGE-SECRET-KEY-": "That is an age identity (your private key). Give its public key instead: the age1… line "
    "that `age-keygen` printed (or `age-keygen -y key.txt`), and keep the private key to yourself.",
    "-----BEGIN PGP PRIVATE KEY BLOCK-----": "That is an OpenPGP private key. Give the public key instead "
    "(`gpg --armor --export you@example.org`), and keep the private key to yourself.",
    "-----BEGIN OPENSSH PRIVATE KEY-----": "That is an SSH private key. Give the public key instead: the one line "
    "in the matching .pub file, such as ~/.ssh/id_ed25519.pub.",
}


class SealKeyError(ValueError):
    """The text given is not a public key Lifeboat can encrypt to; the message says what to give instead."""


@dataclass(frozen=True)
class SealKey:
    """A user's public key, checked: what archives are encrypted to before delivery."""

    kind: str  # "age" or "openpgp"
    text: str  # as stored: the recipients list, or the armored certificate
    label: str  # for people: "age key age1abc…wxyz" or "OpenPGP key 1A2B … (Bob <bob@example.org>)"
    suffix: str  # added to the archive's file name: ".age" or ".gpg"
    expires: dt.datetime | None = None  # when it can no longer be encrypted to (OpenPGP); age keys never expire
    fingerprint: str | None = None  # an OpenPGP key's, as gpg takes it (40 hex digits)

    def decrypt_hint(self, filename: str) -> str:
        """The one command that opens `filename` (the sealed file) with the standard tool."""
        return decrypt_command(self.kind, filename)


def plain_name(filename: str) -> str:
    """What a sealed file is called once opened: `x.zip.age` -> `x.zip` (a renamed one gets `.zip` added)."""
    plain = filename.removesuffix(".age").removesuffix(".gpg")
    return plain if plain != filename else filename + ".zip"


def decrypt_command(kind: str, filename: str) -> str:
    """The standard tool's command that opens `filename`, sealed with `kind` ("age" or "openpgp")."""
    plain = plain_name(filename)
    if kind == "age":
        return f"age --decrypt -i YOUR-KEY-FILE -o {plain} {filename}"
    return f"gpg --output {plain} --decrypt {filename}"


@dataclass(frozen=True)
class Sealed:
    """The ciphertext file and what it is checked against."""

    path: Path
    sha256: str
    size: int


def parse_seal_key(text: str, *, stored: bool = False) -> SealKey:
    """Check `text` is a public key to encrypt to; raise SealKeyError with one line saying what to fix.

    Each key is tried by encrypting an empty message to it, so a certificate
    without an encryption-capable, unexpired subkey is refused here, when the
    user gives it, not at 2 a.m. when the first archive would go out.
    `stored`: a key saved before repeated age keys were refused keeps working
    (its repeats are dropped); one being given is refused with words instead.
    """
    if len(text) > MAX_KEY_TEXT:
        raise SealKeyError(f"That is {len(text):,} characters, too long for a public key (at most 64 KiB).")
    stripped = text.strip()
    if not stripped:
        raise SealKeyError("Give an age public key (age1…), an SSH public key or an OpenPGP public key.")
    for marker, why in _PRIVATE_MARKERS.items():
        if marker in stripped:
            raise SealKeyError(why)
    if len(keys := stripped.split(_PGP_ARMOR)) > 2:
        raise SealKeyError(f"That is {len(keys) - 1} OpenPGP keys: give one (to encrypt to several, use age keys).")
    if _PGP_ARMOR in stripped:
        return _openpgp_key(stripped.encode("ascii", "replace"))
    return _age_key(stripped, stored=stored)


def looks_private(text: str) -> bool:
    """Whether `text` holds a private key (pasted by mistake): never echoed back, stored or logged."""
    return any(marker in text for marker in _PRIVATE_MARKERS)


def seal_key_from_bytes(data: bytes) -> SealKey:
    """A key from a file's bytes: a binary OpenPGP certificate as it is, anything else as text."""
    if _first_packet_tag(data) is not None:  # an OpenPGP packet header, not text
        return _openpgp_key(data)
    try:
        return parse_seal_key(data.decode("utf-8"))
    except UnicodeDecodeError:
        raise SealKeyError("That file is neither text nor an OpenPGP certificate.") from None


def _age_key(text: str, *, stored: bool = False) -> SealKey:
    lines = [line.strip() for line in text.splitlines()]
    recipients = [line for line in lines if line and not line.startswith("#")]
    if len(recipients) > MAX_AGE_RECIPIENTS:
        raise SealKeyError(f"Give at most {MAX_AGE_RECIPIENTS} age recipients, one per line.")
    seen: set[str] = set()  # each key as compared: an SSH key without its comment
    kept: list[str] = []
    for number, line in enumerate(recipients, 1):
        where = f" (line {number})" if len(recipients) > 1 else ""
        try:
            _one_key_on(line)
            _age_recipient(line)
        except SealKeyError as exc:
            raise SealKeyError(f"{exc}{where}") from None
        same = _same_key(line)
        if same in seen and not stored:
            raise SealKeyError(f"That gives the same key twice ({_shown(line)}): give each key once, one per line.")
        if same not in seen:
            seen.add(same)
            kept.append(line)
    recipients = kept
    if not recipients:
        raise SealKeyError("Give an age public key (age1…), an SSH public key or an OpenPGP public key.")
    more = f" and {len(recipients) - 1} more" if len(recipients) > 1 else ""
    return SealKey("age", "\n".join(recipients), _shown(recipients[0]) + more, ".age")


def _shown(line: str) -> str:
    """An age or SSH key as people compare them: its start and end, or an SSH key's type and the end of its key."""
    if line.startswith("age1"):
        return f"age key {line[:10]}…{line[-6:]}"
    kind, body = line.split()[:2]
    return f"SSH key {kind} …{body[-8:]}"


def _one_key_on(line: str) -> None:
    """Refuse keys pasted on one line (`age1… age1…`): else they read as an age plugin's key, or a damaged one."""
    words = line.split()
    starts = [i for i, word in enumerate(words) if word.startswith(("age1", "ssh-"))]
    if len(starts) < 2 or starts[0] != 0:
        return
    keys = [_same_key(" ".join(words[i:j])) for i, j in zip(starts, [*starts[1:], len(words)], strict=True)]
    what = "the same key twice" if len(keys) == 2 and keys[0] == keys[1] else f"{len(keys)} keys"
    raise SealKeyError(f"That line holds {what}: give each key once, one key per line.")


def _same_key(line: str) -> str:
    """A key as compared for repeats: an age key in lower case (bech32 ignores case), an SSH key without its comment."""
    if line.startswith("age1"):
        return line.lower()
    return " ".join(line.split()[:2])


def _age_recipient(line: str) -> Any:
    if line.startswith("age1") and "1" in line[4:]:  # bech32's last "1" ends the name: age1yubikey1…
        raise SealKeyError(
            "That is a key for an age plugin (such as age1yubikey1…), which Lifeboat cannot encrypt to: "
            "give an X25519 age key (age1… from age-keygen) or an SSH public key."
        )
    try:
        if line.startswith("age1"):
            return x25519.Recipient.from_str(line)
        if line.startswith(("ssh-ed25519 ", "ssh-rsa ")):
            return ssh.Recipient.from_str(line)
    except (pyrage.RecipientError, ValueError):
        raise SealKeyError("That age or SSH public key is damaged: copy it again, whole and on one line.") from None
    raise SealKeyError(
        "That is not a public key Lifeboat can encrypt to: give an age key (age1…), an ssh-ed25519 or ssh-rsa "
        "public key, or an OpenPGP public key block."
    )


def _openpgp_key(data: bytes) -> SealKey:
    try:
        cert = pysequoia.Cert.from_bytes(data)
    except Exception:  # Sequoia's words ("Malformed Cert: Additional packets found…") are for its developers
        cut = data.lstrip().startswith(_PGP_ARMOR.encode()) and _PGP_END.encode() not in data
        why = "it looks cut off (its END line is missing)" if cut else "it looks cut off, or it is not one public key"
        raise SealKeyError(
            f"That OpenPGP key could not be read: {why}. Paste the whole output of "
            "gpg --armor --export you@example.org, from its BEGIN line to its END line."
        ) from None
    if _first_packet_tag(data) == _SECRET_KEY_TAG:  # armored ones were refused by their header already
        raise SealKeyError(_PRIVATE_MARKERS["-----BEGIN PGP PRIVATE KEY BLOCK-----"])
    if cert.is_revoked:
        raise SealKeyError("That OpenPGP key is revoked: give a key that is still in use.")
    try:
        pysequoia.encrypt(b"", recipients=[cert], armor=False)
    except Exception:
        raise SealKeyError(
            "That OpenPGP key has no subkey that can encrypt now (expired, or signing only): give one that can."
        ) from None
    fingerprint = str(cert.fingerprint).upper()
    grouped = " ".join(fingerprint[i : i + 4] for i in range(0, len(fingerprint), 4))
    # A user id is whatever the key's maker typed: control characters (NUL, escapes, line breaks) go.
    ids = ["".join(ch for ch in str(uid) if ch.isprintable())[:80] for uid in cert.user_ids]
    ids = [uid for uid in ids if uid.strip()]
    who = f" ({ids[0]})" if ids else ""
    label = f"OpenPGP key {grouped}{who}"
    return SealKey("openpgp", str(cert), label, ".gpg", expires=_encryption_expiry(cert), fingerprint=fingerprint)


def _encryption_expiry(cert: Any) -> dt.datetime | None:
    """When `cert` can no longer be encrypted to: its primary key's expiry, or its encryption subkeys' if sooner.

    Why compute it: Sequoia encrypts to an expired certificate without a word
    (a key that expired in 2020 was accepted here, found by a user trial), and
    the user's own `gpg` then refuses it; a subkey can also expire before its
    primary key. Of several encryption subkeys the one that lasts longest counts
    (a message goes to each that is valid). Read from each subkey's newest
    binding signature; Sequoia has checked the certificate as a whole already.
    """
    subkeys: list[tuple[dt.datetime, Any]] = []  # each subkey's creation and newest binding signature
    for packet in PacketPile.from_bytes(str(cert).encode("ascii")):
        if packet.tag in (Tag.PublicSubkey, Tag.SecretSubkey):
            subkeys.append((packet.key_created, None))
        elif subkeys and packet.tag == Tag.Signature and packet.signature_type == SignatureType.SubkeyBinding:
            created, newest = subkeys[-1]
            if newest is None or packet.signature_created > newest.signature_created:
                subkeys[-1] = (created, packet)
    ends = [
        None if binding.key_validity_period is None else created + binding.key_validity_period
        for created, binding in subkeys
        if binding is not None
        and binding.key_flags is not None
        and (binding.key_flags.transport_encryption or binding.key_flags.storage_encryption)
    ]
    primary: dt.datetime | None = cert.expiration
    last = None if not ends or None in ends else max(end for end in ends if end is not None)
    known = [end for end in (primary, last) if end is not None]
    return min(known) if known else None


def sealed_kind(head: bytes) -> str | None:
    """ "age" or "openpgp" when a file's first bytes are such ciphertext, else None (e.g. a zip)."""
    if head.startswith(b"age-encryption.org/v1\n"):
        return "age"
    if _first_packet_tag(head) in (_PKESK_TAG, _SKESK_TAG):
        return "openpgp"
    return None


def _first_packet_tag(data: bytes) -> int | None:
    """The tag of a binary OpenPGP message's first packet (RFC 9580 §4.2: new and legacy headers)."""
    if not data or not data[0] & 0x80:
        return None
    return data[0] & 0x3F if data[0] & 0x40 else (data[0] >> 2) & 0x0F


def seal_file(source: Path, target: Path, key: SealKey) -> Sealed:
    """Encrypt `source` into `target` (0600, written whole or not at all); return its SHA-256 and size."""
    partial = target.with_name(f".{target.name}.{uuid.uuid4().hex[:8]}.partial")
    try:
        if key.kind == "age":
            recipients = [_age_recipient(line) for line in key.text.splitlines()]
            with open(source, "rb") as plain, _private_file(partial) as out:
                hashing = _HashingWriter(out)
                pyrage.encrypt_io(plain, hashing, recipients)
                digest, size = hashing.sha256.hexdigest(), hashing.size
        else:
            cert = pysequoia.Cert.from_bytes(key.text.encode("ascii"))
            _private_file(partial).close()
            pysequoia.encrypt_file(str(source), str(partial), recipients=[cert], armor=False)
            with open(partial, "rb") as written:
                digest, size = stream_sha256(iter(lambda: written.read(BLOCK), b""))
        os.replace(partial, target)
    except BaseException:
        partial.unlink(missing_ok=True)
        raise
    return Sealed(target, digest, size)


@contextlib.contextmanager
def sealed_payload(payload: Payload, key: SealKey | None, scratch: Path) -> Iterator[Payload]:
    """`payload` as it is without a key; with one, its sealed copy (removed afterwards).

    The sealed payload carries no manifest and no counts: both say what is
    inside, and the point is that nothing outside the ciphertext does.
    """
    if key is None:
        yield payload
        return
    filename = payload.filename + key.suffix
    # A dot-file in the scratch folder: if this process dies, housekeeping removes it with the other leftovers.
    sealed = seal_file(payload.path, scratch / f".sealed-{uuid.uuid4().hex}-{filename}", key)
    try:
        yield dataclasses.replace(
            payload,
            path=sealed.path,
            sha256=sealed.sha256,
            size=sealed.size,
            filename=filename,
            counts={},
            manifest=b"",
            sealed_to=key.label,
            plain_sha256=payload.sha256,
            decrypt_hint=key.decrypt_hint(filename),
        )
    finally:
        sealed.path.unlink(missing_ok=True)


class _HashingWriter:
    """A file-like that rage writes the ciphertext to: written through, hashed and counted on the way."""

    def __init__(self, out: IO[bytes]) -> None:
        self.out, self.sha256, self.size = out, hashlib.sha256(), 0

    def write(self, data: bytes) -> int:
        self.out.write(data)
        self.sha256.update(data)
        self.size += len(data)
        return len(data)

    def flush(self) -> None:
        self.out.flush()


def _private_file(path: Path) -> IO[bytes]:
    """A new file only its owner can read, like the archives themselves."""
    return os.fdopen(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600), "wb")
